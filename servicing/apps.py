from django.apps import AppConfig


class ServicingConfig(AppConfig):
    name = "servicing"
    verbose_name = "贷款核心 Servicing"

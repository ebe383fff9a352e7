from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "借款人自助 Self-service"

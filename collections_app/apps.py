from django.apps import AppConfig


class CollectionsAppConfig(AppConfig):
    name = "collections_app"

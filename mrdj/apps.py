from django.apps import AppConfig


class MrdjConfig(AppConfig):
    name = "mrdj"
    verbose_name = "Mister DJ operations"

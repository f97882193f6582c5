from django.apps import AppConfig


class MrdjConfig(AppConfig):
    name = "mrdj"
    verbose_name = "Mister DJ operations"

    def ready(self) -> None:
        from mrdj import checks  # noqa: F401 (registers itself)
        from mrdj.config import describe_invalid
        from mrdj.health import DEGRADATIONS

        if describe_invalid not in DEGRADATIONS:
            DEGRADATIONS.append(describe_invalid)

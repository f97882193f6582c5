from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "incidents"
    verbose_name = "Incidents"

    def ready(self) -> None:
        from alerting import signals
        from incidents import (  # noqa: F401 (checks registers itself)
            checks,
            incident_variables,
            tracking,
        )

        signals.ticked.connect(tracking.on_ticked, dispatch_uid="incidents-track")
        signals.acknowledged.connect(tracking.on_acknowledged, dispatch_uid="incidents-first-responder")

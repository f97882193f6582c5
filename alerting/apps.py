from django.apps import AppConfig


class AlertingConfig(AppConfig):
    name = "alerting"
    verbose_name = "Alerting"

    def ready(self) -> None:
        from celery.signals import worker_process_init
        from django.db.models.signals import post_save

        from alerting import (  # noqa: F401 (checks registers itself)
            alert_variables,
            checks,
            deadman,
            evaluator,
            grafana_annotations,
        )
        from alerting.models import Notification
        from alerting.signals import evaluated
        from integrations import signals as queue_signals
        from mrdj.models import AuditEvent
        from mrdj.signals import flag_changed, web_process_started

        queue_events = {
            "backlog": queue_signals.backlog_changed,
            "dead-letter": queue_signals.job_dead_lettered,
            "circuit": queue_signals.circuit_changed,
            "flag": flag_changed,
        }
        for name, signal in queue_events.items():
            signal.connect(evaluator.on_queue_event, dispatch_uid=f"alerting-evaluate-on-{name}")
        web_process_started.connect(evaluator.start, dispatch_uid="alerting-evaluator-web")
        evaluated.connect(deadman.on_evaluated, dispatch_uid="alerting-deadman-evaluated")
        worker_process_init.connect(evaluator.start, dispatch_uid="alerting-evaluator-worker", weak=False)
        # Alerts and operator actions become Grafana annotations (GRAFANA_URL), after commit.
        post_save.connect(
            grafana_annotations.on_notification, sender=Notification, dispatch_uid="alerting-grafana-alerts"
        )
        post_save.connect(
            grafana_annotations.on_audit_event, sender=AuditEvent, dispatch_uid="alerting-grafana-actions"
        )

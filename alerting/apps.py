from django.apps import AppConfig


class AlertingConfig(AppConfig):
    name = "alerting"
    verbose_name = "Alerting"

    def ready(self) -> None:
        from celery.signals import worker_process_init

        from alerting import (  # noqa: F401 (checks registers itself)
            alert_variables,
            checks,
            evaluator,
        )
        from integrations import signals as queue_signals
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
        worker_process_init.connect(evaluator.start, dispatch_uid="alerting-evaluator-worker", weak=False)

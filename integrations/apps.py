from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integration queues"

    def ready(self) -> None:
        from celery.signals import task_postrun

        from integrations import fallback, gauges, handlers, heartbeat  # noqa: F401 (gauges registers itself)
        from mrdj.signals import flag_changed, web_process_started

        web_process_started.connect(fallback.start_in_web_process, dispatch_uid="integrations-fallback")
        flag_changed.connect(handlers.resume_queue_on_flag, dispatch_uid="integrations-resume")
        task_postrun.connect(heartbeat.on_celery_task, dispatch_uid="integrations-heartbeat", weak=False)

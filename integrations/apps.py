from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integration queues"

    def ready(self) -> None:
        from celery.signals import task_postrun, worker_ready

        from integrations import checks, fallback, gauges, handlers, heartbeat, stalls  # noqa: F401
        from mrdj.health import DEGRADATIONS
        from mrdj.signals import flag_changed, web_process_started

        if stalls.describe not in DEGRADATIONS:
            DEGRADATIONS.append(stalls.describe)
        web_process_started.connect(fallback.start_in_web_process, dispatch_uid="integrations-fallback")
        flag_changed.connect(handlers.resume_queue_on_flag, dispatch_uid="integrations-resume")
        worker_ready.connect(handlers.wake_on_worker_start, dispatch_uid="integrations-wake", weak=False)
        task_postrun.connect(heartbeat.on_celery_task, dispatch_uid="integrations-heartbeat", weak=False)

from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integration queues"

    def ready(self) -> None:
        from celery.signals import (
            task_postrun,
            task_prerun,
            worker_init,
            worker_process_init,
            worker_ready,
            worker_shutdown,
        )
        from django.db import close_old_connections

        from integrations import (  # noqa: F401
            checks,
            fallback,
            gauges,
            handlers,
            heartbeat,
            queue_variables,
            stalls,
        )
        from mrdj.health import DEGRADATIONS
        from mrdj.signals import flag_changed, web_process_started

        if stalls.describe not in DEGRADATIONS:
            DEGRADATIONS.append(stalls.describe)
        web_process_started.connect(fallback.start_in_web_process, dispatch_uid="integrations-fallback")
        flag_changed.connect(handlers.resume_queue_on_flag, dispatch_uid="integrations-resume")
        worker_ready.connect(handlers.wake_on_worker_start, dispatch_uid="integrations-wake", weak=False)
        # CELERY_DB_REUSE_MAX keeps a worker's connection across tasks; one that an error
        # broke (a database restart, pg_terminate_backend) is still retired before the next.
        task_prerun.connect(close_old_connections, dispatch_uid="integrations-retire-connections", weak=False)
        task_postrun.connect(heartbeat.on_celery_task, dispatch_uid="integrations-heartbeat", weak=False)
        worker_process_init.connect(
            heartbeat.on_pool_child_start, dispatch_uid="integrations-child", weak=False
        )
        worker_init.connect(heartbeat.on_worker_init, dispatch_uid="integrations-alive", weak=False)
        worker_ready.connect(heartbeat.on_worker_ready, dispatch_uid="integrations-pulse", weak=False)
        worker_shutdown.connect(heartbeat.on_worker_shutdown, dispatch_uid="integrations-gone", weak=False)

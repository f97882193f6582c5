import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mrdj.settings")

app = Celery("mrdj")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_process_init.connect(weak=False)
def _telemetry_in_worker_process(**kwargs) -> None:
    """In each pool process after the fork: exporter threads do not survive a fork."""
    from mrdj import telemetry

    telemetry.bootstrap("worker")


@signals.beat_init.connect(weak=False)
def _telemetry_in_beat(**kwargs) -> None:
    from mrdj import telemetry

    telemetry.bootstrap("beat")

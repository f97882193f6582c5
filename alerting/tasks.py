from __future__ import annotations

from celery import shared_task

from alerting import deadman, evaluator, lifecycle, sender


# Periodic: their results are kept and shown in the admin (CELERY_TASK_ANNOTATIONS in settings).
@shared_task(name="alerting.tick")
def tick() -> dict[str, int]:
    """The upkeep and failed sends, then a wake for the evaluator of the figures, wherever it runs."""
    sent = len(lifecycle.upkeep())
    sender.resend_due()
    evaluator.wake_holder()
    return {"notifications": sent}


@shared_task(name="alerting.deadman_ping")
def deadman_ping() -> bool | None:
    """Beat's dead-man's switch: True when it told the monitor all is well, None when HEARTBEAT_URL
    is empty."""
    sent = deadman.ping()
    return None if sent is None else sent.report.healthy

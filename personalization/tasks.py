from __future__ import annotations

from celery import shared_task

from personalization import visitor_events


# Periodic: its result is kept and shown in the admin (CELERY_TASK_ANNOTATIONS in settings).
@shared_task(name="personalization.purge_expired")
def purge_expired() -> dict[str, int]:
    return {"purged": visitor_events.purge_expired()}

from __future__ import annotations

from celery import shared_task

from personalization import services


@shared_task(name="personalization.purge_expired", ignore_result=True)
def purge_expired() -> int:
    return services.purge_expired()

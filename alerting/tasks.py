from __future__ import annotations

from celery import shared_task

from alerting import services


@shared_task(name="alerting.tick", ignore_result=True)
def tick() -> int:
    return len(services.tick())

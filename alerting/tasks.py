from __future__ import annotations

from celery import shared_task

from alerting import deadman, services


@shared_task(name="alerting.tick", ignore_result=True)
def tick() -> int:
    return len(services.tick())


@shared_task(name="alerting.deadman_ping", ignore_result=True)
def deadman_ping() -> bool | None:
    """Beat's dead-man's switch: True when it told the monitor all is well, None when HEARTBEAT_URL
    is empty."""
    sent = deadman.ping()
    return None if sent is None else sent.report.healthy

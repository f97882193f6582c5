from __future__ import annotations

from celery import shared_task

from integrations import heartbeat, services


@shared_task(name="integrations.deliver", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def deliver(job_id: int, queue: str | None = None) -> str:
    return services.process_job(job_id, queue)


@shared_task(name="integrations.reconcile", ignore_result=True)
def reconcile() -> dict[str, int]:
    heartbeat.forget_old()
    return services.reconcile()

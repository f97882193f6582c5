from __future__ import annotations

from celery import shared_task

from integrations import engine, heartbeat, history, operations
from mrdj import pulses


@shared_task(name="integrations.drain", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def drain(queue: str) -> dict:
    return engine.drain_queue(queue)


@shared_task(name="integrations.reconcile", ignore_result=True)
def reconcile() -> dict[str, int]:
    heartbeat.forget_old()
    history.sample_if_due()
    done = operations.reconcile()
    pulses.record(pulses.RECONCILER)  # the dead-man's switch's evidence that beat and a worker run
    return done

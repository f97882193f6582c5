"""Reactions to what happens in mrdj below."""

from __future__ import annotations

from django.db import connections

from integrations import batches, engine, handoff
from integrations.queues import QUEUES


def resume_queue_on_flag(sender, name: str, new: bool | None, **kwargs) -> None:
    """A queue switched back on hands its held jobs on at once, not at the next beat."""
    if new:
        handoff.wake_all([queue.name for queue in QUEUES.values() if queue.flag == name])


def wake_on_worker_start(**kwargs) -> None:
    """A worker starting (a deploy, or a restart after a crash) wakes a drainer for each queue
    with due jobs at once (a drainer that died no longer holds its queue after its mark's
    expiry, a few seconds)."""
    if not handoff.uses_broker():
        return
    try:
        for queue in engine.enabled()():
            if batches.has_due(queue.name):
                handoff.wake(queue.name)
    finally:
        connections.close_all()  # the main process forks new pool children later

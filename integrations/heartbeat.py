"""Are workers consuming? Each consuming process records when it last did something."""

from __future__ import annotations

import os
import socket
import time
from datetime import timedelta

from django.utils import timezone

from integrations.models import WorkerHeartbeat

EVERY_SECONDS = 5.0
ALIVE_WITHIN = timedelta(seconds=60)
_last_beat = 0.0


def beat(kind: str) -> None:
    """Record this process as alive; a cheap no-op when it did so in the last few seconds."""
    global _last_beat
    if time.monotonic() - _last_beat < EVERY_SECONDS:
        return
    _last_beat = time.monotonic()
    name = f"{socket.gethostname()}:{os.getpid()}"
    WorkerHeartbeat.objects.update_or_create(name=name, defaults={"kind": kind, "seen_at": timezone.now()})


def alive(within: timedelta = ALIVE_WITHIN) -> list[WorkerHeartbeat]:
    return list(WorkerHeartbeat.objects.filter(seen_at__gte=timezone.now() - within))


def forget_old(older_than: timedelta = timedelta(days=1)) -> int:
    """Processes come and go with every deploy: drop those not seen for a day."""
    return WorkerHeartbeat.objects.filter(seen_at__lt=timezone.now() - older_than).delete()[0]


def on_celery_task(**kwargs) -> None:
    """Celery's task_postrun: a worker process that runs tasks is consuming."""
    beat("celery")

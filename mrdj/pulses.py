"""When mrdj's periodic duties last ran, whichever process ran them.

The dead-man's switch (alerting.deadman) pings its outside monitor only while these are
recent. A duty that runs several times a second writes at most every WRITE_EVERY per process:
the switch's limit is minutes, so a few seconds' lag costs nothing and saves the writes.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime

from django.utils import timezone

from mrdj.models import Pulse

RECONCILER = "reconciler"  # beat's integrations.reconcile task
EVALUATION = "alert evaluation"  # alerting.lifecycle.evaluate, in any process
WRITE_EVERY = 5.0  # seconds

_written: dict[str, float] = {}  # per process: the monotonic time each name was last written
_lock = threading.Lock()


def record(name: str, at: datetime | None = None) -> None:
    """The duty ran now (or at)."""
    Pulse.objects.update_or_create(name=name, defaults={"at": at or timezone.now()})


def beat(name: str) -> None:
    """record(), at most every WRITE_EVERY seconds from this process."""
    now = time.monotonic()
    with _lock:
        written = _written.get(name)
        if written is not None and now - written < WRITE_EVERY:
            return
        _written[name] = now
    record(name)


def last(name: str) -> datetime | None:
    return Pulse.objects.filter(name=name).values_list("at", flat=True).first()

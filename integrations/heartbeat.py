"""Are workers consuming? Each worker records when it was last alive.

One row per worker: a Celery worker's pool children write under their parent's name,
so the worker's own shutdown (a deploy, or an unrecoverable broker error) can delete
the row and the stall alert fires at the next evaluation, not ALIVE_WITHIN later. A
worker killed outright stops writing, and its row ages out after ALIVE_WITHIN.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import timedelta

from django.db import close_old_connections, connections

from mrdj import processes
from mrdj.models import Process

log = logging.getLogger(__name__)

EVERY_SECONDS = 5.0
ALIVE_WITHIN = timedelta(seconds=20)
_last_beat = 0.0
_owner_pid: int | None = None  # a pool child's worker (its parent); else this process


# The role of a process consuming so, in the process registry.
ROLES = {Process.Consumes.CELERY: Process.Role.WORKER, Process.Consumes.IN_PROCESS: Process.Role.WEB}


def _name() -> str:
    return processes.own_name(_owner_pid)


def beat(kind: str) -> None:
    """Record this worker as alive; a cheap no-op when it did so in the last few seconds."""
    global _last_beat
    if time.monotonic() - _last_beat < EVERY_SECONDS:
        return
    _last_beat = time.monotonic()
    record(kind)


def alive(kind: str | None = None) -> list[Process]:
    """The workers seen in the last ALIVE_WITHIN (only those of kind, celery or in-process, when given)."""
    return processes.alive(ALIVE_WITHIN, kind)


def forget_old() -> int:
    """Processes come and go with every deploy: drop those not seen for a day."""
    return processes.prune()


def on_celery_task(**kwargs) -> None:
    """Celery's task_postrun: a worker that runs tasks is consuming."""
    beat("celery")


def on_pool_child_start(**kwargs) -> None:
    """Celery's worker_process_init: the child writes under its worker's name."""
    global _owner_pid, _last_beat
    _owner_pid = os.getppid()
    _last_beat = 0.0


def record(kind: str) -> None:
    """Record this process as alive now (beat() does it at most every few seconds)."""
    processes.seen(_name(), ROLES[kind], kind)


def on_worker_init(**kwargs) -> None:
    """Celery's worker_init, before the pool starts: the worker counts as alive from the
    start, so that its pool's first evaluation does not page 'no worker' about itself."""
    try:
        record("celery")
    except Exception:  # the database may be down at start; the pulse records it later
        log.warning("worker heartbeat not recorded at start", exc_info=True)
    finally:
        connections.close_all()  # the pool is forked next


class _WorkerPulse(threading.Thread):
    """The worker's main process beats while it runs, so that an idle worker (no task
    for a while, beat elsewhere) still counts as alive."""

    def __init__(self) -> None:
        super().__init__(name="mrdj-worker-heartbeat", daemon=True)
        self.stopping = threading.Event()

    def run(self) -> None:
        while True:
            try:
                close_old_connections()
                record("celery")
            except Exception:
                log.warning("worker heartbeat not recorded", exc_info=True)
            if self.stopping.wait(EVERY_SECONDS):
                break
        connections.close_all()


_pulse: _WorkerPulse | None = None


def on_worker_ready(**kwargs) -> None:
    global _pulse
    _pulse = _WorkerPulse()
    _pulse.start()


def on_worker_shutdown(sender=None, **kwargs) -> None:
    """The worker is going (a deploy, or an error Celery cannot recover from): say so in the
    log, and take its row away so that mrdj notices at once when no worker is left."""
    code = getattr(sender, "exitcode", None)
    log.critical(
        "mrdj worker %s stops (exit code %s): jobs wait in the database until a worker runs again; "
        "with none left, mrdj raises a 'stalled' alert",
        _name(),
        code if code is not None else 0,
    )
    if _pulse is not None:
        _pulse.stopping.set()
    try:
        processes.forget(_name())
    except Exception:
        log.warning("worker heartbeat not removed", exc_info=True)
    finally:
        connections.close_all()

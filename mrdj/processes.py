"""The registry of running mrdj processes: one Process row per host:pid.

Two sides write it, each only its own fields, so that a web process which both consumes
jobs in-process and exports telemetry keeps one row:

- job consumers (integrations.heartbeat): register, seen, alive, last_seen, forget;
- telemetry: telemetry_started, exported, last_export, newest_export_or_start.

prune forgets the processes gone with a deploy or a recycled worker.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

from django.db.models import Max
from django.db.models.functions import Coalesce
from django.utils import timezone

from mrdj.models import Process

GONE_AFTER = timedelta(days=1)


def own_name(pid: int | None = None) -> str:
    """host:pid of this process (or of pid on this host)."""
    return f"{socket.gethostname()}:{pid or os.getpid()}"


# --- Job consumers


def register(name: str, role: str, consumes: str) -> None:
    """Record the process as consuming jobs, seen now (its row created if new)."""
    Process.objects.update_or_create(
        name=name, defaults={"role": role, "consumes": consumes, "seen_at": timezone.now()}
    )


def seen(name: str, role: str, consumes: str) -> None:
    """A consumer's heartbeat: one UPDATE (the row registered if it was not there)."""
    if not Process.objects.filter(name=name).update(role=role, consumes=consumes, seen_at=timezone.now()):
        register(name, role, consumes)


def alive(within: timedelta, consumes: str | None = None) -> list[Process]:
    """The job consumers seen within the period, newest first; only those consuming so, when given."""
    processes = Process.objects.filter(seen_at__gte=timezone.now() - within)
    if consumes:
        return list(processes.filter(consumes=consumes))
    return list(processes.exclude(consumes=Process.Consumes.NOTHING))


def last_seen(consumes: str) -> datetime | None:
    """When a process consuming so was last seen, alive or not."""
    return Process.objects.filter(consumes=consumes).aggregate(Max("seen_at"))["seen_at__max"]


def forget(name: str) -> None:
    """The process is going: it counts as a consumer no more, at once."""
    Process.objects.filter(name=name).delete()


def prune(older_than: timedelta = GONE_AFTER) -> int:
    """Forget the processes with no sign of life (seen, telemetry started or exported) for
    that long; returns how many."""
    cutoff = timezone.now() - older_than
    return (
        Process.objects.filter(seen_at__lt=cutoff)
        .exclude(started_at__gte=cutoff)
        .exclude(last_export_at__gte=cutoff)
        .delete()[0]
    )


# --- Telemetry


def telemetry_started(role: str) -> None:
    """This process starts exporting: its silence counts from now until its first export.
    Processes gone for a day are forgotten meanwhile."""
    now = timezone.now()
    exporting = {"role": role, "started_at": now, "last_export_at": None}
    Process.objects.update_or_create(
        name=own_name(), defaults=exporting, create_defaults={**exporting, "seen_at": now}
    )
    prune()


def exported() -> None:
    """This process's telemetry exported successfully just now."""
    Process.objects.filter(name=own_name()).update(last_export_at=timezone.now())


def last_export() -> datetime | None:
    """The newest successful export of any process."""
    return Process.objects.aggregate(Max("last_export_at"))["last_export_at__max"]


def newest_export_or_start() -> datetime | None:
    """The newest export of any process or, for a process yet to export, when it started;
    None when no process runs telemetry. Silence is counted from here."""
    return Process.objects.aggregate(newest=Max(Coalesce("last_export_at", "started_at")))["newest"]

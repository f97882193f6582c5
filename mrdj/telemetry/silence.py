"""The silence detector's records, kept in the process registry (mrdj.processes).

Each process running telemetry notes when it started exporting and when an export last
succeeded; the telemetry_silent alert and the dashboard read them through last_export()
and silent_for(). Imported before Django's apps are ready (settings, the Celery app), so the
registry is looked up when first called.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone


def record_started(role: str) -> None:
    """This process starts exporting: the silence detector counts from now until its first
    successful export."""
    from mrdj import processes

    processes.telemetry_started(role)


def record_export() -> None:
    from mrdj import processes

    processes.exported()


def last_export() -> datetime | None:
    """The last successful export of any process."""
    from mrdj import processes

    return processes.last_export()


def silent_for(now: datetime | None = None) -> timedelta | None:
    """How long no process has exported, counted from its last export or, before the first,
    from when it started exporting; None when no process runs telemetry."""
    from mrdj import processes

    newest = processes.newest_export_or_start()
    return (now or timezone.now()) - newest if newest else None

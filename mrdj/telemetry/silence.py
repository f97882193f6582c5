"""The silence detector: how long no process has exported telemetry.

Each process notes in the process registry (mrdj.processes) when it started exporting and
when an export last succeeded; the telemetry_silent alert and the dashboard read silent_for().
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from mrdj import processes


def silent_for(now: datetime | None = None) -> timedelta | None:
    """How long no process has exported, counted from its last export or, before the first,
    from when it started exporting; None when no process runs telemetry."""
    newest = processes.newest_export_or_start()
    return (now or timezone.now()) - newest if newest else None

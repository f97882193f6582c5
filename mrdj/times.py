"""One way to show a moment: in the operator's timezone (TIME_ZONE), with the zone, to the
second. Pages use the same form through templates/dashboard/when.html."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

SHOWN = "%Y-%m-%d %H:%M:%S %Z"


def shown(moment: datetime | None) -> str:
    return timezone.localtime(moment).strftime(SHOWN) if moment else ""


def zone_name() -> str:
    """The zone's abbreviation now (CET, CEST), for form labels."""
    return timezone.localtime().strftime("%Z")


def human_ms(ms: int) -> str:
    """4 min 12 s, 2 h 5 min: readable at a glance on a phone."""
    seconds = int(ms) // 1000
    if seconds < 60:
        return f"{seconds} s" if ms >= 1000 or ms == 0 else f"{ms} ms"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def human_delta(delta: timedelta) -> str:
    """human_ms of a timedelta; a negative one reads as 0 s."""
    return human_ms(max(int(delta.total_seconds() * 1000), 0))

"""One way to show a moment: in the operator's timezone (TIME_ZONE), with the zone, to the
second. Pages use the same form through templates/dashboard/when.html."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

SHOWN = "%Y-%m-%d %H:%M:%S %Z"


def shown(moment: datetime | None) -> str:
    return timezone.localtime(moment).strftime(SHOWN) if moment else ""


def zone_name() -> str:
    """The zone's abbreviation now (CET, CEST), for form labels."""
    return timezone.localtime().strftime("%Z")

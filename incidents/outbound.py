"""What an incident's own calls out (the DR bridge, the status page) share with each other and
with the alert deliveries: their timeouts and backoff (ALERT_HTTP_*_TIMEOUT_MS,
ALERT_DELIVERY_RETRY_*_MS, ALERT_DELIVERY_MAX_ATTEMPTS), one process trying a row at a time,
and how an answer is quoted on the timeline."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Q

from alerting import sender
from alerting.transports import base as transports
from mrdj.config import get_config

timeouts = sender.timeouts


def unclaimed(now: datetime) -> Q:
    """Rows no process is trying: never claimed, or its sender died mid-try."""
    return Q(claimed_until__isnull=True) | Q(claimed_until__lte=now)


def lease(now: datetime) -> datetime:
    """Until when a claimed row is left to its sender: longer than any try takes."""
    connect, read = timeouts()
    return now + timedelta(seconds=connect + read + 30)


def next_try(attempts: int, again: bool, now: datetime) -> datetime | None:
    """When to try again after a failed try, or None: retrying cannot help, or enough tries."""
    if not again or attempts >= get_config().value("ALERT_DELIVERY_MAX_ATTEMPTS"):
        return None
    return now + timedelta(milliseconds=sender.backoff_ms(attempts))


def excerpt(body: bytes, limit: int = 200) -> str:
    """An answer's first characters, on one line (for the timeline)."""
    return " ".join(transports.excerpt(body, limit).split())

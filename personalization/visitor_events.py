"""Visitor events in, visitor profiles out, old events deleted."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Min
from django.utils import timezone

from mrdj.config import get_config
from personalization.models import VisitorEvent

ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")
TYPE_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}")
KNOWN_TYPES = ("page_view", "package_viewed", "quote_requested", "booking_confirmed")


class InvalidEvent(Exception):
    """The body is not a valid event; the message names the field."""


@dataclass(frozen=True)
class Event:
    event_id: str
    visitor_id: str
    type: str
    properties: dict[str, Any]
    occurred_at: datetime

    @property
    def package(self) -> str:
        package = self.properties.get("package")
        return package[:100] if isinstance(package, str) else ""


# Events are the website's recent behaviour: a timestamp outside this window is a client's clock
# or a forgery, and one at the edge of the calendar would break every later date arithmetic.
EVENT_MAX_AGE = timedelta(days=365)
EVENT_MAX_AHEAD = timedelta(hours=24)


def valid_identifier(value: str) -> bool:
    return bool(ID_PATTERN.fullmatch(value))


def _identifier(data: dict, field: str) -> str:
    value = data.get(field)
    if not isinstance(value, str):
        raise InvalidEvent(f"'{field}' must be a string" if field in data else f"'{field}' is missing")
    if not ID_PATTERN.fullmatch(value):
        raise InvalidEvent(
            f"'{field}' must be 1-100 letters, digits or . _ : - (starting with a letter or digit)"
        )
    return value


def _timestamp(data: dict) -> datetime:
    value = data.get("timestamp")
    if "timestamp" not in data:
        raise InvalidEvent("'timestamp' is missing")
    if not isinstance(value, str):
        raise InvalidEvent("'timestamp' must be an ISO 8601 string, such as 2026-11-27T20:15:00Z")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidEvent("'timestamp' is not an ISO 8601 date and time") from None
    if when.tzinfo is None:
        raise InvalidEvent("'timestamp' must include a timezone (Z or +01:00)")
    now = timezone.now()
    try:
        within = now - EVENT_MAX_AGE <= when <= now + EVENT_MAX_AHEAD
    except OverflowError:  # 0001-01-01T00:00:00+14:00 lies before the first representable instant
        within = False
    if not within:
        raise InvalidEvent(
            f"'timestamp' must lie within {EVENT_MAX_AGE.days} days before and "
            f"{int(EVENT_MAX_AHEAD.total_seconds() // 3600)} hours after now"
        )
    return when


def parse_event(data: Any) -> Event:
    if not isinstance(data, dict):
        raise InvalidEvent("body must be a JSON object")
    event_type = data.get("type")
    if not isinstance(event_type, str) or not TYPE_PATTERN.fullmatch(event_type):
        raise InvalidEvent(
            "'type' must be a lower-case event name such as " + ", ".join(KNOWN_TYPES)
            if "type" in data
            else "'type' is missing"
        )
    properties = data.get("properties", {})
    if not isinstance(properties, dict):
        raise InvalidEvent("'properties' must be a JSON object")
    return Event(
        _identifier(data, "event_id"),
        _identifier(data, "visitor_id"),
        event_type,
        properties,
        _timestamp(data),
    )


def record(event: Event) -> bool:
    """Store the event once; False when its event id was stored before."""
    try:
        with transaction.atomic():
            VisitorEvent.objects.create(
                event_id=event.event_id,
                visitor_id=event.visitor_id,
                type=event.type,
                package=event.package,
                properties=event.properties,
                occurred_at=event.occurred_at,
            )
    except IntegrityError:
        return False
    return True


def profile(visitor_id: str, top: int = 5) -> dict[str, Any] | None:
    """What the website knows of a visitor, from aggregates over their events; None if unknown."""
    events = VisitorEvent.objects.filter(visitor_id=visitor_id)
    span = events.aggregate(first=Min("occurred_at"), last=Max("occurred_at"), total=Count("pk"))
    if not span["total"]:
        return None
    by_type = list(events.values_list("type").annotate(n=Count("pk")).order_by("-n", "type"))
    packages = list(
        events.exclude(package="")
        .values_list("package")
        .annotate(n=Count("pk"))
        .order_by("-n", "package")[:top]
    )
    counts = dict(by_type)
    return {
        "visitor_id": visitor_id,
        "events": span["total"],
        "counts_by_type": counts,
        "top_event_types": [name for name, _ in by_type[:top]],
        "top_packages": [{"package": name, "views": n} for name, n in packages],
        "first_seen": span["first"].isoformat(),
        "last_seen": span["last"].isoformat(),
        "asked_for_quote": counts.get("quote_requested", 0) > 0,
        "booked": counts.get("booking_confirmed", 0) > 0,
    }


def retention_days() -> int:
    return get_config().value("PERSONALIZATION_RETENTION_DAYS")


def purge_expired(now: datetime | None = None, batch_size: int = 1000) -> int:
    """Delete events older than the retention period, a batch at a time (short locks, bounded memory)."""
    cutoff = (now or timezone.now()) - timedelta(days=retention_days())
    deleted = 0
    while True:
        batch = list(
            VisitorEvent.objects.filter(occurred_at__lt=cutoff).values_list("pk", flat=True)[:batch_size]
        )
        if not batch:
            return deleted
        deleted += VisitorEvent.objects.filter(pk__in=batch).delete()[0]

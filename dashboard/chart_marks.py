"""What the charts mark on their time axis, so that cause and effect line up: alerts firing
and resolving, and the operator actions that change how jobs flow."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Q

from alerting.models import Alert
from mrdj.models import AuditEvent

# Actions on one queue name it as their target (or start with it: "rentguy job 12").
QUEUE_ACTIONS = ("queue.flush", "deadletter.replay", "job.cancel", "job.edit")
# Actions on the whole deployment concern every queue.
GLOBAL_ACTIONS = ("flag.change", "config.change", "queue.mode", "threshold.change")
MAX_MARKS = 300


def marks(queue: str, since: datetime) -> list[dict[str, Any]]:
    """Newest last; each {t (Unix seconds), kind (fired, resolved, action), text}."""
    found = []
    alerts = Alert.objects.filter(Q(queue=queue) | Q(queue="")).filter(
        Q(started_at__gte=since) | Q(resolved_at__gte=since)
    )
    for alert in alerts.order_by("-started_at")[:MAX_MARKS]:
        what = f"{alert.get_kind_display()} {alert.queue or 'all queues'}"
        if alert.started_at >= since:
            found.append(_mark(alert.started_at, "fired", f"alert fired: {what} ({alert.severity})"))
        if alert.resolved_at and alert.resolved_at >= since:
            found.append(_mark(alert.resolved_at, "resolved", f"alert resolved: {what}"))
    actions = AuditEvent.objects.filter(created_at__gte=since).filter(
        Q(action__in=QUEUE_ACTIONS, target__startswith=queue) | Q(action__in=GLOBAL_ACTIONS)
    )
    for event in actions.order_by("-created_at")[:MAX_MARKS]:
        target = f" {event.target}" if event.target else ""
        found.append(_mark(event.created_at, "action", f"{event.action}{target} by {event.actor}"))
    return sorted(found, key=lambda mark: mark["t"])[-MAX_MARKS:]


def _mark(at: datetime, kind: str, text: str) -> dict[str, Any]:
    return {"t": int(at.timestamp()), "kind": kind, "text": text}

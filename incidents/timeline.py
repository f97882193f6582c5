"""An incident's timeline, built from what mrdj already records: the incident's own entries
(opened, roles, notes, status updates, checklist, reminders), its alerts (fired, acknowledged,
resolved), their notifications with what each webhook answered, their Jira tickets, the DR
activation and its bridge, and the operator actions of the audit trail while it lasted."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from alerting.models import Alert, Delivery, DrActivation, Notification
from incidents.models import DrBridge, Entry, Incident
from mrdj.models import AuditEvent
from mrdj.times import shown

ORDER = ["alert", "notification", "incident", "jira", "dr", "audit"]
# Entries whose text needs saying what it is; the others are whole sentences.
LABELS = {
    Entry.Kind.NOTE: "Note",
    Entry.Kind.UPDATE: "Status update",
    Entry.Kind.ROOT_CAUSE: "Root cause",
    Entry.Kind.REMINDER: "Reminder sent",
}


@dataclass(frozen=True)
class Event:
    at: datetime
    source: str  # incident, alert, notification, jira, dr, audit
    text: str
    actor: str = ""
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "at": self.at.isoformat()}


def deliveries_text(deliveries: list[Delivery]) -> str:
    """What each webhook answered, never its URL."""
    if not deliveries:
        return "no webhook configured, or held back by a silence"
    parts = []
    for delivery in deliveries:
        answer = " ".join(str(part) for part in (delivery.response_code or "", delivery.error) if part)
        channel = f" {delivery.channel}" if delivery.channel else ""
        parts.append(f"{delivery.target}{channel}: {delivery.status}" + (f" ({answer})" if answer else ""))
    return "; ".join(parts)


def _alert_events(alert: Alert) -> list[Event]:
    name = f"alert {alert.pk} ({alert.get_kind_display()} on {alert.queue or 'all queues'})"
    peak = (alert.payload.get("peak") or {}).get("severity") or alert.severity
    worst = f"{peak} at its worst" if alert.resolved_at else f"{alert.severity} now"
    events = [Event(alert.started_at, "alert", f"Fired: {name}, {worst}")]
    if alert.acknowledged_at:
        events.append(
            Event(alert.acknowledged_at, "alert", f"Acknowledged {name}", alert.acknowledged_by_name)
        )
    if alert.jira_key and alert.jira_created_at:
        events.append(Event(alert.jira_created_at, "jira", f"Jira {alert.jira_key} opened for {name}"))
    if alert.resolved_at:
        events.append(Event(alert.resolved_at, "alert", f"Resolved: {name}, clear for the quiet period"))
    if alert.jira_key and alert.jira_resolved_at:
        events.append(Event(alert.jira_resolved_at, "jira", f"Jira {alert.jira_key} told of the resolution"))
    return events


def _notification_event(notification: Notification) -> Event:
    held = f", held back by {notification.silenced_by}" if notification.silenced_by_id else ""
    return Event(
        notification.created_at,
        "notification",
        f"Notified ({notification.get_event_display()}{held}): {notification.message}",
        detail=deliveries_text(list(notification.deliveries.all())),
    )


def _dr_events(activation: DrActivation | None) -> list[Event]:
    if activation is None:
        return []
    events = [
        _notification_event(notification)
        for notification in Notification.objects.filter(
            event=Notification.Event.DR, created_at=activation.triggered_at
        ).prefetch_related("deliveries")
    ]
    if activation.ended_at:
        events.append(Event(activation.ended_at, "dr", "DR activation ended: every alert has resolved"))
    return events


def _bridge_events(incident: Incident) -> list[Event]:
    """Who asked for the DR bridge, and what Slack answered to the last try."""
    bridge = DrBridge.objects.filter(incident=incident).first()
    if bridge is None:
        return []
    events = [Event(bridge.requested_at, "dr", "DR bridge asked for", bridge.requested_by)]
    answer = f"answered {bridge.response_code}" if bridge.response_code else "no answer"
    if bridge.created_at:
        events.append(Event(bridge.created_at, "dr", "DR bridge created", detail=f"Slack workflow {answer}"))
    elif bridge.tried_at:
        then = (
            f"next try {shown(bridge.next_attempt_at)}"
            if bridge.next_attempt_at
            else "given up: Create DR Bridge sends it again"
        )
        text = f"DR bridge not created (try {bridge.attempts}), {then}"
        events.append(Event(bridge.tried_at, "dr", text, detail=bridge.error))
    return events


def _summary(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{key}={item}" for key, item in value.items())
    return "" if value is None else str(value)


def _audit_events(incident: Incident, start: datetime) -> list[Event]:
    """Operator actions while the incident lasted; its own actions are entries already, and
    acknowledgements come with their alert."""
    trail = AuditEvent.objects.filter(created_at__gte=start).exclude(action__startswith="incident.")
    trail = trail.exclude(action="alert.ack")
    if incident.resolved_at:
        trail = trail.filter(created_at__lte=incident.resolved_at)
    events = []
    for event in trail.order_by("created_at", "id"):
        change = _summary(event.after)
        before = _summary(event.before)
        if before:
            change = f"{before} -> {change}"
        text = f"{event.action} {event.target}".strip() + (f": {change}" if change else "")
        events.append(Event(event.created_at, "audit", text, event.actor))
    return events


def build(incident: Incident) -> list[Event]:
    """Oldest first; the dashboard shows it newest first."""
    alerts = list(incident.alerts.all())
    events = []
    for entry in incident.entries.select_related("notification").prefetch_related("notification__deliveries"):
        detail = ""
        if entry.notification_id:
            detail = deliveries_text(list(entry.notification.deliveries.all()))
        label = LABELS.get(entry.kind)
        text = f"{label}: {entry.text}" if label else entry.text
        events.append(Event(entry.at, "incident", text, entry.actor, detail))
    for alert in alerts:
        events += _alert_events(alert)
    notifications = Notification.objects.filter(alert__in=alerts).select_related("silenced_by")
    events += [_notification_event(n) for n in notifications.prefetch_related("deliveries")]
    events += _dr_events(incident.dr_activation)
    events += _bridge_events(incident)
    start = min([incident.opened_at] + [alert.started_at for alert in alerts])
    events += _audit_events(incident, start)
    # At the same moment, cause before effect: the alert, what was sent, then what followed.
    return sorted(events, key=lambda event: (event.at, ORDER.index(event.source)))

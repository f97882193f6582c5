"""PagerDuty Events API v2: each mrdj alert is one PagerDuty alert, keyed by its dedup_key.

https://developer.pagerduty.com/docs/events-api-v2/trigger-events/: POST {routing_key,
event_action (trigger, acknowledge or resolve), dedup_key, payload {summary (at most 1024
characters), source, severity (critical, error, warning or info), component, group, class,
custom_details}, links [{href, text}], client, client_url}; acknowledge and resolve need only
routing_key, event_action and dedup_key. Answers 202 {status, message, dedup_key}; 400 is not
worth retrying; 429 and 5xx are (the base class retries them).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from alerting.content import NotificationContent
from alerting.models import Notification
from alerting.transports.base import Transport, clip

Event = Notification.Event

# How a PagerDuty acknowledgement names its author in mrdj (token:ops is the ops token's label).
ACTOR_PREFIX = "pagerduty:"
TRIGGERS = frozenset({Event.FIRING, Event.ESCALATED, Event.DEAD_LETTER, Event.UNACKNOWLEDGED})
ACTIONS = {Event.ACKNOWLEDGED: "acknowledge", Event.RESOLVED: "resolve"}
SEVERITIES = {"critical": "critical", "warning": "warning"}


def dedup_key(content: NotificationContent) -> str:
    return content.alert_label or f"mrdj-alert-id-{content.alert_id}"


class PagerDuty(Transport):
    service = "pagerduty"

    @classmethod
    def receives(cls, event: str, silenced: bool = False) -> bool:
        """Alerts only: a DR call, incident reminder or smoke test would open a PagerDuty alert
        that nothing resolves. Closing one is never noise, so it goes out under a silence too."""
        if silenced:
            return event in ACTIONS
        return event in TRIGGERS or event in ACTIONS

    def body(self, content: NotificationContent, channel: str) -> dict[str, Any]:
        action = ACTIONS.get(content.event, "trigger")
        body: dict[str, Any] = {
            "routing_key": self.secret,
            "event_action": action,
            "dedup_key": dedup_key(content),
        }
        if action != "trigger":
            return body
        dashboard = content.dashboard_url
        details = {
            "figures": content.figures,
            "thresholds": content.limits,
            "backlog": content.backlog,
            "retry_age": content.retry_age,
            "runbook": content.runbook,
            "escalation": content.escalation,
            "dead_letter_new": content.dead_letter_new,
            "alert_id": content.alert_id,
            "started_at": content.started_at,
            "event": content.event,
        }
        body["payload"] = {
            "summary": clip(content.title, 1024),
            "source": urlsplit(dashboard).hostname or "mrdj",
            "severity": SEVERITIES.get(content.severity, "error"),
            "component": content.queue,
            "group": "mrdj-queues",
            "class": content.kind,
            "custom_details": details,
        }
        body["links"] = [{"href": dashboard, "text": "mrdj dashboard"}]
        body["client"] = "mrdj (Mister DJ operations)"
        body["client_url"] = dashboard
        return body

"""PagerDuty's v3 webhooks: an incident acknowledged in PagerDuty acknowledges its mrdj alert, and
its resolution is recorded on the incident timeline.

Signature (developer.pagerduty.com, Webhooks: Verifying Signatures): X-PagerDuty-Signature holds
one or more comma-separated "v1=<hex HMAC-SHA256 of the raw body>", one per signing secret while a
secret is rotated; v1 is the only version defined, and no timestamp is signed. Payload (Webhooks
Overview): {"event": {"id", "event_type", "resource_type", "occurred_at", "agent": {"summary",
"type", ...} or null, "data": {"id", "type": "incident", "number", "incident_key", ...}}}. An
incident opened by an Events API v2 event carries that event's dedup_key as its incident_key,
which is how mrdj finds its alert (mrdj-alert-<key>, see transports/pagerduty.py).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from alerting import alert_actions
from alerting.models import Alert
from alerting.transports.pagerduty import ACTOR_PREFIX
from mrdj import audit
from mrdj.api import BadRequest, json_error, parse_json, read_body
from mrdj.config import get_config
from mrdj.models import AuditEvent

# PagerDuty drops any webhook over 256 KB (Webhooks: Behavior, Size Limit).
MAX_BODY_BYTES = 256 * 1024
MAX_SIGNATURES = 10  # a rotation needs two; more is not PagerDuty
ALERT_KEY_PREFIX = "mrdj-alert-"  # Alert.label
RESOLVED_ACTION = "alert.pagerduty.resolved"
HANDLED = ("incident.acknowledged", "incident.resolved")


class BadSignature(Exception):
    """The request cannot be shown to come from PagerDuty: 401, and nothing changes."""


@dataclass(frozen=True)
class IncidentEvent:
    event_type: str
    incident_id: str
    incident_number: Any
    incident_key: str | None
    agent: str  # who did it in PagerDuty, as its summary (a user's name)

    @property
    def actor(self) -> str:
        return ACTOR_PREFIX + self.agent


def verify(body: bytes, header: str) -> None:
    """Raises BadSignature unless one v1 signature is the HMAC of body with one configured secret."""
    secrets = [secret for secret in get_config().value("PAGERDUTY_WEBHOOK_SECRET") if secret]
    if not secrets:
        raise BadSignature("PAGERDUTY_WEBHOOK_SECRET is not set: PagerDuty's signature cannot be checked")
    if not header.strip():
        raise BadSignature("X-PagerDuty-Signature is missing")
    given = []
    for part in header.split(",")[:MAX_SIGNATURES]:
        version, _, signature = part.strip().partition("=")
        if version == "v1" and signature:
            given.append(signature.strip().lower().encode())
    if not given:
        raise BadSignature("X-PagerDuty-Signature holds no v1 signature (the only version PagerDuty defines)")
    expected = [hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode() for secret in secrets]
    # Every pair is compared, each in constant time.
    matches = [hmac.compare_digest(mine, theirs) for mine in expected for theirs in given]
    if not any(matches):
        raise BadSignature("X-PagerDuty-Signature does not match PAGERDUTY_WEBHOOK_SECRET")


def _text(value: Any, where: str, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not (value or optional):
        raise BadRequest(f"'{where}' must be a {'string' if optional else 'non-empty string'}")
    return value


def _agent_name(agent: Any) -> str:
    if agent is None:
        return "PagerDuty"
    if not isinstance(agent, dict):
        raise BadRequest("'event.agent' must be an object or null")
    name = agent.get("summary") or agent.get("id") or "PagerDuty"
    if not isinstance(name, str):
        raise BadRequest("'event.agent.summary' must be a string")
    printable = "".join(char if char.isprintable() else " " for char in name)
    return " ".join(printable.split())[:140] or "PagerDuty"


def parse(body: bytes) -> IncidentEvent | None:
    """The incident event, None for an event type mrdj does not act on; BadRequest naming the
    problem when the body is not a v3 webhook."""
    data = parse_json(body)
    if not isinstance(data, dict) or not isinstance(data.get("event"), dict):
        raise BadRequest("body must be a JSON object with an 'event' object (a PagerDuty v3 webhook)")
    event = data["event"]
    event_type = _text(event.get("event_type"), "event.event_type")
    if event_type not in HANDLED:
        return None
    incident = event.get("data")
    if not isinstance(incident, dict) or incident.get("type") != "incident":
        raise BadRequest(f"'event.data' of {event_type} must be an object of type 'incident'")
    return IncidentEvent(
        event_type=event_type,
        incident_id=_text(incident.get("id"), "event.data.id", optional=True) or "",
        incident_number=incident.get("number") if isinstance(incident.get("number"), int) else None,
        incident_key=_text(incident.get("incident_key"), "event.data.incident_key", optional=True),
        agent=_agent_name(event.get("agent")),
    )


def alert_for(incident_key: str | None) -> Alert | None:
    if not incident_key or not incident_key.startswith(ALERT_KEY_PREFIX):
        return None
    return Alert.objects.filter(key=incident_key.removeprefix(ALERT_KEY_PREFIX)).first()


def apply(event: IncidentEvent, now: datetime | None = None) -> dict[str, Any]:
    """Act on one incident event; the answer says what changed (PagerDuty only needs a 2xx)."""
    now = now or timezone.now()
    alert = alert_for(event.incident_key)
    if alert is None:
        return {"result": "ignored", "reason": "the incident is not an mrdj alert"}
    if event.event_type == "incident.acknowledged":
        if not alert.firing or not alert_actions.acknowledge(alert, event.actor, now):
            return {"result": "unchanged", "alert_id": alert.pk, "reason": _why_unchanged(alert)}
        return {"result": "acknowledged", "alert_id": alert.pk, "acknowledged_by": event.actor}
    target = f"alert {alert.pk}: {alert.queue or 'all'} {alert.kind}"
    if AuditEvent.objects.filter(action=RESOLVED_ACTION, target=target).exists():
        return {"result": "unchanged", "alert_id": alert.pk, "reason": "its resolution is recorded already"}
    after = {"incident": event.incident_id, "number": event.incident_number, "mrdj_alert": alert.state}
    audit.record(RESOLVED_ACTION, actor=event.actor, target=target, after=after, at=now)
    return {"result": "recorded", "alert_id": alert.pk}


def _why_unchanged(alert: Alert) -> str:
    if alert.acknowledged_at:
        return f"acknowledged already by {alert.acknowledged_by_name}"
    return "the alert is resolved"


@csrf_exempt
@require_POST
def receive(request: HttpRequest) -> JsonResponse:
    """The URL of the PagerDuty webhook subscription: signed by PagerDuty, nothing else admits."""
    try:
        body = read_body(request, MAX_BODY_BYTES)
        verify(body, request.headers.get("X-PagerDuty-Signature", ""))
        event = parse(body)
    except BadSignature as problem:
        return json_error(str(problem), 401)
    except BadRequest as problem:
        return json_error(str(problem), problem.status)
    if event is None:
        return JsonResponse({"result": "ignored", "reason": "mrdj acts on " + " and ".join(HANDLED)})
    return JsonResponse(apply(event))

"""The DR bridge: when the DR plan activates, mrdj starts the Slack workflow that opens the war
room (ALERT_DR_BRIDGE_WEBHOOK_URL, a Workflow Builder webhook trigger), once per incident; the
Create DR Bridge button on the incident page does the same by hand.

Slack's webhook triggers take a flat JSON object of string values, one per variable the
workflow declares, and answer {"ok": true} (https://slack.com/help/articles/360041352714).
The try leaves from the alert sender's threads after commit, so Slack being slow or down
holds up neither an evaluation, nor the page, nor the alert webhooks (one thread at most).
A 5xx, a 429 or no answer is tried again with the alert deliveries' backoff
(ALERT_DELIVERY_RETRY_*_MS, ALERT_DELIVERY_MAX_ATTEMPTS) by the next tick that finds it
due; any other answer is final (the URL or the workflow is wrong) until someone asks again.
A try that got no answer in time may still have started the workflow: during a DR, two
bridges are better than none.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from alerting import sender
from incidents.deadlines import incident_url
from incidents.incident_actions import IncidentError
from incidents.models import DrBridge, Entry, Incident, Role
from incidents.outbound import excerpt, lease, next_try, timeouts, unclaimed
from mrdj import audit, http
from mrdj.config import get_config
from mrdj.times import shown

log = logging.getLogger(__name__)
# The workflow's variables (all text): declare these names in Workflow Builder's webhook step.
VARIABLES = (
    "incident_reference",
    "incident_title",
    "severity",
    "dr_reason",
    "activated_at",
    "queues",
    "dashboard_url",
    "incident_commander",
)
NO_COMMANDER = "none yet"


def _url() -> str:
    return get_config().value("ALERT_DR_BRIDGE_WEBHOOK_URL")


def variables(incident: Incident, requested_by: str) -> dict[str, str]:
    """What the workflow receives: text only, as Slack's webhook triggers require."""
    commander = incident.roles.filter(name=Role.Name.COMMANDER).first()
    activated = incident.dr_activated_at
    return {
        "incident_reference": incident.reference,
        "incident_title": incident.title,
        "severity": incident.severity,
        "dr_reason": incident.dr_reason or f"asked for by {requested_by} (the DR trigger did not fire)",
        "activated_at": shown(activated) if activated else "",
        "queues": ", ".join(queue or "every queue" for queue in incident.queues) or "none",
        "dashboard_url": incident_url(incident),
        "incident_commander": commander.holder if commander else NO_COMMANDER,
    }


# --- Asking for it


def request(incident: Incident, actor: Any, now: datetime) -> tuple[bool, str]:
    """Ask for the incident's bridge: sent unless Slack accepted it already. Whether a try was
    asked for, and a sentence saying what happens; IncidentError when no bridge is configured."""
    if not _url():
        raise IncidentError(
            "DR bridge: ALERT_DR_BRIDGE_WEBHOOK_URL is empty; set it on the Configuration tab"
        )
    who = audit.actor_fields(actor)["actor"]
    reference = incident.reference
    with transaction.atomic():
        bridge, made = DrBridge.objects.get_or_create(
            incident=incident, defaults={"requested_at": now, "requested_by": who, "next_attempt_at": now}
        )
        if bridge.created_at:
            return False, f"the DR bridge of {reference} exists: created {shown(bridge.created_at)}"
        again = DrBridge.objects.filter(unclaimed(now), pk=bridge.pk, created_at__isnull=True)
        if not made and not again.update(requested_at=now, requested_by=who, next_attempt_at=now, attempts=0):
            return False, f"the DR bridge of {reference} is being sent right now"
        transaction.on_commit(lambda: sender.in_background(send, bridge.pk, now))
    return True, f"creating the DR bridge of {reference}: Slack's answer shows on the timeline"


def request_by_hand(incident: Incident, actor: Any, now: datetime | None = None) -> str:
    """The Create DR Bridge button; audited when it sends."""
    now = now or timezone.now()
    if not incident.active:
        raise IncidentError(f"{incident.reference} is resolved: no DR bridge for it any more")
    sent, said = request(incident, actor, now)
    if sent:
        audit.record("incident.dr_bridge", actor=actor, target=incident.reference, at=now)
    return said[0].upper() + said[1:] + "."


def on_dr_activated(incident: Incident, now: datetime) -> None:
    """The DR plan activated for incident: ask for its bridge when one is configured. An incident
    whose plan activates again keeps the bridge Slack accepted; its timeline says so."""
    if not _url():
        return
    sent, said = request(incident, "mrdj", now)
    if not sent:
        incident.add_entry(Entry.Kind.DR, f"DR bridge not started again: {said}.", now)


# --- Sending it


def send_due(now: datetime) -> None:
    """On every tick: hand the bridges due a try to the sender's threads."""
    due = DrBridge.objects.filter(unclaimed(now), created_at__isnull=True, next_attempt_at__lte=now)
    for pk in due.exclude(incident__state=Incident.State.RESOLVED).values_list("pk", flat=True):
        sender.in_background(send, pk, now)


def send(bridge_id: int, now: datetime | None = None) -> DrBridge | None:
    """One try, when it is due and no other process is trying; the result is recorded on the
    bridge (the timeline shows it). None when there was nothing to do."""
    now = now or timezone.now()
    claimed = DrBridge.objects.filter(
        unclaimed(now), pk=bridge_id, created_at__isnull=True, next_attempt_at__lte=now
    ).update(claimed_until=lease(now))
    if not claimed:
        return None
    bridge = DrBridge.objects.select_related("incident").get(pk=bridge_id)
    bridge.attempts += 1
    url = _url()
    if not url:
        return _record(bridge, now, None, "ALERT_DR_BRIDGE_WEBHOOK_URL is empty", again=False)
    body = variables(bridge.incident, bridge.requested_by)
    connect, read = timeouts()
    try:
        answer = http.post_json(url, body, connect_timeout=connect, read_timeout=read)
    except http.HttpError as error:  # its message never holds the URL, a secret
        return _record(bridge, now, None, f"no answer: {error}", again=True)
    return _record(bridge, now, answer.status, *_judge(answer))


def _judge(answer: http.Response) -> tuple[str, bool]:
    """The error ("" when accepted), and whether trying again may help."""
    quoted = excerpt(answer.body)
    if 200 <= answer.status < 300:
        try:
            data = json.loads(answer.body)
        except ValueError:
            data = None
        if isinstance(data, dict) and data.get("ok") is False:
            return f"Slack refused it: {data.get('error') or quoted}", False
        return "", False
    again = answer.status == 429 or answer.status >= 500
    return f"answered {answer.status}" + (f": {quoted}" if quoted else ""), again


def _record(bridge: DrBridge, now: datetime, status: int | None, error: str, again: bool) -> DrBridge:
    bridge.tried_at, bridge.response_code, bridge.error, bridge.claimed_until = now, status, error[:300], None
    reference = bridge.incident.reference
    if not error:
        bridge.created_at, bridge.next_attempt_at = now, None
        log.warning("DR bridge of %s created (try %s)", reference, bridge.attempts)
    else:
        bridge.next_attempt_at = next_try(bridge.attempts, again, now)
        log.warning(
            "DR bridge of %s not created (try %s%s): %s",
            reference,
            bridge.attempts,
            "" if bridge.next_attempt_at else ", giving up",
            error,
        )
    bridge.save(
        update_fields=[
            "attempts",
            "tried_at",
            "response_code",
            "error",
            "claimed_until",
            "created_at",
            "next_attempt_at",
        ]
    )
    return bridge


def status(incident: Incident) -> str:
    """One line for the incident page."""
    bridge = DrBridge.objects.filter(incident=incident).first()
    if bridge is None:
        return "not created" if _url() else "not configured (ALERT_DR_BRIDGE_WEBHOOK_URL is empty)"
    if bridge.created_at:
        return f"created {shown(bridge.created_at)}"
    if not bridge.tried_at:
        return "being created"
    if bridge.next_attempt_at:
        return f"not created yet ({bridge.error}); next try {shown(bridge.next_attempt_at)}"
    return f"not created ({bridge.error}): press Create DR Bridge to send it again"

"""PagerDuty: mrdj's alerts as PagerDuty alerts (Events API v2, against a local stand-in that checks
the documented request shape), and PagerDuty's signed v3 webhooks acknowledging them back."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import timedelta

import pytest
from django.core import checks
from django.test import Client
from django.utils import timezone

from alerting import alert_actions, lifecycle, sender, targets
from alerting.models import Alert, Delivery, Notification
from incidents import timeline
from incidents.models import Incident
from integrations.models import Job, Status
from integrations.operations import recount
from mrdj.config import ConfigError, get_config
from mrdj.models import AuditEvent
from tests.conftest import wait_until
from tests.receivers import Answer, Receiver
from tests.support import put_jobs

pytestmark = pytest.mark.django_db(transaction=True)
ROUTING_KEY = "R0UT1NGKEYf0rTests0123456789abcd"
SECRET = "pd-webhook-secret-for-tests"
WEBHOOK = "/integrations/pagerduty/webhook"
MINUTE = timedelta(minutes=1)
ACCEPTED = b'{"status": "success", "message": "Event processed"}'


def enqueue_shape_problems(request) -> list[str]:
    """What PagerDuty's Events API v2 (Send an Alert Event) would refuse in this request."""
    problems = []
    if (request.method, request.path) != ("POST", "/v2/enqueue"):
        problems.append(f"{request.method} {request.path} is not POST /v2/enqueue")
    if not request.headers.get("Content-Type", "").startswith("application/json"):
        problems.append("Content-Type is not application/json")
    body = request.json()
    if body.get("routing_key") != ROUTING_KEY:
        problems.append("routing_key is not the configured integration key")
    if body.get("event_action") not in ("trigger", "acknowledge", "resolve"):
        problems.append("event_action must be trigger, acknowledge or resolve")
    if not isinstance(body.get("dedup_key"), str) or not 0 < len(body["dedup_key"]) <= 255:
        problems.append("dedup_key must be a string of at most 255 characters")
    if body.get("event_action") == "trigger":
        payload = body.get("payload") or {}
        if not isinstance(payload.get("summary"), str) or not 0 < len(payload["summary"]) <= 1024:
            problems.append("payload.summary is required, at most 1024 characters")
        if not payload.get("source"):
            problems.append("payload.source is required")
        if payload.get("severity") not in ("critical", "error", "warning", "info"):
            problems.append("payload.severity must be critical, error, warning or info")
        if not all(isinstance(link, dict) and link.get("href") for link in body.get("links", [])):
            problems.append("every link needs an href")
    return problems


def stand_in(request) -> Answer | None:
    """A 400 naming what is wrong, as PagerDuty answers; else the scripted or default answer."""
    problems = enqueue_shape_problems(request)
    if problems:
        answer = {"status": "invalid event", "message": "Event object is invalid", "errors": problems}
        return Answer(400, body=json.dumps(answer).encode())
    return None


@pytest.fixture
def pagerduty(webhooks, managed_env):
    """The chat webhooks plus a pagerduty+ entry, whose events go to a stand-in for PagerDuty."""
    with Receiver(default=Answer(202, body=ACCEPTED), respond=stand_in) as receiver:
        chat = get_config().value("ALERT_WEBHOOK_URLS")
        managed_env.update(
            {
                "ALERT_WEBHOOK_URLS": ",".join([*chat, f"pagerduty+{ROUTING_KEY}"]),
                "ALERT_PAGERDUTY_EVENTS_URL": receiver.url + "/v2/enqueue",
                "PAGERDUTY_WEBHOOK_SECRET": SECRET,
                "ALERT_QUEUE_WARNING_BACKLOG": "1",
                "ALERT_QUEUE_CRITICAL_BACKLOG": "2",
            }
        )
        yield receiver
        sender.shutdown()  # nothing in flight once the stand-in closes


def events_sent(receiver, count: int) -> list[dict]:
    wait_until(lambda: len(receiver.received) >= count, timeout=10, message=f"{count} PagerDuty events")
    sender.shutdown()
    return [request.json() for request in receiver.received]


def clear_queue(queue: str) -> None:
    Job.objects.filter(queue=queue).update(status=Status.DONE)
    recount()


def pagerduty_delivery(notification: Notification) -> Delivery:
    return notification.deliveries.get(service="pagerduty")


# --- The entry


def test_it_reads_a_pagerduty_entry_without_ever_showing_its_key(pagerduty):
    target = targets.parse_target(f"pagerduty+{ROUTING_KEY}", "entry 1")
    assert (target.service, target.url) == ("pagerduty", pagerduty.url + "/v2/enqueue")
    assert ROUTING_KEY not in target.label + repr(target) + target.fingerprint
    assert target.label.startswith("pagerduty 127.0.0.1 #")
    moved = targets.Target("pagerduty", "https://events.eu.pagerduty.com/v2/enqueue", ROUTING_KEY)
    assert moved.fingerprint == target.fingerprint  # deliveries find it again when the endpoint moves


@pytest.mark.parametrize(
    "key", ["", "tooshort", ROUTING_KEY + "x", "https://events.pagerduty.com/v2/enqueue"]
)
def test_a_broken_pagerduty_entry_is_refused_without_echoing_it(managed_env, key):
    managed_env.set("ALERT_WEBHOOK_URLS", f"https://ok.example.com/hook,pagerduty+{key}")
    with pytest.raises(ConfigError, match="32-character integration key") as refused:
        targets.webhook_targets()
    assert "ALERT_WEBHOOK_URLS entry 2" in str(refused.value)
    assert not key or key not in str(refused.value)
    warnings = [f"{m.id}: {m.msg}" for m in checks.run_checks()]
    assert any(w.startswith("alerting.W001: ALERT_WEBHOOK_URLS entry 2") for w in warnings), warnings


# --- Outbound: trigger, acknowledge, resolve


def test_one_alert_is_one_pagerduty_alert_triggered_acknowledged_and_resolved(pagerduty, webhooks):
    put_jobs("rentguy", Status.PENDING, 2)
    t0 = timezone.now()
    lifecycle.tick(t0)
    alert = Alert.objects.get()
    (trigger,) = events_sent(pagerduty, 1)
    request = pagerduty.received[0]
    assert (request.method, request.path) == ("POST", "/v2/enqueue")
    assert request.headers["Content-Type"] == "application/json"
    assert trigger["routing_key"] == ROUTING_KEY and trigger["event_action"] == "trigger"
    assert trigger["dedup_key"] == f"mrdj-alert-{alert.key}"
    payload = trigger["payload"]
    assert payload["summary"] == "[CRITICAL] rentguy: queue thresholds exceeded"
    assert (payload["source"], payload["severity"], payload["component"]) == (
        "ops.misterdj.example",
        "critical",
        "rentguy",
    )
    assert (payload["group"], payload["class"]) == ("mrdj-queues", "backlog")
    details = payload["custom_details"]
    assert details["figures"]["backlog"] == 2
    assert details["thresholds"]["warning_backlog"] == 1 and details["thresholds"]["critical_backlog"] == 2
    assert details["runbook"].startswith("Runbook 'Backlog Critical'")
    assert trigger["links"] == [{"href": "https://ops.misterdj.example/dashboard/", "text": "mrdj dashboard"}]
    assert trigger["client_url"] == "https://ops.misterdj.example/dashboard/" and trigger["client"]

    assert alert_actions.acknowledge(alert, "token:ops", t0 + MINUTE)
    acknowledge = events_sent(pagerduty, 2)[1]
    assert acknowledge == {
        "routing_key": ROUTING_KEY,
        "event_action": "acknowledge",
        "dedup_key": trigger["dedup_key"],
    }

    clear_queue("rentguy")
    lifecycle.tick(t0 + 2 * MINUTE)
    assert [n.event for n in lifecycle.tick(t0 + 13 * MINUTE)] == ["resolved"]
    resolve = events_sent(pagerduty, 3)[2]
    assert resolve == {
        "routing_key": ROUTING_KEY,
        "event_action": "resolve",
        "dedup_key": trigger["dedup_key"],
    }
    assert len(webhooks.to("/slack")) == 2  # fired and resolved: acknowledgements are for PagerDuty only

    # Each event's result on the incident timeline, never the key.
    details = {event.text.split(":")[0]: event.detail for event in timeline.build(Incident.objects.get())}
    for label in ("Notified (firing)", "Notified (acknowledgement)", "Notified (resolved)"):
        assert "pagerduty 127.0.0.1 #" in details[label] and ": sent (202)" in details[label], details
    assert "slack" not in details["Notified (acknowledgement)"]
    assert ROUTING_KEY not in json.dumps([e.as_dict() for e in timeline.build(Incident.objects.get())])


def test_a_warning_is_a_warning_in_pagerduty(pagerduty, managed_env):
    managed_env.set("ALERT_QUEUE_CRITICAL_BACKLOG", "5")
    put_jobs("sevensa", Status.PENDING, 1)
    lifecycle.tick()
    (trigger,) = events_sent(pagerduty, 1)
    assert trigger["payload"]["severity"] == "warning"
    assert trigger["payload"]["component"] == "sevensa"


@pytest.mark.parametrize("status", [429, 500, 503])
def test_busy_or_failing_pagerduty_is_tried_again_with_the_same_event(pagerduty, status):
    pagerduty.script(Answer(status, body=b'{"status": "throttled"}'), Answer(status))
    put_jobs("rentguy", Status.PENDING, 2)
    lifecycle.tick()
    delivery = Delivery.objects.get(service="pagerduty")
    for _ in range(3):
        sender.shutdown()
        delivery.refresh_from_db()
        if delivery.status == Delivery.Status.SENT:
            break
        assert delivery.status == Delivery.Status.RETRY and delivery.response_code == status
        sender.send(delivery.pk, timezone.now() + MINUTE)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("sent", 3, 202)
    bodies = [request.body for request in pagerduty.received]
    assert len(bodies) == 3 and len(set(bodies)) == 1


def test_a_refused_event_is_not_retried_and_its_error_never_shows_the_key(pagerduty, caplog):
    refusal = {"status": "invalid event", "errors": [f"routing key {ROUTING_KEY} is not valid"]}
    pagerduty.script(Answer(400, body=json.dumps(refusal).encode()))
    put_jobs("rentguy", Status.PENDING, 2)
    with caplog.at_level(logging.WARNING):
        lifecycle.tick()
        events_sent(pagerduty, 1)
    delivery = Delivery.objects.get(service="pagerduty")
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("failed", 1, 400)
    assert "pagerduty answered 400" in delivery.error and "<secret>" in delivery.error
    shown = delivery.error + delivery.response_body + delivery.target + caplog.text
    assert ROUTING_KEY not in shown


def test_a_silence_holds_back_the_page_but_not_the_resolve(pagerduty, webhooks):
    put_jobs("rentguy", Status.PENDING, 2)
    t0 = timezone.now()
    lifecycle.tick(t0)
    events_sent(pagerduty, 1)
    alert_actions.create_silence("", t0 + timedelta(hours=1), "maintenance", "token:ops", t0 + MINUTE)
    clear_queue("rentguy")
    lifecycle.tick(t0 + 2 * MINUTE)
    lifecycle.tick(t0 + 13 * MINUTE)
    assert [body["event_action"] for body in events_sent(pagerduty, 2)] == ["trigger", "resolve"]
    assert len(webhooks.to("/slack")) == 1  # the chat webhooks stay quiet under the silence


def test_a_pagerduty_route_for_critical_hears_the_resolution_after_a_drop_to_warning(webhooks, managed_env):
    with Receiver(default=Answer(202, body=ACCEPTED), respond=stand_in) as receiver:
        managed_env.update(
            {
                "ALERT_SEVERITY_ROUTE": f"critical:pagerduty+{ROUTING_KEY}",
                "ALERT_PAGERDUTY_EVENTS_URL": receiver.url + "/v2/enqueue",
                "ALERT_QUEUE_WARNING_BACKLOG": "1",
                "ALERT_QUEUE_CRITICAL_BACKLOG": "2",
            }
        )
        t0 = timezone.now()
        jobs = put_jobs("rentguy", Status.PENDING, 1)
        lifecycle.tick(t0)
        sender.shutdown()
        assert receiver.received == []  # a warning does not page
        put_jobs("rentguy", Status.PENDING, 1)
        lifecycle.tick(t0 + MINUTE)
        Job.objects.filter(pk__in=jobs).update(status=Status.DONE)
        recount()
        lifecycle.tick(t0 + 2 * MINUTE)  # back to warning, still firing
        assert Alert.objects.get().severity == "warning"
        clear_queue("rentguy")
        lifecycle.tick(t0 + 3 * MINUTE)
        lifecycle.tick(t0 + 14 * MINUTE)
        assert [body["event_action"] for body in events_sent(receiver, 2)] == ["trigger", "resolve"]


def test_the_smoke_test_never_pages(pagerduty):
    deliveries = alert_actions.send_test_alert("token:ops")
    assert {delivery.service for delivery in deliveries} == {"slack", "discord", "teams", "json"}
    sender.shutdown()
    assert pagerduty.received == []


# --- Inbound: PagerDuty's v3 webhooks


def signed(body: bytes, secret: str = SECRET) -> str:
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def incident_event(alert: Alert, event_type: str = "incident.acknowledged", **changes) -> dict:
    """Shaped as PagerDuty's Webhooks Overview example."""
    event = {
        "id": "01DEN0RJZ3NE6JK9O4BC1I8RZE",
        "event_type": event_type,
        "resource_type": "incident",
        "occurred_at": "2026-12-03T17:00:00.000Z",
        "agent": {
            "html_url": "https://misterdj.pagerduty.com/users/PXPGF42",
            "id": "PXPGF42",
            "self": "https://api.pagerduty.com/users/PXPGF42",
            "summary": "Earline Greenholt",
            "type": "user_reference",
        },
        "client": {"name": "PagerDuty"},
        "data": {
            "id": "PGR0VU2",
            "type": "incident",
            "self": "https://api.pagerduty.com/incidents/PGR0VU2",
            "number": 2,
            "status": event_type.removeprefix("incident."),
            "incident_key": alert.label,
            "title": "[CRITICAL] rentguy: queue thresholds exceeded",
        },
    }
    event.update(changes)
    return {"event": event}


def post(client, body: bytes, signature: str | None = None):
    headers = {} if signature is None else {"HTTP_X_PAGERDUTY_SIGNATURE": signature}
    return client.post(WEBHOOK, data=body, content_type="application/json", **headers)


@pytest.fixture
def firing(pagerduty) -> Alert:
    """A critical alert PagerDuty was told of (made directly: no trigger goes out)."""
    now = timezone.now()
    return Alert.objects.create(
        queue="rentguy",
        kind="backlog",
        severity="critical",
        notified_severity="critical",
        started_at=now,
        announced_at=now,
    )


def unchanged(alert: Alert) -> bool:
    alert.refresh_from_db()
    return alert.acknowledged_at is None and not AuditEvent.objects.exists()


def test_a_signed_acknowledgement_makes_the_pagerduty_user_first_responder(firing, pagerduty):
    client = Client(enforce_csrf_checks=True)  # PagerDuty has no CSRF token: the signature is all
    body = json.dumps(incident_event(firing)).encode()
    response = post(client, body, signed(body))
    assert response.status_code == 200, response.content
    assert response.json() == {
        "result": "acknowledged",
        "alert_id": firing.pk,
        "acknowledged_by": "pagerduty:Earline Greenholt",
    }
    firing.refresh_from_db()
    assert firing.acknowledged_by_name == "pagerduty:Earline Greenholt"
    assert AuditEvent.objects.get(action="alert.ack").actor == "pagerduty:Earline Greenholt"
    sender.shutdown()
    assert pagerduty.received == []  # PagerDuty knows already: no acknowledge echoed back
    assert not Notification.objects.filter(event=Notification.Event.ACKNOWLEDGED).exists()

    again = post(client, body, signed(body))
    assert again.status_code == 200 and again.json()["result"] == "unchanged"
    assert "acknowledged already by pagerduty:Earline Greenholt" in again.json()["reason"]


def test_during_a_rotation_one_valid_signature_of_several_is_enough(client, firing, managed_env):
    body = json.dumps(incident_event(firing)).encode()
    rotating = f"v1={'0' * 64},{signed(body)}"
    assert post(client, body, rotating).json()["result"] == "acknowledged"


def test_mrdj_can_hold_the_old_and_the_new_secret_while_rotating(client, firing, managed_env):
    managed_env.set("PAGERDUTY_WEBHOOK_SECRET", f"new-secret,{SECRET}")
    body = json.dumps(incident_event(firing)).encode()
    assert post(client, body, signed(body, "new-secret")).status_code == 200
    assert post(client, body, signed(body, SECRET)).status_code == 200
    assert post(client, body, signed(body, "retired-secret")).status_code == 401


@pytest.mark.parametrize(
    ("signature", "message"),
    [
        (None, "X-PagerDuty-Signature is missing"),
        ("", "X-PagerDuty-Signature is missing"),
        ("v1=" + "0" * 64, "does not match PAGERDUTY_WEBHOOK_SECRET"),
        ("v1=" + "0" * 64 + ",v1=" + "f" * 64, "does not match PAGERDUTY_WEBHOOK_SECRET"),
        ("wrong", "holds no v1 signature"),
    ],
)
def test_a_bad_signature_is_refused_and_nothing_changes(client, firing, signature, message):
    body = json.dumps(incident_event(firing)).encode()
    response = post(client, body, signature)
    assert response.status_code == 401 and message in response.json()["error"]
    assert SECRET not in response.content.decode()
    assert unchanged(firing)


@pytest.mark.parametrize("version", ["v0", "v2", "V1", "sha256"])
def test_a_signature_of_an_unknown_version_is_refused_even_if_its_hmac_is_right(client, firing, version):
    # PagerDuty signs no timestamp (Verifying Signatures), so there is no "too old": only v1 counts.
    body = json.dumps(incident_event(firing)).encode()
    hexdigest = signed(body).removeprefix("v1=")
    response = post(client, body, f"{version}={hexdigest}")
    assert response.status_code == 401 and "no v1 signature" in response.json()["error"]
    assert unchanged(firing)


def test_a_signature_over_other_bytes_is_refused(client, firing):
    body = json.dumps(incident_event(firing)).encode()
    tampered = body.replace(b"Earline Greenholt", b"Mallory")
    assert post(client, tampered, signed(body)).status_code == 401
    assert unchanged(firing)


def test_without_a_configured_secret_every_webhook_is_refused(client, firing, managed_env):
    managed_env.set("PAGERDUTY_WEBHOOK_SECRET", "")
    body = json.dumps(incident_event(firing)).encode()
    response = post(client, body, signed(body))
    assert response.status_code == 401 and "PAGERDUTY_WEBHOOK_SECRET is not set" in response.json()["error"]
    assert unchanged(firing)


def test_a_resolved_incident_is_recorded_once_on_the_incident_timeline(client, firing):
    incident = Incident.objects.create(
        title="rentguy backlog", severity="critical", opened_at=firing.started_at
    )
    incident.alerts.add(firing, through_defaults={"joined_at": firing.started_at})
    body = json.dumps(incident_event(firing, "incident.resolved")).encode()
    response = post(client, body, signed(body))
    assert response.json() == {"result": "recorded", "alert_id": firing.pk}
    assert post(client, body, signed(body)).json()["result"] == "unchanged"
    (record,) = AuditEvent.objects.filter(action="alert.pagerduty.resolved")
    assert record.actor == "pagerduty:Earline Greenholt"
    texts = [(event.text, event.actor) for event in timeline.build(incident) if event.source == "audit"]
    ((text, actor),) = texts
    head = f"alert.pagerduty.resolved alert {firing.pk}: rentguy backlog: "
    assert actor == "pagerduty:Earline Greenholt" and text.startswith(head)
    # PostgreSQL's jsonb keeps its own key order: the parts, in any order.
    assert set(text.removeprefix(head).split(", ")) == {"incident=PGR0VU2", "number=2", "mrdj_alert=firing"}
    firing.refresh_from_db()
    assert firing.firing  # mrdj resolves its alerts by their figures, not by PagerDuty's word


def test_an_acknowledgement_of_a_resolved_alert_changes_nothing(client, firing):
    Alert.objects.filter(pk=firing.pk).update(state=Alert.State.RESOLVED, resolved_at=timezone.now())
    body = json.dumps(incident_event(firing)).encode()
    response = post(client, body, signed(body))
    assert response.status_code == 200
    assert response.json() == {
        "result": "unchanged",
        "alert_id": firing.pk,
        "reason": "the alert is resolved",
    }
    assert unchanged(firing)


@pytest.mark.parametrize(
    "event",
    [
        {"event_type": "incident.triggered"},
        {"event_type": "pagey.ping", "data": {"type": "ping", "message": "Hello from your friend Pagey!"}},
        {"data": {"id": "PX", "type": "incident", "incident_key": "someone-elses-key"}},
        {"data": {"id": "PX", "type": "incident", "incident_key": None}},
    ],
)
def test_events_about_other_things_are_answered_200_and_ignored(client, firing, event):
    body = json.dumps(incident_event(firing, **event)).encode()
    response = post(client, body, signed(body))
    assert response.status_code == 200 and response.json()["result"] == "ignored"
    assert unchanged(firing)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "body is not valid JSON"),
        (b"[]", "'event' object"),
        (b'{"event": "incident.acknowledged"}', "'event' object"),
        (b'{"event": {"data": {}}}', "'event.event_type' must be a non-empty string"),
        (b'{"event": {"event_type": 7}}', "'event.event_type' must be a non-empty string"),
        (b'{"event": {"event_type": "incident.acknowledged"}}', "'event.data' of incident.acknowledged"),
        (
            b'{"event": {"event_type": "incident.resolved", "data": {"type": "incident_note"}}}',
            "must be an object of type 'incident'",
        ),
        (
            b'{"event": {"event_type": "incident.acknowledged", "data": {"type": "incident", '
            b'"incident_key": 12}}}',
            "'event.data.incident_key' must be a string",
        ),
        (
            b'{"event": {"event_type": "incident.acknowledged", "agent": "Earline", '
            b'"data": {"type": "incident", "incident_key": "k"}}}',
            "'event.agent' must be an object or null",
        ),
        (b'{"event": {"event_type": "incident.acknowledged", "x": NaN}}', "NaN is not a JSON number"),
    ],
)
def test_a_malformed_body_is_refused_with_400_naming_the_problem(client, firing, body, message):
    response = post(client, body, signed(body))
    assert response.status_code == 400, response.content
    assert message in response.json()["error"]
    assert unchanged(firing)


def test_a_malformed_body_with_a_bad_signature_is_401_not_400(client, firing):
    assert post(client, b"{not json", "v1=" + "0" * 64).status_code == 401


def test_only_post_is_allowed(client, pagerduty):
    assert client.get(WEBHOOK).status_code == 405

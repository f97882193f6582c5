"""The DR bridge: the Slack workflow started once per incident when the DR plan activates, tried
again after a failure, its result on the timeline, the Create DR Bridge button; a local receiver
stands in for Slack's webhook trigger. Time is moved by passing now."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from alerting import lifecycle as alerting
from alerting import sender
from alerting.evaluation import Condition
from alerting.models import Kind, Severity
from incidents import dr_bridge, incident_actions, timeline
from incidents.models import DrBridge, Entry, Incident, Role
from mrdj.declarations import variable
from mrdj.http import Response
from mrdj.models import AuditEvent
from tests.processes import wait_until
from tests.receivers import Answer, Receiver
from tests.support import csrf_client, staff

pytestmark = pytest.mark.django_db(transaction=True)
MINUTE = timedelta(minutes=1)
TRIGGER = "/triggers/T0123456789/3141592653589/c6e6c0d868b3054ca0f4611a5dbadaf"
# Telemetry blind while an alert fires: the DR trigger fires at the first evaluation.
DR_CONDITIONS = [
    Condition("rentguy", Kind.BACKLOG, Severity.WARNING, {"figures": {"backlog": 2}}),
    Condition("", Kind.TELEMETRY_SILENT, Severity.WARNING, {"figures": {}}),
]


@pytest.fixture
def slack(hooks, managed_env):
    """Slack's webhook trigger, on a receiver of its own; the alert webhooks stay on hooks."""
    with Receiver() as receiver:
        managed_env.set("ALERT_DR_BRIDGE_WEBHOOK_URL", receiver.url + TRIGGER)
        yield receiver
        sender.shutdown()  # before the receiver goes: tries in flight finish


def activate_dr(now) -> Incident:
    alerting.tick(now, conditions=DR_CONDITIONS)
    return Incident.objects.get(dr_activated_at__isnull=False)


def bridge_of(incident: Incident) -> DrBridge:
    return DrBridge.objects.get(incident=incident)


def tried(incident: Incident, attempts: int) -> DrBridge:
    return wait_until(
        lambda: DrBridge.objects.filter(incident=incident, attempts=attempts, claimed_until=None).first(),
        message=f"the DR bridge was not tried {attempts} time(s)",
    )


def texts(incident: Incident) -> list[tuple[str, str, str]]:
    return [(event.text, event.actor, event.detail) for event in timeline.build(incident)]


def test_the_url_is_a_secret():
    assert variable("ALERT_DR_BRIDGE_WEBHOOK_URL").secret


def test_the_dr_plan_activating_starts_the_workflow_once_with_the_incident_variables(slack):
    t0 = timezone.now()
    incident = activate_dr(t0)
    [request] = slack.wait_for(1)
    assert request.method == "POST" and request.path == TRIGGER
    assert request.headers["Content-Type"] == "application/json"
    body = request.json()
    assert list(body) == list(dr_bridge.VARIABLES)
    assert all(isinstance(value, str) for value in body.values())  # flat, text only
    assert body["incident_reference"] == incident.reference
    assert body["incident_title"] == incident.title
    assert body["severity"] == "critical"
    assert "telemetry silent" in body["dr_reason"]
    assert body["queues"] == "rentguy"
    assert body["dashboard_url"] == f"https://ops.misterdj.example/dashboard/incidents/{incident.pk}/"
    assert body["incident_commander"] == "none yet"
    assert body["activated_at"]
    bridge = tried(incident, 1)
    assert bridge.created_at == t0 and bridge.response_code == 200 and bridge.requested_by == "mrdj"

    # Later evaluations, and the plan activating again for the same incident, send nothing more.
    alerting.tick(t0 + MINUTE, conditions=DR_CONDITIONS)
    dr_bridge.on_dr_activated(incident, t0 + 2 * MINUTE)
    sender.shutdown()
    assert len(slack.received) == 1
    again = incident.entries.get(kind=Entry.Kind.DR, text__startswith="DR bridge not started again")
    assert f"the DR bridge of {incident.reference} exists: created" in again.text
    assert ("DR bridge asked for", "mrdj", "") in texts(incident)
    assert ("DR bridge created", "", "Slack workflow answered 200") in texts(incident)


def test_the_incident_commander_is_named_once_someone_holds_the_role(slack):
    incident = incident_actions.open_incident("Sevensa down", "critical", ["sevensa"], "cli:ops")
    incident_actions.claim_role(incident, Role.Name.COMMANDER, "cli:ic-anna")
    dr_bridge.request_by_hand(incident, "cli:ic-anna")
    body = slack.wait_for(1)[0].json()
    assert body["incident_commander"] == "cli:ic-anna"
    assert body["dr_reason"] == "asked for by cli:ic-anna (the DR trigger did not fire)"
    assert body["activated_at"] == ""


def test_a_failed_try_is_tried_again_and_the_timeline_shows_each_result(slack):
    slack.script(Answer(500, body=b'{"ok": false, "error": "internal_error"}'))
    t0 = timezone.now()
    incident = activate_dr(t0)
    bridge = tried(incident, 1)
    assert bridge.created_at is None and bridge.response_code == 500
    assert bridge.next_attempt_at > t0  # ALERT_DELIVERY_RETRY_BASE_MS later
    failed = [event for event in texts(incident) if event[0].startswith("DR bridge not created (try 1)")]
    assert failed == [(failed[0][0], "", 'answered 500: {"ok": false, "error": "internal_error"}')]
    assert "next try" in failed[0][0]

    alerting.tick(t0 + MINUTE, conditions=DR_CONDITIONS)  # finds the try due
    bridge = tried(incident, 2)
    assert bridge.created_at == t0 + MINUTE and bridge.error == ""
    first, second = slack.wait_for(2)
    assert first.json() == second.json()
    assert ("DR bridge created", "", "Slack workflow answered 200") in texts(incident)


def test_an_answer_retrying_cannot_fix_is_not_tried_again(slack):
    slack.script(Answer(404, body=b"no_such_trigger"))
    t0 = timezone.now()
    incident = activate_dr(t0)
    bridge = tried(incident, 1)
    assert bridge.next_attempt_at is None and bridge.error == "answered 404: no_such_trigger"
    alerting.tick(t0 + MINUTE, conditions=DR_CONDITIONS)
    sender.shutdown()
    assert len(slack.received) == 1
    assert any("given up: Create DR Bridge sends it again" in event[0] for event in texts(incident))


def test_slack_answering_ok_false_is_a_failure():
    answer = Response(200, "OK", {}, b'{"ok": false, "error": "invalid_workflow_input"}')
    assert dr_bridge._judge(answer) == ("Slack refused it: invalid_workflow_input", False)
    assert dr_bridge._judge(Response(429, "", {}, b"")) == ("answered 429", True)


def test_the_button_needs_the_permission_post_and_csrf_and_is_audited(slack):
    incident = incident_actions.open_incident("Sevensa down", "critical", ["sevensa"], "cli:ops")
    path = f"/dashboard/incidents/{incident.pk}/dr-bridge"
    client, token = csrf_client(staff())  # staff without change_incident
    assert client.post(path, {"csrfmiddlewaretoken": token}).status_code == 403
    client, token = csrf_client(staff("change_incident"))
    assert client.get(path).status_code == 405
    assert client.post(path).status_code == 403  # no CSRF token
    assert not DrBridge.objects.exists()

    response = client.post(path, {"csrfmiddlewaretoken": token}, follow=True)
    [message] = [str(m) for m in response.context["messages"]]
    assert message == f"Creating the DR bridge of {incident.reference}: Slack's answer shows on the timeline."
    slack.wait_for(1)
    bridge = tried(incident, 1)
    assert bridge.created_at is not None
    event = AuditEvent.objects.get(action="incident.dr_bridge")
    assert event.target == incident.reference and event.actor == bridge.requested_by

    response = client.post(path, {"csrfmiddlewaretoken": token}, follow=True)
    [message] = [str(m) for m in response.context["messages"]]
    assert message.startswith(f"The DR bridge of {incident.reference} exists: created ")
    page = client.get(f"/dashboard/incidents/{incident.pk}/").content.decode()
    assert "DR bridge: created " in page and "Create DR Bridge</button>" in page
    sender.shutdown()
    assert len(slack.received) == 1
    assert AuditEvent.objects.filter(action="incident.dr_bridge").count() == 1


def test_the_button_says_so_when_no_bridge_is_configured(hooks):
    incident = incident_actions.open_incident("Sevensa down", "critical", ["sevensa"], "cli:ops")
    client, token = csrf_client(staff("change_incident"))
    page = client.get(f"/dashboard/incidents/{incident.pk}/").content.decode()
    assert "DR bridge: not configured (ALERT_DR_BRIDGE_WEBHOOK_URL is empty)" in page
    response = client.post(f"/dashboard/incidents/{incident.pk}/dr-bridge", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    response = client.get(response.url)
    assert "ALERT_DR_BRIDGE_WEBHOOK_URL is empty" in response.content.decode()
    assert not DrBridge.objects.exists() and not AuditEvent.objects.filter(action="incident.dr_bridge")
    activate_dr(timezone.now())  # no bridge configured: the DR incident opens as before
    assert not DrBridge.objects.exists()


def test_slack_hanging_or_down_never_holds_up_the_incident_or_the_alert_webhooks(hooks, managed_env):
    gate = threading.Event()

    def hang(request):
        gate.wait(30)  # Slack holds the request until the test lets it go

    with Receiver(respond=hang) as slack:
        managed_env.set("ALERT_DR_BRIDGE_WEBHOOK_URL", slack.url + TRIGGER)
        try:
            incident = activate_dr(timezone.now())  # returns while Slack holds the bridge's try
            wait_until(lambda: slack.in_flight == 1, message="the bridge's try did not reach Slack")
            incident_actions.add_note(incident, "war room forming", "cli:ops")
            hooks.wait_for(4)  # the DR page reached every alert webhook meanwhile
            assert {request.path for request in hooks.received} == {"/slack", "/discord", "/teams", "/json"}
            client, token = csrf_client(staff("change_incident"))
            page = client.get(f"/dashboard/incidents/{incident.pk}/")
            assert page.status_code == 200 and "DR bridge: being created" in page.content.decode()
            response = client.post(
                f"/dashboard/incidents/{incident.pk}/dr-bridge", {"csrfmiddlewaretoken": token}, follow=True
            )
            [message] = [str(m) for m in response.context["messages"]]  # at once: no second try meanwhile
            assert message == f"The DR bridge of {incident.reference} is being sent right now."
        finally:
            gate.set()
        assert tried(incident, 1).created_at is not None
        sender.shutdown()
        assert len(slack.received) == 1


def test_slack_unreachable_is_recorded_and_tried_again(hooks, managed_env, closed_port):
    managed_env.set("ALERT_DR_BRIDGE_WEBHOOK_URL", f"http://127.0.0.1:{closed_port}{TRIGGER}")
    incident = activate_dr(timezone.now())
    bridge = tried(incident, 1)
    assert bridge.error == "no answer: could not connect" and bridge.response_code is None
    assert bridge.next_attempt_at is not None
    assert TRIGGER not in bridge.error and str(closed_port) not in dr_bridge.status(incident)

"""Publishing status updates on the status page: a local receiver stands in for Atlassian
Statuspage's REST API (create on the first publication, PATCH for the next ones, the final
update on resolving), Statuspage down or slow, Retry publishing, and the configuration."""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from datetime import timedelta

import pytest
from django.core import checks
from django.utils import timezone

from alerting import lifecycle as alerting
from alerting import sender
from incidents import incident_actions, statuspage
from incidents.models import Entry, Incident, Role, StatusPagePost
from mrdj import configuration
from mrdj.config import describe_invalid
from mrdj.declarations import ConfigError, variable
from mrdj.models import AuditEvent
from tests.processes import wait_until
from tests.receivers import Answer, Received, Receiver
from tests.support import csrf_client, staff

pytestmark = pytest.mark.django_db(transaction=True)
PAGE_ID = "0ypqjmkwgqmh"
API_KEY = "sp-key-9f8e7d6c5b4a"
CREATED_ID = "p31zjtct2jer"
RENTGUY_COMPONENT = "8kbf7d35c070"
INCIDENTS_PATH = f"/v1/pages/{PAGE_ID}/incidents"


class FakeStatuspage:
    """Answers as Statuspage does: 201 and the new incident to a POST, 200 and the incident to a
    PATCH; scripted failures first."""

    def __init__(self):
        self.failures: deque[Answer] = deque()
        self.receiver: Receiver | None = None

    def respond(self, request: Received) -> Answer:
        if self.failures:
            return self.failures.popleft()
        if request.method == "POST":
            return Answer(201, body=json.dumps({"id": CREATED_ID, "status": "investigating"}).encode())
        return Answer(200, body=json.dumps({"id": request.path.rsplit("/", 1)[-1]}).encode())

    def requests(self, count: int) -> list[Received]:
        return self.receiver.wait_for(count)


@pytest.fixture
def status_page(webhooks, managed_env):
    fake = FakeStatuspage()
    with Receiver(respond=fake.respond) as receiver:
        fake.receiver = receiver
        managed_env.update(
            {
                "STATUSPAGE_API_URL": receiver.url + "/v1",
                "STATUSPAGE_PAGE_ID": PAGE_ID,
                "STATUSPAGE_API_KEY": API_KEY,
                "STATUSPAGE_COMPONENTS": f"rentguy:{RENTGUY_COMPONENT},sevensa:1k3nr2f4dnm",
            }
        )
        yield fake
        sender.shutdown()  # before the receiver goes: tries in flight finish


@pytest.fixture
def commander():
    """A staff user who may change incidents, and a CSRF client logged in as them."""
    user = staff("change_incident")
    client, token = csrf_client(user)
    return user, client, token


def open_incident(user, severity: str = "critical") -> Incident:
    incident = incident_actions.open_incident("RentGuy leads not arriving", severity, ["rentguy"], "cli:ops")
    incident_actions.claim_role(incident, Role.Name.COMMANDER, user)
    return incident


def post(client, token, incident: Incident, action: str, **data) -> list[str]:
    response = client.post(
        f"/dashboard/incidents/{incident.pk}/{action}", {"csrfmiddlewaretoken": token, **data}, follow=True
    )
    assert response.status_code == 200
    return [str(message) for message in response.context["messages"]]


def update(client, token, incident: Incident, text: str, publish: bool = True) -> list[str]:
    return post(
        client, token, incident, "note", text=text, kind="update", **({"publish": "1"} if publish else {})
    )


def page_of(client, incident: Incident) -> str:
    return client.get(f"/dashboard/incidents/{incident.pk}/").content.decode()


def settled(incident: Incident, count: int) -> list[StatusPagePost]:
    """The incident's posts once count of them are published or given up on."""

    def done():
        posts = list(StatusPagePost.objects.filter(incident=incident, claimed_until=None).order_by("pk"))
        finished = [p for p in posts if p.published_at or (p.tried_at and not p.next_attempt_at)]
        return posts if len(finished) >= count else None

    return wait_until(done, message=f"{count} status page post(s) did not settle")


def status_entries(incident: Incident) -> list[str]:
    return list(incident.entries.filter(kind=Entry.Kind.STATUS_PAGE).values_list("text", flat=True))


def ready_to_resolve(incident: Incident, user) -> None:
    incident_actions.set_root_cause(incident, "RentGuy's API refused our token after its key rotation", user)
    for item in ("logs", "timeline", "status_page"):
        incident_actions.tick(incident, item, user)
    incident_actions.tick(incident, "postmortem", user, value="2026-12-10")


def test_the_first_published_update_creates_the_status_page_incident_and_later_ones_update_it(
    status_page, commander
):
    user, client, token = commander
    incident = open_incident(user)
    assert "Also publish on the status page" in page_of(client, incident)

    [said] = update(client, token, incident, "RentGuy leads are delayed; we are on it.")
    assert said == (
        "Status update posted and sent. Publishing it (investigating) on the status page: "
        "Statuspage's answer shows on the timeline."
    )
    [created] = status_page.requests(1)
    assert (created.method, created.path) == ("POST", INCIDENTS_PATH)
    assert created.headers["Authorization"] == f"OAuth {API_KEY}"
    assert created.headers["Content-Type"] == "application/json"
    assert created.json() == {
        "incident": {
            "name": "RentGuy leads not arriving",
            "status": "investigating",
            "body": "RentGuy leads are delayed; we are on it.",
            "component_ids": [RENTGUY_COMPONENT],
            "components": {RENTGUY_COMPONENT: "major_outage"},
        }
    }
    [first] = settled(incident, 1)
    assert (first.statuspage_id, first.response_code, first.error) == (CREATED_ID, 201, "")

    incident_actions.set_root_cause(incident, "RentGuy's API refused our token", user)
    update(client, token, incident, "Cause found: an expired token.")
    incident_actions.mitigate(incident, user)
    update(client, token, incident, "Leads flow again; we are watching.")
    _, identified, monitoring = status_page.requests(3)
    for request in (identified, monitoring):
        assert (request.method, request.path) == ("PATCH", f"{INCIDENTS_PATH}/{CREATED_ID}")
        assert request.headers["Authorization"] == f"OAuth {API_KEY}"
        assert "name" not in request.json()["incident"]  # a title edited on Statuspage stays
    assert identified.json()["incident"]["status"] == "identified"
    assert identified.json()["incident"]["body"] == "Cause found: an expired token."
    assert monitoring.json()["incident"]["status"] == "monitoring"
    assert monitoring.json()["incident"]["components"] == {RENTGUY_COMPONENT: "major_outage"}
    settled(incident, 3)
    published = f"Published on the status page: Statuspage incident {CREATED_ID}"
    assert status_entries(incident) == [
        f"{published} created (investigating), answered 201.",
        f"{published} updated (identified), answered 200.",
        f"{published} updated (monitoring), answered 200.",
    ]
    page = page_of(client, incident)
    assert (
        f"(monitoring), Statuspage incident {CREATED_ID}" in page and "Retry publishing</button>" not in page
    )
    assert API_KEY not in page


def test_a_warning_marks_its_components_degraded(status_page, commander):
    user, client, token = commander
    incident = open_incident(user, severity="warning")
    update(client, token, incident, "Some leads arrive late.")
    [created] = status_page.requests(1)
    assert created.json()["incident"]["components"] == {RENTGUY_COMPONENT: "degraded_performance"}


def test_resolving_offers_the_final_update_resolved_with_its_components_operational(status_page, commander):
    user, client, token = commander
    incident = open_incident(user)
    update(client, token, incident, "RentGuy leads are delayed.")
    settled(incident, 1)
    ready_to_resolve(incident, user)
    page = page_of(client, incident)
    assert "Publish the final update (resolved)" in page and 'name="final_text"' in page

    [said] = post(client, token, incident, "resolve", publish_final="1", final_text="All leads have arrived.")
    assert said == (
        f"{incident.reference} is resolved. Publishing the final update on the status page: "
        "Statuspage's answer shows on the timeline."
    )
    _, final = status_page.requests(2)
    assert (final.method, final.path) == ("PATCH", f"{INCIDENTS_PATH}/{CREATED_ID}")
    assert final.json() == {
        "incident": {
            "status": "resolved",
            "body": "All leads have arrived.",
            "component_ids": [RENTGUY_COMPONENT],
            "components": {RENTGUY_COMPONENT: "operational"},
        }
    }
    settled(incident, 2)
    assert status_entries(incident)[-1] == (
        f"Published on the status page: Statuspage incident {CREATED_ID} updated (resolved), "
        "its components operational, answered 200."
    )


def test_a_final_update_without_earlier_ones_creates_it_resolved_with_the_default_text(
    status_page, commander
):
    user, client, token = commander
    incident = open_incident(user)
    ready_to_resolve(incident, user)
    post(client, token, incident, "resolve", publish_final="1", final_text="  ")
    [created] = status_page.requests(1)
    assert created.method == "POST"
    assert created.json()["incident"]["status"] == "resolved"
    assert created.json()["incident"]["body"] == "This incident has been resolved."


def test_statuspage_down_holds_up_nothing_shows_the_failure_and_retry_publishes_it(
    status_page, commander, managed_env, caplog
):
    managed_env.set("ALERT_DELIVERY_MAX_ATTEMPTS", "1")  # given up after one try
    body = f'{{"error": "internal", "key": "{API_KEY}"}}'.encode()
    status_page.failures.extend([Answer(500, body=body), Answer(503, body=b"maintenance")])
    user, client, token = commander
    incident = open_incident(user)
    caplog.set_level(logging.INFO)

    assert update(client, token, incident, "RentGuy leads are delayed.")[0].startswith("Status update posted")
    assert Entry.objects.filter(incident=incident, kind=Entry.Kind.UPDATE).exists()
    [failed] = settled(incident, 1)
    assert failed.published_at is None and failed.response_code == 500
    assert failed.error == 'answered 500: {"error": "internal", "key": "<api key>"}'
    [entry] = status_entries(incident)
    assert entry == (
        "Status page not updated (investigating, try 1): "
        'answered 500: {"error": "internal", "key": "<api key>"}; '
        "given up: Retry publishing sends it again."
    )
    page = page_of(client, incident)
    assert "not published (answered 500" in page and "Retry publishing</button>" in page

    # Resolving works while Statuspage is still down; the final update waits its turn.
    ready_to_resolve(incident, user)
    post(client, token, incident, "resolve", publish_final="1", final_text="Resolved.")
    assert Incident.objects.get(pk=incident.pk).state == Incident.State.RESOLVED
    settled(incident, 2)
    assert status_page.receiver.received[-1].json()["incident"]["body"] == "Resolved."
    assert "(resolved, try 1): answered 503: maintenance" in status_entries(incident)[-1]

    # Retry publishing sends both again, in order: the first creates, the final updates it.
    [said] = post(client, token, incident, "status-page-retry")
    assert said == "Publishing again on the status page (2 updates): the answer shows on the timeline."
    *_, created, final = status_page.requests(4)
    assert (created.method, created.json()["incident"]["body"]) == ("POST", "RentGuy leads are delayed.")
    assert (final.method, final.path) == ("PATCH", f"{INCIDENTS_PATH}/{CREATED_ID}")
    assert final.json()["incident"]["status"] == "resolved"
    wait_until(lambda: not StatusPagePost.objects.filter(published_at=None).exists())
    texts = status_entries(incident)
    assert texts[2] == "Retry publishing: 2 updates sent again."
    assert texts[3].startswith(f"Published on the status page: Statuspage incident {CREATED_ID} created")
    assert incident.entries.get(text=texts[2]).actor == user.username
    assert AuditEvent.objects.get(action="incident.status_page_retry").target == incident.reference
    page = page_of(client, incident)
    assert "Retry publishing</button>" not in page
    assert API_KEY not in page and API_KEY not in " ".join(texts) and API_KEY not in caplog.text


def test_a_failed_try_is_tried_again_by_the_evaluation_and_later_updates_wait_their_turn(
    status_page, commander
):
    status_page.failures.append(Answer(502, body=b"bad gateway"))
    user, client, token = commander
    incident = open_incident(user)
    update(client, token, incident, "First.")
    first = wait_until(
        lambda: StatusPagePost.objects.filter(attempts=1, claimed_until=None, tried_at__isnull=False).first()
    )
    assert first.next_attempt_at is not None and first.error == "answered 502: bad gateway"
    assert "next try" in status_entries(incident)[0]

    update(client, token, incident, "Second.")
    sender.shutdown()
    assert len(status_page.receiver.received) == 1  # the second waits for the first

    alerting.tick(timezone.now() + timedelta(minutes=1), conditions=[])
    _, created, second = status_page.requests(3)
    assert (created.method, created.json()["incident"]["body"]) == ("POST", "First.")
    assert (second.method, second.json()["incident"]["body"]) == ("PATCH", "Second.")
    assert second.path == f"{INCIDENTS_PATH}/{CREATED_ID}"


def test_an_update_posted_while_the_one_before_is_out_follows_it(status_page, commander):
    gate = threading.Event()
    original = status_page.respond

    def slow_first(request):
        if request.method == "POST":
            gate.wait(10)  # Statuspage holds the creation until the test lets it go
        return original(request)

    status_page.receiver.respond = slow_first
    user, client, token = commander
    incident = open_incident(user)
    try:
        update(client, token, incident, "First.")
        wait_until(lambda: status_page.receiver.in_flight == 1, message="the first did not reach Statuspage")
        update(client, token, incident, "Second.")  # answered at once: it waits for the first
    finally:
        gate.set()
    created, second = status_page.requests(2)
    assert (created.method, second.method) == ("POST", "PATCH")
    assert second.json()["incident"]["body"] == "Second."
    assert [post.statuspage_id for post in settled(incident, 2)] == [CREATED_ID, CREATED_ID]


def test_no_answer_in_time_is_a_failure_that_never_holds_up_the_update(status_page, commander, managed_env):
    managed_env.update({"ALERT_HTTP_READ_TIMEOUT_MS": "200", "ALERT_DELIVERY_MAX_ATTEMPTS": "1"})
    gate = threading.Event()
    original = status_page.respond

    def hang(request):
        gate.wait(5)  # longer than the read timeout
        return original(request)

    status_page.receiver.respond = hang
    user, client, token = commander
    incident = open_incident(user)
    try:
        assert update(client, token, incident, "Slow page.")[0].startswith("Status update posted and sent.")
        [failed] = settled(incident, 1)
    finally:
        gate.set()
    assert failed.error == "no answer: timed out" and failed.response_code is None
    assert (
        "Status page not updated (investigating, try 1): no answer: timed out" in status_entries(incident)[0]
    )


def test_not_configured_offers_no_checkbox_and_sends_nothing(webhooks, commander):
    user, client, token = commander
    incident = open_incident(user)
    page = page_of(client, incident)
    assert "Also publish on the status page" not in page and "Status page:" not in page
    [said] = update(client, token, incident, "Still slow.")  # a stale form with the box ticked
    assert said == (
        "Status update posted and sent. Not published: the status page is not configured "
        "(STATUSPAGE_PAGE_ID and STATUSPAGE_API_KEY)."
    )
    assert not StatusPagePost.objects.exists()
    [said] = post(client, token, incident, "status-page-retry")
    assert said.startswith("Retry publishing: the status page is not configured")
    ready_to_resolve(incident, user)
    assert "Publish the final update" not in page_of(client, incident)


def test_the_checkbox_is_off_by_default_and_unticked_sends_nothing(status_page, commander):
    user, client, token = commander
    incident = open_incident(user)
    page = page_of(client, incident)
    assert '<input type="checkbox" name="publish" value="1">' in page  # not checked
    assert update(client, token, incident, "Internal only.", publish=False) == [
        "Status update posted and sent."
    ]
    ready_to_resolve(incident, user)
    post(client, token, incident, "resolve")
    sender.shutdown()
    assert status_page.receiver.received == [] and not StatusPagePost.objects.exists()


def test_a_note_is_never_published(status_page, commander):
    user, client, token = commander
    incident = open_incident(user)
    [said] = post(client, token, incident, "note", text="between us", kind="note", publish="1")
    assert said == "status page: only a status update is published there; choose status update"
    assert not incident.entries.filter(kind=Entry.Kind.NOTE).exists()


def test_retry_needs_the_permission_post_and_csrf_and_something_to_send(status_page, commander):
    user, _, _ = commander
    incident = open_incident(user)
    path = f"/dashboard/incidents/{incident.pk}/status-page-retry"
    client, token = csrf_client(staff())  # staff without change_incident
    assert client.post(path, {"csrfmiddlewaretoken": token}).status_code == 403
    client, token = csrf_client(staff("change_incident"))
    assert client.get(path).status_code == 405
    assert client.post(path).status_code == 403  # no CSRF token
    [said] = post(client, token, incident, "status-page-retry")
    assert said == f"Retry publishing: nothing of {incident.reference} is waiting to be published"
    assert not AuditEvent.objects.filter(action="incident.status_page_retry").exists()


def test_the_components_are_queue_colon_id_pairs_and_a_bad_entry_is_named(managed_env):
    parse = variable("STATUSPAGE_COMPONENTS").parse
    assert parse("rentguy:8kbf7d35c070, sevensa:1k3nr2f4dnm") == [
        "rentguy:8kbf7d35c070",
        "sevensa:1k3nr2f4dnm",
    ]
    with pytest.raises(ConfigError) as refused:
        parse("rentguy:8kbf7d35c070,sevensa")
    assert str(refused.value) == (
        "STATUSPAGE_COMPONENTS entry 2 ('sevensa') must be queue:component_id, such as rentguy:8kbf7d35c070"
    )
    with pytest.raises(ConfigError) as refused:
        parse("rentgui:8kbf7d35c070")
    assert str(refused.value) == (
        "STATUSPAGE_COMPONENTS entry 1 ('rentgui:8kbf7d35c070') names an unknown queue 'rentgui' "
        "(known: rentguy, sevensa)"
    )
    with pytest.raises(configuration.Refused) as refused:
        configuration.change({"STATUSPAGE_COMPONENTS": "rentguy:has space"}, None, "cli:ops")
    assert "STATUSPAGE_COMPONENTS entry 1 ('rentguy:has space') must be queue:component_id" in str(
        refused.value
    )
    managed_env.update(
        {"STATUSPAGE_COMPONENTS": "rentguy:8kbf7d35c070,sevensa:", "STATUSPAGE_PAGE_ID": PAGE_ID}
    )
    assert any("STATUSPAGE_COMPONENTS entry 2 ('sevensa:')" in line for line in describe_invalid())
    warnings = [f"{message.id}: {message.msg}" for message in checks.run_checks()]
    assert any("STATUSPAGE_COMPONENTS entry 2 ('sevensa:')" in warning for warning in warnings), warnings
    assert "incidents.W002: the status page needs both STATUSPAGE_PAGE_ID and STATUSPAGE_API_KEY: " in (
        " ".join(warnings)
    )
    assert variable("STATUSPAGE_API_KEY").secret and not variable("STATUSPAGE_PAGE_ID").secret
    assert variable("STATUSPAGE_API_URL").default == "https://api.statuspage.io/v1"
    assert statuspage.final_text("") == "This incident has been resolved."

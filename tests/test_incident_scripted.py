"""One incident end to end: a queue goes critical, is acknowledged, an Incident Commander claims it,
the failed jobs are flushed, the queue recovers, the checklist is completed, the incident is
resolved and its dossier exported. Real queue figures, a loopback Slack/Teams/JSON receiver and
the fake Jira; time moved by passing now (the flush, which takes none, happens on the real clock)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from alerting import alert_actions
from alerting import lifecycle as alerting
from alerting.models import Alert
from incidents import dossier, incident_actions, timeline
from incidents.models import Incident, Role
from integrations.models import Status
from tests.conftest import wait_until
from tests.support import csrf_client, put_jobs, staff
from tests.test_alert_lifecycle import clear_queue

pytestmark = pytest.mark.django_db(transaction=True)
MINUTE = timedelta(minutes=1)


def test_a_scripted_incident_from_critical_alert_to_dossier(fake_jira, webhooks, managed_env, tmp_path):
    managed_env.update({"ALERT_JIRA_RESOLVE_TRANSITION": "Done", "INCIDENT_DOSSIER_DIR": str(tmp_path)})
    alice = staff("acknowledge_alert", "change_incident", "flush_job")  # on call
    bob = staff("change_incident")  # Incident Commander
    real = timezone.now()
    t0 = real - 30 * MINUTE

    # The RentGuy queue goes critical: jobs pile up waiting to retry.
    put_jobs("rentguy", Status.RETRY, 4)
    alerting.tick(t0)
    incident = Incident.objects.get()
    alert = incident.alerts.get()
    wait_until(lambda: Alert.objects.get(pk=alert.pk).jira_key == "OPS-1", message="the Jira issue")

    alert_actions.acknowledge(alert, alice, now=t0 + MINUTE)
    incident_actions.claim_role(incident, Role.Name.COMMANDER, bob, now=t0 + 3 * MINUTE)
    incident_actions.add_note(
        incident, "RentGuy answers 401: checking the API key", alice, now=t0 + 4 * MINUTE
    )
    incident_actions.add_note(
        incident, "Known: RentGuy API key expired", bob, now=t0 + 5 * MINUTE, update=True
    )

    # The key is fixed; the jobs waiting to retry are flushed from the dashboard, and go through.
    client, token = csrf_client(alice)
    response = client.post("/dashboard/queues/rentguy/flush", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    clear_queue("rentguy")
    alerting.tick(real + MINUTE)
    alerting.tick(real + 11 * MINUTE)  # clear for the quiet period: resolved, Jira told
    wait_until(lambda: Alert.objects.get(pk=alert.pk).jira_resolved_at, message="Jira told of the resolution")
    incident.refresh_from_db()
    assert incident.state == "mitigated"

    incident_actions.set_root_cause(
        incident, "The RentGuy API key expired; renewal was not on the calendar.", bob, now=real + 12 * MINUTE
    )
    alerting.tick(real + 13 * MINUTE)  # the incident asks Jira, and posts the root cause
    wait_until(
        lambda: incident.tickets.filter(done=True).exclude(root_cause_posted="").exists(), message="ticket"
    )
    for item in ("logs", "timeline", "status_page"):
        incident_actions.tick(incident, item, bob, now=real + 14 * MINUTE)
    incident_actions.tick(incident, "postmortem", bob, now=real + 14 * MINUTE, value="2026-12-03")
    written = incident_actions.resolve(incident, bob, now=real + 22 * MINUTE)
    incident.refresh_from_db()
    assert incident.state == "resolved"

    texts = [f"{event.source}: {event.text}" for event in timeline.build(incident)]
    expected_order = [
        f"alert: Fired: alert {alert.pk} (backlog on rentguy)",
        "notification: Notified (firing): queue thresholds exceeded",
        "incident: Opened by mrdj",
        "jira: Jira OPS-1 opened",
        f"alert: Acknowledged alert {alert.pk}",
        f"incident: {alice.username} is first responder",
        f"incident: {bob.username} is Incident Commander",
        "incident: Note: RentGuy answers 401",
        "incident: Status update: Known: RentGuy API key expired",
        "audit: queue.flush rentguy: jobs=4",
        f"alert: Resolved: alert {alert.pk}",
        "notification: Notified (resolved): resolved: queue thresholds exceeded",
        "incident: Mitigated: every alert of the incident has resolved.",
        "jira: Jira OPS-1 told of the resolution",
        "incident: Root cause: The RentGuy API key expired",
        "incident: Ticked step 1: Logs collected",
        "incident: Ticked step 6: Post-mortem date set (2026-12-03)",
        f"incident: Resolved by {bob.username}, Incident Commander.",
    ]
    positions = []
    for start in expected_order:
        matches = [index for index, text in enumerate(texts) if text.startswith(start)]
        assert matches, f"{start!r} missing from the timeline:\n" + "\n".join(texts)
        positions.append(matches[0])
    assert positions == sorted(positions), "\n".join(texts)
    assert "Root cause, recorded in mrdj" in fake_jira.comments["OPS-1"][-1]

    # The dossier: written at resolution, and the same through the export endpoint.
    markdown = (tmp_path / incident.reference / "dossier.md").read_text()
    assert written.paths[0].endswith(f"{incident.reference}/dossier.md")
    exported = client.get(f"/incidents/{incident.pk}/export").content.decode()
    assert exported.split("_Generated by mrdj")[0] == markdown.split("_Generated by mrdj")[0]
    for line in (
        f"# {incident.reference}: Critical backlog on rentguy",
        "| State | resolved |",
        f"| Resolved | {timezone.localtime(real + 22 * MINUTE):%Y-%m-%d %H:%M:%S %Z} by {bob.username} |",
        "| Jira | OPS-1 (Done) |",
        f"| Incident Commander | {bob.username} |",
        "- [x] 3. Alerts normalised: no new alert events for the quiet period (verified by mrdj)",
        "- [x] 4. Jira tickets resolved, with the root cause recorded (verified by mrdj): "
        "OPS-1 resolved in Jira",
        "- [x] 6. Post-mortem date set: post-mortem on 2026-12-03",
        f"### Alert {alert.pk}: critical backlog on rentguy",
    ):
        assert line in markdown, line
    data = json.loads(client.get(f"/incidents/{incident.pk}/export?format=json").content)
    assert data == {**dossier.as_data(incident), "generated_at": data["generated_at"]}
    assert all(item["done"] for item in data["checklist"])
    assert [role["holder"] for role in data["roles"]] == [alice.username, bob.username, None, None]
    for secret in (webhooks.url, "/slack", "/teams", "jira-api-token"):  # webhook URLs are secrets
        assert secret not in markdown and secret not in json.dumps(data), secret

"""The Incidents tab, its actions and the dossier export, through the test client with CSRF enforced."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from alerting import lifecycle as alerting
from incidents.models import Incident, Role
from integrations.models import Status
from mrdj.models import AuditEvent
from tests.support import csrf_client, put_jobs, staff

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def incident(hooks) -> Incident:
    put_jobs("rentguy", Status.PENDING, 4)
    alerting.tick(timezone.now())
    return Incident.objects.get()


def post(client: Client, token: str, path: str, **data):
    return client.post(path, {"csrfmiddlewaretoken": token, **data})


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]] if response.context else []


def test_every_dashboard_page_shows_the_banner_while_an_incident_is_open(incident):
    client, _ = csrf_client(staff())
    for path in ("/dashboard/", "/dashboard/alerts/", "/dashboard/audit/", "/dashboard/incidents/"):
        page = client.get(path).content.decode()
        assert f'href="/dashboard/incidents/{incident.pk}/" data-incident-banner' in page, path
        assert f"{incident.reference}</strong> open: Critical backlog on rentguy" in page
    Incident.objects.update(state=Incident.State.RESOLVED)
    assert "data-incident-banner" not in client.get("/dashboard/").content.decode()


def test_the_incident_page_shows_roles_deadlines_checklist_and_timeline(incident):
    client, _ = csrf_client(staff())
    page = client.get(f"/dashboard/incidents/{incident.pk}/").content.decode()
    assert "Needs an Incident Commander: due" in page
    assert 'data-deadline="' in page
    for role in ("First responder", "Incident Commander", "Communications Lead", "Product Owner"):
        assert f"<th>{role}</th>" in page
    assert page.count('data-item="') == 6
    assert "Opened by mrdj: alert" in page
    assert f'href="/incidents/{incident.pk}/export?format=json"' in page


def test_pages_are_for_staff_only(incident):
    assert Client().get("/dashboard/incidents/").status_code == 302
    client = Client()
    client.force_login(User.objects.create_user("visitor"))  # logged in, not staff
    assert client.get(f"/dashboard/incidents/{incident.pk}/").status_code == 403
    assert client.get(f"/incidents/{incident.pk}/export").status_code == 403
    assert Client().get(f"/incidents/{incident.pk}/export").status_code == 302


def test_actions_need_the_permission_post_and_csrf(incident):
    path = f"/dashboard/incidents/{incident.pk}/claim"
    client, token = csrf_client(staff())  # staff without change_incident
    assert post(client, token, path, role="commander").status_code == 403
    client, token = csrf_client(staff("change_incident"))
    assert client.get(path).status_code == 405
    assert client.post(path, {"role": "commander"}).status_code == 403  # no CSRF token
    assert not incident.roles.filter(name=Role.Name.COMMANDER).exists()
    assert post(client, token, path, role="commander").status_code == 302
    assert incident.roles.get(name=Role.Name.COMMANDER).holder
    assert post(client, token, "/dashboard/incidents/999/claim", role="commander").status_code == 404


def test_each_action_changes_the_incident_and_is_audited(incident):
    user = staff("change_incident", "add_incident")
    client, token = csrf_client(user)
    base = f"/dashboard/incidents/{incident.pk}"
    steps = [
        ("claim", {"role": "commander"}, "incident.role"),
        ("note", {"text": "checking RentGuy status page", "kind": "note"}, "incident.note"),
        ("note", {"text": "We are on it", "kind": "update"}, "incident.update"),
        ("checklist", {"item": "logs"}, "incident.checklist"),
        ("checklist", {"item": "postmortem", "value": "2026-12-03"}, "incident.checklist"),
        ("root-cause", {"root_cause": "expired API key"}, "incident.root_cause"),
        ("mitigate", {}, "incident.mitigate"),
    ]
    for action, data, audited in steps:
        response = post(client, token, f"{base}/{action}", **data)
        assert response.status_code == 302 and response.url == f"{base}/", action
        assert AuditEvent.objects.filter(action=audited, target=incident.reference).exists(), action
    incident.refresh_from_db()
    assert incident.state == "mitigated" and incident.root_cause == "expired API key"
    assert incident.last_update_at is not None
    assert set(incident.checklist) == {"logs", "postmortem"}
    response = post(client, token, "/dashboard/incidents/open", title="Status page down", severity="warning")
    assert Incident.objects.filter(title="Status page down", opened_by=user.username).exists()
    assert AuditEvent.objects.filter(action="incident.open").count() == 1


def test_a_refused_action_says_why_and_changes_nothing(incident):
    client, token = csrf_client(staff("change_incident"))
    response = client.post(
        f"/dashboard/incidents/{incident.pk}/resolve", {"csrfmiddlewaretoken": token}, follow=True
    )
    [message] = messages_of(response)
    assert message.startswith(
        "Incident Commander: nobody holds the role; only the Incident Commander can resolve"
    )
    assert "step 1: Logs collected" in message and "step 6: Post-mortem date set" in message
    response = client.post(
        f"/dashboard/incidents/{incident.pk}/checklist",
        {"csrfmiddlewaretoken": token, "item": "postmortem", "value": "soon"},
        follow=True,
    )
    assert messages_of(response) == ["date: give the post-mortem date as YYYY-MM-DD (got 'soon')"]
    response = client.post(
        "/dashboard/incidents/open",
        {"csrfmiddlewaretoken": token, "title": "x", "severity": "fatal"},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 403  # opening needs add_incident
    client, token = csrf_client(staff("add_incident"))
    response = client.post(
        "/dashboard/incidents/open",
        {"csrfmiddlewaretoken": token, "title": " ", "severity": "fatal", "queues": ["nope"]},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 400
    assert response.json()["message"] == (
        "title: say what is wrong; severity: 'fatal' is not one of warning, critical; "
        "queues: unknown queue 'nope' (known: rentguy, sevensa)"
    )
    assert Incident.objects.count() == 1
    incident.refresh_from_db()
    assert incident.state == "open" and incident.checklist == {}
    assert not AuditEvent.objects.filter(action__in=["incident.resolve", "incident.checklist"]).exists()


def test_the_export_gives_markdown_or_json(incident):
    client, _ = csrf_client(staff())
    response = client.get(f"/incidents/{incident.pk}/export")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"] == f'inline; filename="{incident.reference}.md"'
    text = response.content.decode()
    for heading in ("## Roles", "## Post-alert checklist (playbook section 7)", "## Timeline", "## Alerts"):
        assert heading in text
    assert '"backlog": 4' in text  # the alert payload
    data = json.loads(client.get(f"/incidents/{incident.pk}/export?format=json").content)
    assert data["reference"] == incident.reference
    assert [role["role"] for role in data["roles"]][:2] == ["First responder", "Incident Commander"]
    assert data["alerts"][0]["payload"]["figures"]["backlog"] == 4
    assert data["timeline"][0]["text"].startswith("Fired: alert")
    bad = client.get(f"/incidents/{incident.pk}/export?format=pdf")
    assert bad.status_code == 400 and bad.json() == {"error": "format: 'pdf' is not one of markdown, json"}
    assert client.get("/incidents/999/export").status_code == 404


def test_the_export_command_prints_and_writes_the_dossier(incident, managed_env, tmp_path):
    out, err = StringIO(), StringIO()
    call_command("incident_export", str(incident.pk), stdout=out, stderr=err)
    assert out.getvalue().startswith(f"# {incident.reference}: Critical backlog on rentguy")
    assert err.getvalue() == ""  # INCIDENT_DOSSIER_DIR not set: nothing written
    managed_env.set("INCIDENT_DOSSIER_DIR", str(tmp_path))
    out = StringIO()
    call_command("incident_export", incident.reference, "--format", "json", stdout=out, stderr=err)
    assert json.loads(out.getvalue())["id"] == incident.pk
    assert (tmp_path / incident.reference / "dossier.md").exists()
    assert json.loads((tmp_path / incident.reference / "dossier.json").read_text())["id"] == incident.pk
    with pytest.raises(CommandError, match="incident: no incident 'INC-20200101-1'"):
        call_command("incident_export", "INC-20200101-1")

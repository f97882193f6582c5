"""The Configuration tab and `manage.py config`: validated before anything is written, the second of
two concurrent edits refused, secrets never shown, every change a version with diff and rollback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from mrdj.configuration import seen_token
from mrdj.declarations import REGISTRY
from mrdj.models import AuditEvent, ConfigVersion
from tests.conftest import ROOT, database_url, python_env
from tests.support import csrf_client, staff

pytestmark = pytest.mark.django_db

SECRET = "jira-token-that-must-never-show"


def editor() -> tuple[Client, str]:
    return csrf_client(staff("change_configuration"))


def seen(managed_env, name: str) -> str:
    return seen_token(managed_env.get(name))


def save(client: Client, token: str, name: str, value: str | None, seen_as: str):
    data = {"csrfmiddlewaretoken": token, "seen": seen_as}
    data.update({"clear": "1"} if value is None else {"value": value})
    return client.post(f"/dashboard/config/{name}", data)


def test_the_tab_shows_every_variable_grouped_with_its_source(managed_env, monkeypatch):
    managed_env.set("QUEUE_MAX_ATTEMPTS", "7")
    monkeypatch.setenv("ALERT_THROTTLE_MS", "60000")
    client, _ = editor()

    page = client.get("/dashboard/config/").content.decode()

    for name in REGISTRY:
        assert f'id="var-{name}"' in page, name
    for title in ("Feature flags", "Telemetry", "Alert webhooks and routing", "Jira", "Tokens", "Incidents"):
        assert title in page
    row = page.split('id="var-QUEUE_MAX_ATTEMPTS"')[1].split("</tr>")[0]
    assert "<span data-value>7</span>" in row and "managed.env" in row
    forced = page.split('id="var-ALERT_THROTTLE_MS"')[1].split("</tr>")[0]
    assert "forced by the environment" in forced and "<form" not in forced


def test_a_valid_value_is_saved_versioned_and_audited(managed_env):
    client, token = editor()

    response = save(client, token, "QUEUE_MAX_ATTEMPTS", "4", "unset")

    assert response.status_code == 302
    assert managed_env.get("QUEUE_MAX_ATTEMPTS") == "4"
    version = ConfigVersion.objects.get()
    assert version.changes == {"QUEUE_MAX_ATTEMPTS": {"before": None, "after": "4"}}
    event = AuditEvent.objects.get(action="config.change")
    assert (event.target, event.after) == (
        "QUEUE_MAX_ATTEMPTS",
        {"QUEUE_MAX_ATTEMPTS": "4", "version": version.pk},
    )


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("QUEUE_MAX_ATTEMPTS", "four", "is not a whole number"),
        ("QUEUE_LEASE_MS", "10", "must be at least 1000"),
        ("RENTGUY_API_URL", "ftp://x", "is not an http:// or https:// URL"),
        ("LOG_LEVEL", "LOUD", "is not one of DEBUG, INFO, WARNING, ERROR"),
        ("ALERT_DEFAULT_CHANNEL", "#a\nB=1", "control character"),
        ("FLAG_TELEMETRY", "on", "a feature flag"),
    ],
)
def test_an_invalid_value_is_refused_naming_it_and_the_file_is_left_byte_identical(
    managed_env, name, value, reason
):
    managed_env.set("QUEUE_MAX_ATTEMPTS", "5")
    before = Path(managed_env.path).read_bytes()
    client, token = editor()

    response = client.post(
        f"/dashboard/config/{name}",
        {"csrfmiddlewaretoken": token, "seen": seen(managed_env, name), "value": value},
        HTTP_ACCEPT="application/json",
    )

    assert response.status_code == 400
    assert name in response.json()["message"] and reason in response.json()["message"]
    assert Path(managed_env.path).read_bytes() == before
    assert not ConfigVersion.objects.exists()


def test_the_second_of_two_concurrent_edits_is_refused_and_nothing_is_lost(managed_env):
    managed_env.set("ALERT_DEFAULT_CHANNEL", "#alerts")
    first, first_token = editor()
    second, second_token = editor()
    shown = seen(managed_env, "ALERT_DEFAULT_CHANNEL")  # both opened the page now

    assert save(first, first_token, "ALERT_DEFAULT_CHANNEL", "#ops", shown).status_code == 302
    refused = second.post(
        "/dashboard/config/ALERT_DEFAULT_CHANNEL",
        {"csrfmiddlewaretoken": second_token, "seen": shown, "value": "#other"},
        HTTP_ACCEPT="application/json",
    )

    assert refused.status_code == 400
    assert "ALERT_DEFAULT_CHANNEL: changed meanwhile to '#ops'" in refused.json()["message"]
    assert managed_env.get("ALERT_DEFAULT_CHANNEL") == "#ops"
    assert ConfigVersion.objects.count() == 1


def test_a_secret_is_write_only_never_in_a_page_the_audit_or_a_version(managed_env, caplog):
    client, token = editor()

    assert save(client, token, "ALERT_JIRA_TOKEN", SECRET, "unset").status_code == 302
    save(client, token, "ALERT_JIRA_TOKEN", "", seen(managed_env, "ALERT_JIRA_TOKEN"))  # an empty Replace
    page = client.get("/dashboard/config/").content.decode()
    history = client.get("/dashboard/config/history/").content.decode()

    assert managed_env.get("ALERT_JIRA_TOKEN") == SECRET
    row = page.split('id="var-ALERT_JIRA_TOKEN"')[1].split("</tr>")[0]
    assert "set (" in row and 'type="password"' in row
    for text in (
        page,
        history,
        str(list(AuditEvent.objects.values())),
        str(list(ConfigVersion.objects.values())),
    ):
        assert SECRET not in text
    assert SECRET not in caplog.text
    call_command("config", "show", "ALERT_JIRA_TOKEN")  # the command shows it redacted too


def test_history_diff_and_rollback_from_the_dashboard(managed_env):
    client, token = editor()
    save(client, token, "QUEUE_MAX_ATTEMPTS", "4", "unset")
    save(client, token, "ALERT_DEFAULT_CHANNEL", "#ops", "unset")
    save(client, token, "QUEUE_MAX_ATTEMPTS", "6", seen(managed_env, "QUEUE_MAX_ATTEMPTS"))
    first, _, third = ConfigVersion.objects.order_by("pk")

    diff = client.get(f"/dashboard/config/history/?a={first.pk}&b={third.pk}").content.decode()
    assert "data-diff" in diff and "QUEUE_MAX_ATTEMPTS" in diff and "#ops" in diff

    back = client.post(f"/dashboard/config/versions/{first.pk}/rollback", {"csrfmiddlewaretoken": token})

    assert back.status_code == 302
    assert managed_env.get("QUEUE_MAX_ATTEMPTS") == "4"
    assert managed_env.get("ALERT_DEFAULT_CHANNEL") is None  # as after version 1: the default applies
    rollback = ConfigVersion.objects.order_by("-pk").first()
    assert (
        rollback.note == f"rollback to version {first.pk}"
        and rollback.actor == AuditEvent.objects.first().actor
    )


def test_changing_configuration_needs_its_own_permission_and_post_with_csrf(managed_env):
    flags_only, token = csrf_client(staff("change_flags"))
    assert save(flags_only, token, "QUEUE_MAX_ATTEMPTS", "4", "unset").status_code == 403
    no_csrf = Client(enforce_csrf_checks=True)
    no_csrf.force_login(staff("change_configuration"))
    assert (
        no_csrf.post("/dashboard/config/QUEUE_MAX_ATTEMPTS", {"value": "4", "seen": "unset"}).status_code
        == 403
    )
    assert Client().get("/dashboard/config/").status_code == 302  # to the login page
    assert managed_env.get("QUEUE_MAX_ATTEMPTS") is None
    assert Client().get("/admin/mrdj/configversion/").status_code == 302


def test_the_command_sets_shows_refuses_and_rolls_back(managed_env, capsys, monkeypatch):
    call_command("config", "set", "QUEUE_MAX_ATTEMPTS", "3")
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(SECRET + "\n"))
    call_command("config", "set", "ALERT_JIRA_TOKEN", "-")
    with pytest.raises(CommandError, match="QUEUE_MAX_ATTEMPTS='x' is not a whole number"):
        call_command("config", "set", "QUEUE_MAX_ATTEMPTS", "x")
    with pytest.raises(CommandError, match="there is no version 99"):
        call_command("config", "rollback", "99")
    call_command("config", "unset", "QUEUE_MAX_ATTEMPTS")
    first = ConfigVersion.objects.order_by("pk").first()
    call_command("config", "rollback", str(first.pk))
    call_command("config", "history")
    call_command("config", "show")

    out = capsys.readouterr().out
    assert managed_env.get("QUEUE_MAX_ATTEMPTS") == "3" and managed_env.get("ALERT_JIRA_TOKEN") == SECRET
    assert SECRET not in out
    assert "rollback to version" in out


def test_parallel_config_set_commands_lose_no_update(managed_env, transactional_db):
    names = ["QUEUE_MAX_ATTEMPTS", "QUEUE_RETRY_BASE_MS", "ALERT_DEFAULT_CHANNEL", "ALERT_JIRA_PROJECT",
             "INCIDENT_COMMS_HANDLE", "OTEL_SERVICE_NAME"]  # fmt: skip
    values = {
        name: ("#c" if name == "ALERT_DEFAULT_CHANNEL" else "@x" if "HANDLE" in name else "42")
        for name in names
    }
    env = python_env(
        DJANGO_SETTINGS_MODULE="mrdj.settings", MANAGED_ENV_PATH=managed_env.path, DATABASE_URL=database_url()
    )
    commands = [
        subprocess.Popen(
            [sys.executable, "manage.py", "config", "set", name, value],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for name, value in values.items()
    ]  # fmt: skip
    for command in commands:
        _, err = command.communicate(timeout=120)
        assert command.returncode == 0, err

    assert {name: managed_env.get(name) for name in names} == values
    assert ConfigVersion.objects.count() == len(names)


def test_a_broken_line_is_fixed_through_the_command_and_health_turns_ok(managed_env, client):
    managed_env.set("QUEUE_MAX_ATTEMPTS", "lots")
    assert client.get("/healthz").json()["status"] == "degraded"

    call_command("config", "set", "QUEUE_MAX_ATTEMPTS", "8")

    assert client.get("/healthz").json()["status"] == "ok"


def test_the_test_buttons_say_whether_what_a_variable_points_at_answers(
    managed_env, closed_port, transactional_db
):
    import base64

    from tests.receivers import Answer, Receiver

    def jira(request):
        if request.path == "/rest/api/2/myself":
            good = "Basic " + base64.b64encode(b"ops@misterdj.nl:jira-api-token").decode()
            return Answer(200 if request.headers.get("Authorization") == good else 401)
        return None

    with Receiver(respond=jira) as server:
        managed_env.update(
            {
                "RENTGUY_API_URL": server.url + "/leads",
                "SEVENSA_SUBMIT_URL": f"http://127.0.0.1:{closed_port}/submit",
                "ALERT_JIRA_ENDPOINT": server.url,
                "ALERT_JIRA_USER": "ops@misterdj.nl",
                "ALERT_JIRA_TOKEN": "jira-api-token",
                "ALERT_WEBHOOK_URLS": f"json+{server.url}/hook",
            }
        )
        client, token = editor()

        def test(name: str) -> tuple[int, str]:
            response = client.post(
                f"/dashboard/config/{name}/test",
                {"csrfmiddlewaretoken": token},
                HTTP_ACCEPT="application/json",
            )
            return response.status_code, response.json()["message"]

        assert test("RENTGUY_API_URL")[1].startswith("RENTGUY_API_URL answered HTTP 200 OK in ")
        assert test("SEVENSA_SUBMIT_URL") == (400, "SEVENSA_SUBMIT_URL no answer: could not connect")
        assert test("ALERT_JIRA_TOKEN")[1].startswith("Jira accepts the credentials (answered HTTP 200")
        managed_env.set("ALERT_JIRA_TOKEN", "a-wrong-token")
        assert test("ALERT_JIRA_TOKEN")[1].startswith("Jira refuses the credentials (answered HTTP 401")
        assert test("ALERT_WEBHOOK_URLS") == (200, "smoke message taken by 1 of 1 webhooks")
        assert test("QUEUE_MAX_ATTEMPTS") == (400, "QUEUE_MAX_ATTEMPTS has no test")

        hook = [r for r in server.received if r.path == "/hook"]
        assert len(hook) == 1 and "smoke" in hook[0].body.decode().lower()
    events = AuditEvent.objects.filter(action="config.test")
    assert events.count() == 5
    assert "jira-api-token" not in str(list(events.values()))


def test_a_broken_line_keeps_the_queues_running_and_is_fixed_through_the_dashboard(
    inprocess_worker, managed_env
):
    from integrations import operations
    from integrations.models import Job, Status
    from integrations.queues import QUEUES
    from tests.conftest import wait_until

    managed_env.set("QUEUE_HTTP_READ_TIMEOUT_MS", "2 seconds")  # typed in by hand

    job, _ = operations.enqueue(QUEUES["rentguy"], {"lead": "Bruiloft Jansen"})
    wait_until(
        lambda: Job.objects.get(pk=job.pk).status == Status.DONE, message="delivered on the last good value"
    )

    client, token = editor()
    page = client.get("/dashboard/config/").content.decode()
    assert "data-config-banner" in page and "QUEUE_HTTP_READ_TIMEOUT_MS=&#x27;2 seconds&#x27;" in page
    save(client, token, "QUEUE_HTTP_READ_TIMEOUT_MS", "2000", seen(managed_env, "QUEUE_HTTP_READ_TIMEOUT_MS"))
    assert "data-config-banner" not in client.get("/dashboard/config/").content.decode()
    assert Client().get("/healthz").json()["status"] == "ok"

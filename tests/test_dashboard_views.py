"""Every dashboard page and action through the test client: who may, CSRF, what changed, what was audited."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from alerting import alert_actions
from alerting.models import Alert, Silence
from integrations.models import Job, Status
from mrdj.models import AuditEvent
from tests.conftest import TOKENS
from tests.support import csrf_client, flowing, put_jobs, staff

pytestmark = pytest.mark.django_db
PAGES = ["/dashboard/", "/dashboard/flags/", "/dashboard/alerts/", "/dashboard/health/",
         "/dashboard/readiness/", "/dashboard/audit/", "/dashboard/queues.json"]  # fmt: skip


@pytest.fixture
def jobs(managed_env):
    managed_env.update(TOKENS)
    put_jobs("rentguy", Status.RETRY, 3)
    put_jobs("rentguy", Status.DEAD, 2)


@pytest.mark.parametrize("page", PAGES)
def test_anonymous_users_are_sent_to_the_login_page(managed_env, page):
    response = Client().get(page)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/?next=/dashboard/")


@pytest.mark.parametrize("page", PAGES)
def test_non_staff_get_403(managed_env, page):
    client = Client()
    client.force_login(User.objects.create_user("guest"))
    assert client.get(page).status_code == 403


@pytest.mark.parametrize("page", PAGES)
def test_staff_see_every_page(managed_env, jobs, page):
    client = Client()
    client.force_login(staff())
    response = client.get(page)
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0") or "no-store" in response["Cache-Control"]


def test_the_queue_cards_show_the_figures_of_metrics_queues_and_a_severity(managed_env, jobs):
    flowing(managed_env)
    managed_env.update({"ALERT_QUEUE_WARNING_BACKLOG": "2", "ALERT_QUEUE_CRITICAL_BACKLOG": "10"})
    client = Client()
    client.force_login(staff())
    cards = {card["queue"]: card for card in client.get("/dashboard/queues.json").json()["queues"]}
    metrics = Client().get("/metrics/queues", HTTP_AUTHORIZATION=f"Bearer {TOKENS['OPS_API_TOKEN']}").json()
    for name, figures in metrics["queues"].items():
        counts = {key: value for key, value in figures.items() if not key.endswith("_ms")}
        assert {key: cards[name][key] for key in counts} == counts
        for age in ("retry_age_ms", "oldest_pending_age_ms"):  # read a moment apart
            assert abs(cards[name][age] - figures[age]) < 5000
    assert cards["rentguy"]["severity"] == "warning"  # backlog 3 >= 2, and 2 dead >= 1
    assert "Runbook" in cards["rentguy"]["hint"]
    assert cards["sevensa"]["severity"] == "ok" and cards["sevensa"]["hint"] == ""
    page = client.get("/dashboard/").content.decode()
    assert 'data-confirm="rentguy: 3 waiting, 3 of them retrying: flush retries those 3 now. Flush?"' in page
    assert 'data-confirm="Replay 2 dead-letter job(s) on rentguy?"' in page
    assert '<span class="badge warning">warning</span>' in page


ACTIONS = [
    ("/dashboard/queues/rentguy/flush", {}, "flush_job"),
    ("/dashboard/queues/rentguy/replay", {}, "replay_job"),
    ("/dashboard/mode", {"mode": "celery"}, "change_flags"),
    ("/dashboard/flags/FLAG_PERSONALIZATION", {"value": "on"}, "change_flags"),
    (
        "/dashboard/silences",
        {"queue": "rentguy", "ends_at": "2099-01-01T00:00", "reason": "x"},
        "add_silence",
    ),
    ("/dashboard/test-alert", {}, "send_test_alert"),
]


def test_a_queue_card_says_when_its_upstream_is_down_and_why(managed_env, jobs):
    from integrations.models import UpstreamState

    opened = timezone.now()
    UpstreamState.objects.create(
        queue="rentguy", circuit="open", opened_at=opened, failures=5, last_error="HTTP 502 Bad Gateway"
    )
    client = Client()
    client.force_login(staff())

    page = client.get("/dashboard/").content.decode()
    cards = client.get("/dashboard/queues.json").json()["queues"]

    since = f"{timezone.localtime(opened):%Y-%m-%d %H:%M:%S %Z}"
    assert f"DOWN since {since}: circuit open, jobs held (no tries counted against them)" in page
    assert "HTTP 502 Bad Gateway" in page
    rentguy = next(card for card in cards if card["queue"] == "rentguy")
    assert (rentguy["severity"], rentguy["problem"]) == ("critical", "circuit_open")
    assert rentguy["last_error_text"] == "HTTP 502 Bad Gateway"


@pytest.mark.parametrize(("url", "data", "permission"), ACTIONS)
def test_actions_need_post_csrf_and_the_permission_and_change_nothing_otherwise(jobs, url, data, permission):
    before = (list(Job.objects.values_list("pk", "status", "next_attempt_at")), AuditEvent.objects.count())
    anonymous = Client().post(url, data)
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]
    guest = Client()
    guest.force_login(User.objects.create_user("guest"))
    assert guest.post(url, data).status_code == 403
    without, token = csrf_client(staff())
    assert without.post(url, {**data, "csrfmiddlewaretoken": token}).status_code == 403
    allowed, token = csrf_client(staff(permission))
    assert allowed.post(url, data).status_code == 403  # no CSRF token
    assert allowed.get(url).status_code == 405
    after = (list(Job.objects.values_list("pk", "status", "next_attempt_at")), AuditEvent.objects.count())
    assert after == before


def test_flush_moves_the_waiting_jobs_and_reports_the_count_as_json(jobs):
    client, token = csrf_client(staff("flush_job"))
    response = client.post(
        "/dashboard/queues/rentguy/flush", {"csrfmiddlewaretoken": token}, HTTP_ACCEPT="application/json"
    )
    assert response.json() == {
        "message": "rentguy: 3 job(s) waiting to retry flushed: they are tried now.",
        "level": "success",
    }
    assert Job.objects.filter(status=Status.RETRY, next_attempt_at__gt=timezone.now()).count() == 0
    event = AuditEvent.objects.get(action="queue.flush")
    assert event.after == {"jobs": 3} and event.user is not None


def test_replay_returns_the_dead_jobs_and_redirects_a_plain_form_with_a_message(jobs):
    client, token = csrf_client(staff("replay_job"))
    response = client.post("/dashboard/queues/rentguy/replay", {"csrfmiddlewaretoken": token}, follow=True)
    assert "rentguy: 2 dead-letter job(s) replayed." in response.content.decode()
    assert not Job.objects.filter(status=Status.DEAD).exists()
    assert AuditEvent.objects.get(action="deadletter.replay").after == {"jobs": 2}


def test_a_flag_toggle_writes_managed_env_and_is_audited(managed_env):
    client, token = csrf_client(staff("change_flags"))
    response = client.post(
        "/dashboard/flags/FLAG_PERSONALIZATION", {"value": "on", "csrfmiddlewaretoken": token}, follow=True
    )
    assert "FLAG_PERSONALIZATION is now on." in response.content.decode()
    assert managed_env.get("FLAG_PERSONALIZATION") == "on"
    assert AuditEvent.objects.get(action="flag.change").target == "FLAG_PERSONALIZATION"


def test_a_forced_flag_is_shown_disabled_and_refused(managed_env, monkeypatch):
    monkeypatch.setenv("FLAG_TELEMETRY", "on")
    client, token = csrf_client(staff("change_flags"))
    page = client.get("/dashboard/flags/").content.decode()
    assert "Forced by FLAG_TELEMETRY in the service's environment" in page
    response = client.post(
        "/dashboard/flags/FLAG_TELEMETRY", {"value": "off", "csrfmiddlewaretoken": token}, follow=True
    )
    assert "FLAG_TELEMETRY" in response.content.decode() and managed_env.get("FLAG_TELEMETRY") is None
    assert not AuditEvent.objects.exists()


def test_an_invalid_flag_value_is_refused_naming_it(managed_env):
    client, token = csrf_client(staff("change_flags"))
    response = client.post(
        "/dashboard/flags/FLAG_PERSONALIZATION", {"value": "maybe", "csrfmiddlewaretoken": token}, follow=True
    )
    assert "maybe" in response.content.decode() and managed_env.get("FLAG_PERSONALIZATION") is None


def test_the_mode_switch_writes_queue_redis_enabled(managed_env):
    client, token = csrf_client(staff("change_flags"))
    client.post("/dashboard/mode", {"mode": "celery", "csrfmiddlewaretoken": token})
    assert managed_env.get("QUEUE_REDIS_ENABLED") == "true"
    assert AuditEvent.objects.get(action="queue.mode").after == "celery"


def test_acknowledge_records_the_user_as_first_responder(managed_env):
    alert = Alert.objects.create(
        queue="rentguy", kind="backlog", severity="warning", started_at=timezone.now()
    )
    user = staff("acknowledge_alert")
    client, token = csrf_client(user)
    response = client.post(f"/dashboard/alerts/{alert.pk}/ack", {"csrfmiddlewaretoken": token}, follow=True)
    assert f"You are first responder for alert {alert.pk}." in response.content.decode()
    alert.refresh_from_db()
    assert alert.acknowledged_by == user
    assert AuditEvent.objects.get(action="alert.ack").user == user


def test_silences_are_created_and_ended_from_the_alerts_tab(managed_env):
    client, token = csrf_client(staff("add_silence"))
    until = timezone.localtime() + timezone.timedelta(days=2)
    response = client.post(
        "/dashboard/silences",
        {
            "queue": "sevensa",
            "ends_at": until.strftime("%Y-%m-%dT%H:%M"),
            "reason": "Sevensa maintenance",
            "csrfmiddlewaretoken": token,
        },
        follow=True,
    )
    assert f"Silenced: silence of sevensa until {until:%Y-%m-%d}" in response.content.decode()
    silence = Silence.objects.get()
    response = client.post(
        f"/dashboard/silences/{silence.pk}/expire", {"csrfmiddlewaretoken": token}, follow=True
    )
    assert "Ended:" in response.content.decode()
    assert [e.action for e in AuditEvent.objects.order_by("pk")] == ["alert.silence", "alert.silence.expire"]


def _soon() -> str:
    return (timezone.localtime() + timezone.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")


@pytest.mark.parametrize(
    ("form", "message"),
    [
        (
            {"queue": "sevensa", "ends_at": "2001-01-01T12:00", "reason": "late"},
            "ends_at: the silence must end in the future",
        ),
        ({"queue": "sevensa", "ends_at": "tomorrow", "reason": "x"}, "until: give a date and time"),
        ({"queue": "nope", "ends_at": "2099-01-01T12:00", "reason": "x"}, "unknown queue"),
        (
            {"queue": "sevensa", "ends_at": "9999-12-31T23:59", "reason": "forever"},
            "ends_at: a silence lasts at most 30 days",
        ),
        ({"queue": "sevensa", "ends_at": "2099-01-01T12:00", "reason": "x"}, "at most 30 days"),
        ({"queue": "", "ends_at": _soon(), "reason": "maintenance\x00"}, "reason: one line, without control"),
        ({"queue": "", "ends_at": _soon(), "reason": "a\u2028b"}, "(found U+2028)"),
    ],
)
def test_a_bad_silence_is_refused_naming_the_field(managed_env, form, message):
    client, token = csrf_client(staff("add_silence"))
    response = client.post("/dashboard/silences", {**form, "csrfmiddlewaretoken": token}, follow=True)
    assert message in response.content.decode()
    assert not Silence.objects.exists()


def test_the_audit_tab_filters_by_kind(managed_env):
    from mrdj import audit

    audit.record("queue.flush", actor="cli:a", target="rentguy")
    audit.record("flag.change", actor="cli:b", target="FLAG_TELEMETRY")
    client = Client()
    client.force_login(staff())
    page = client.get("/dashboard/audit/?action=flag.change").content.decode()
    assert "FLAG_TELEMETRY" in page and "rentguy" not in page


def test_readiness_page_and_command_agree(managed_env, capsys):
    from django.core.management import CommandError, call_command

    client = Client()
    client.force_login(staff())
    page = client.get("/dashboard/readiness/").content.decode()
    assert "not ready" in page and "ALERT_WEBHOOK_URLS is empty" in page
    with pytest.raises(CommandError, match="not ready: upstreams, worker, webhooks"):
        call_command("readiness")
    printed = capsys.readouterr().out
    assert "pass   redis: ping ok" in printed and "FAIL   webhooks: ALERT_WEBHOOK_URLS is empty" in printed
    assert "FAIL   upstreams: RENTGUY_API_URL, SEVENSA_SUBMIT_URL not set" in printed
    assert "pass   configuration: every value" in printed
    assert "manual chaos test" in printed


def test_open_incidents_and_silences_come_in_pages_and_the_banner_shows_the_count_and_the_newest(managed_env):
    from datetime import timedelta

    from incidents import incident_actions as incident_services

    user = staff("add_incident")
    opened = [
        incident_services.open_incident(
            f"Incident {n}", "warning", [], user, now=timezone.now() + timedelta(seconds=n)
        )
        for n in range(45)
    ]
    for n in range(25):
        alert_actions.create_silence("rentguy", timezone.now() + timedelta(hours=1 + n), f"s{n}", user)
    client = Client()
    client.force_login(user)

    queues = client.get("/dashboard/").content.decode()
    assert queues.count("data-incident-banner>") == 1
    assert f"{opened[-1].reference}</strong>" in queues and "and 44 more open incidents" in queues
    first = client.get("/dashboard/incidents/").content.decode()
    assert first.count('class="card incident"') == 20 and "page 1 of 3 (45 in all)" in first
    last = client.get("/dashboard/incidents/?open=3").content.decode()
    assert last.count('class="card incident"') == 5
    alerts = client.get("/dashboard/alerts/").content.decode()
    assert alerts.count(">End now</button>") == 20 and "page 1 of 2 (25 in all)" in alerts

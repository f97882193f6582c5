"""Acknowledging over HTTP and in the admin; thresholds edited and validated in the admin."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.utils import timezone

from alerting import thresholds
from alerting.models import Alert, Threshold
from mrdj.models import AuditEvent
from tests.conftest import TOKENS
from tests.support import csrf_client, staff

pytestmark = pytest.mark.django_db
OPS = {"HTTP_AUTHORIZATION": f"Bearer {TOKENS['OPS_API_TOKEN']}"}


@pytest.fixture
def alert(managed_env):
    managed_env.update(TOKENS)
    return Alert.objects.create(
        queue="rentguy", kind="backlog", severity="critical", started_at=timezone.now()
    )


def test_the_ops_token_acknowledges_and_is_recorded_as_first_responder(client, alert):
    response = client.post(f"/alerts/{alert.pk}/ack", **OPS)
    assert response.status_code == 200
    assert response.json()["acknowledged_by"] == "token:ops" and response.json()["acknowledged_now"]
    alert.refresh_from_db()
    assert alert.acknowledged_by_name == "token:ops" and alert.acknowledged_at is not None
    event = AuditEvent.objects.get(action="alert.ack")
    assert (event.actor, event.target) == ("token:ops", f"alert {alert.pk}: rentguy backlog")


def test_a_second_acknowledgement_keeps_the_first_responder(client, alert):
    client.post(f"/alerts/{alert.pk}/ack", **OPS)
    user = staff("acknowledge_alert")
    session, token = csrf_client(user)
    response = session.post(f"/alerts/{alert.pk}/ack", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200 and not response.json()["acknowledged_now"]
    assert response.json()["acknowledged_by"] == "token:ops"
    assert AuditEvent.objects.filter(action="alert.ack").count() == 1


def test_staff_with_the_permission_acknowledge_over_post_with_csrf(alert):
    user = staff("acknowledge_alert")
    session, token = csrf_client(user)
    assert session.post(f"/alerts/{alert.pk}/ack").status_code == 403  # no CSRF token
    response = session.post(f"/alerts/{alert.pk}/ack", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200
    alert.refresh_from_db()
    assert alert.acknowledged_by == user and alert.acknowledged_by_name == user.username


@pytest.mark.parametrize(
    ("who", "status"),
    [("anonymous", 401), ("wrong token", 401), ("staff without permission", 403)],
)
def test_others_cannot_acknowledge(alert, who, status):
    client = Client()
    headers = {"HTTP_AUTHORIZATION": "Bearer nope"} if who == "wrong token" else {}
    if who.startswith("staff"):
        client.force_login(staff())
    assert client.post(f"/alerts/{alert.pk}/ack", **headers).status_code == status
    alert.refresh_from_db()
    assert alert.acknowledged_at is None and not AuditEvent.objects.exists()


def test_unknown_resolved_and_get_are_refused(client, alert):
    assert client.post("/alerts/999999/ack", **OPS).status_code == 404
    assert client.get(f"/alerts/{alert.pk}/ack", **OPS).status_code == 405
    Alert.objects.filter(pk=alert.pk).update(state=Alert.State.RESOLVED)
    response = client.post(f"/alerts/{alert.pk}/ack", **OPS)
    assert response.status_code == 409 and "resolved" in response.json()["error"]


def test_the_admin_action_acknowledges_as_the_logged_in_user(alert):
    admin = User.objects.create_superuser("chief", password="x")
    client = Client()
    client.force_login(admin)
    response = client.post(
        "/admin/alerting/alert/",
        {"action": "acknowledge_selected", "_selected_action": [alert.pk]},
        follow=True,
    )
    assert "1 alert(s) acknowledged." in response.content.decode()
    alert.refresh_from_db()
    assert alert.acknowledged_by == admin


def test_the_default_row_exists_and_follows_the_variables(managed_env):
    default = Threshold.objects.get(queue="")
    assert default.warning_backlog is None
    managed_env.set("ALERT_QUEUE_WARNING_BACKLOG", "150")
    limits = thresholds.limits_by_queue(["rentguy"])["rentguy"]
    assert (limits.warning_backlog, limits.critical_backlog, limits.dead_letter_warning) == (150, 500, 1)
    Threshold.objects.create(queue="rentguy", critical_backlog=800)
    Threshold.objects.filter(queue="").update(warning_backlog=200)
    limits = thresholds.limits_by_queue(["rentguy", "sevensa"])
    assert (limits["rentguy"].warning_backlog, limits["rentguy"].critical_backlog) == (200, 800)
    assert (limits["sevensa"].warning_backlog, limits["sevensa"].critical_backlog) == (200, 500)


def test_variables_with_warning_above_critical_are_refused_naming_both(managed_env):
    managed_env.update({"ALERT_QUEUE_WARNING_RETRY_AGE_MS": "900001"})
    with pytest.raises(ImproperlyConfigured, match="ALERT_QUEUE_WARNING_RETRY_AGE_MS=900001 is above"):
        thresholds.from_variables()


def admin_form(**values) -> dict:
    fields = ["warning_backlog", "critical_backlog", "warning_retry_age_ms", "critical_retry_age_ms"]
    return {"queue": "rentguy", **dict.fromkeys(fields, ""), "dead_letter_warning": "", **values}


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"warning_backlog": "600"}, "warning_backlog", "warning (600) must not be above critical (500)"),
        ({"warning_backlog": "50", "critical_backlog": "40"}, "warning_backlog", "must not be above"),
        ({"critical_retry_age_ms": "1000"}, "critical_retry_age_ms", "warning (300000) must not be above"),
        ({"dead_letter_warning": "-1"}, "dead_letter_warning", "greater than or equal to 0"),
        ({"critical_backlog": "many"}, "critical_backlog", "Enter a whole number"),
    ],
)
def test_the_admin_refuses_bad_thresholds_on_the_field(managed_env, values, field, message):
    admin = User.objects.create_superuser("chief", password="x")
    client = Client()
    client.force_login(admin)
    response = client.post("/admin/alerting/threshold/add/", admin_form(**values))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert field in errors and message in " ".join(errors[field])
    assert not Threshold.objects.filter(queue="rentguy").exists()
    assert not AuditEvent.objects.exists()


def test_the_admin_saves_good_thresholds_and_audits_the_change(managed_env):
    admin = User.objects.create_superuser("chief", password="x")
    client = Client()
    client.force_login(admin)
    response = client.post(
        "/admin/alerting/threshold/add/", admin_form(warning_backlog="20", critical_backlog="40")
    )
    assert response.status_code == 302
    row = Threshold.objects.get(queue="rentguy")
    assert (row.warning_backlog, row.critical_backlog, row.warning_retry_age_ms) == (20, 40, None)
    event = AuditEvent.objects.get(action="threshold.change")
    assert event.after == {"queue": "rentguy", "warning_backlog": 20, "critical_backlog": 40}
    page = client.get(f"/admin/alerting/threshold/{row.pk}/change/").content.decode()
    assert "Empty: 300000 (inherited)." in page

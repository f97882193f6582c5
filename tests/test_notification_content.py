"""NotificationContent as stored: what is built reads back equal, and rows of older versions render."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from alerting import content, notify
from alerting.content import SMOKE, NotificationContent
from alerting.models import Alert, Notification
from alerting.transports import TRANSPORTS

pytestmark = pytest.mark.django_db

# A firing alert as stored before PagerDuty came (no alert_label, limits nor incident_id), with a
# key no version reads any more.
OLD_ROW = {
    "type": "alert", "event": "firing", "alert_id": 3, "queue": "rentguy", "kind": "backlog",
    "severity": "critical", "title": "[CRITICAL] rentguy: queue thresholds exceeded",
    "message": "queue thresholds exceeded", "backlog": "4 jobs waiting, 0 in flight",
    "retry_age": "no job waiting to retry", "figures": {"backlog": 4, "active": 0},
    "dead_letter_new": 0, "facts": [["Queue", "rentguy"], ["Severity", "critical"]],
    "runbook": "Runbook 'Backlog Critical'", "escalation": "", "started_at": "2026-01-02T03:04:05+00:00",
    "dashboard_url": "https://ops.misterdj.example/dashboard/", "colour": "red",
}  # fmt: skip


def test_an_old_row_reads_with_defaults_for_what_it_lacks_and_ignores_the_rest():
    old = NotificationContent.from_json(OLD_ROW)
    assert (old.alert_label, old.limits, old.incident_id) == ("", {}, None)
    assert old.facts == (("Queue", "rentguy"), ("Severity", "critical"))
    assert not hasattr(old, "colour") and "colour" not in old.to_json()
    bodies = {
        service: transport(1, 1, secret="key").body(old, "") for service, transport in TRANSPORTS.items()
    }
    assert bodies["pagerduty"]["dedup_key"] == "mrdj-alert-id-3"
    assert bodies["pagerduty"]["payload"]["custom_details"]["thresholds"] == {}
    assert bodies["json"]["incident_id"] is None and bodies["json"]["backlog"] == 4
    assert bodies["slack"]["blocks"][0]["text"]["text"] == OLD_ROW["title"]


def test_a_row_of_two_keys_still_renders():
    smoke = NotificationContent.from_json(dict(SMOKE))
    assert TRANSPORTS["json"](1, 1).body(smoke, "") == SMOKE
    assert TRANSPORTS["teams"](1, 1).body(smoke, "")["attachments"][0]["content"]["body"][1]["text"] == (
        "alert-test"
    )


def test_what_is_built_is_what_the_database_gives_back():
    alert = Alert.objects.create(
        key="rentguy:stalled", queue="rentguy", kind="stalled", severity="critical",
        started_at=timezone.now(), payload={"figures": {"backlog": 3}, "reason": "no worker"},
    )  # fmt: skip
    built = content.for_alert(alert, Notification.Event.FIRING, escalation="@ic-oncall")
    assert NotificationContent.from_json(json.loads(json.dumps(built.to_json()))) == built
    stored = notify.notify(
        alert=alert, event="firing", severity="critical", content=built, now=timezone.now(), send=False
    )
    row = Notification.objects.get(pk=stored.pk)
    assert row.message == built.message and row.content["facts"][-1] == ["Why", "no worker"]
    assert NotificationContent.from_json(row.content) == built
    for other in (content.for_smoke(), content.for_dr("two queues critical", [alert])):
        assert NotificationContent.from_json(other.to_json()) == other

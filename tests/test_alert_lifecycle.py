"""The life of an alert against real queue figures, with time moved by passing now."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from alerting import alert_actions, evaluation, lifecycle, sender
from alerting.evaluation import Condition
from alerting.models import Alert, DrActivation, Kind, Notification, Severity
from integrations.models import Job, Status
from integrations.operations import recount
from mrdj.models import AuditEvent
from tests.conftest import wait_until
from tests.support import put_jobs

pytestmark = pytest.mark.django_db(transaction=True)
MINUTE = timedelta(minutes=1)


def arrived(receiver, path: str, count: int) -> list[dict]:
    wait_until(lambda: len(receiver.to(path)) >= count, timeout=10, message=f"{count} requests on {path}")
    return [request.json() for request in receiver.to(path)]


def settle() -> None:
    """Wait for every delivery in flight, so counts of what arrived are final."""
    sender.shutdown()


def clear_queue(queue: str) -> None:
    Job.objects.filter(queue=queue).update(status=Status.DONE)
    recount()


def events() -> list[str]:
    return list(Notification.objects.order_by("pk").values_list("event", flat=True))


def test_it_notifies_every_service_once_when_a_backlog_crosses_warning(hooks):
    put_jobs("rentguy", Status.PENDING, 2)
    now = timezone.now()
    sent = lifecycle.tick(now)
    assert [n.event for n in sent] == ["firing"]
    generic = arrived(hooks, "/json", 1)[0]
    assert generic["type"] == "alert"
    assert generic["queue"] == "rentguy"
    assert generic["severity"] == "warning"
    assert generic["message"] == "queue thresholds exceeded"
    assert generic["backlog"] == 2
    assert generic["backlog_description"].startswith("2 jobs waiting")
    assert "warning at 2, critical at 4" in generic["backlog_description"]
    assert (
        generic["retry_age_description"] == "no job waiting to retry (warning at 5 min, critical at 15 min)"
    )
    assert "Backlog Warning" in generic["runbook"]
    assert generic["dashboard_url"] == "https://ops.misterdj.example/dashboard/"
    for service in ("/slack", "/discord", "/teams"):
        arrived(hooks, service, 1)
    assert lifecycle.tick(now + MINUTE) == []
    settle()
    assert len(hooks.received) == 4
    alert = Alert.objects.get()
    assert (alert.queue, alert.kind, alert.severity, alert.state) == (
        "rentguy",
        "backlog",
        "warning",
        "firing",
    )
    assert alert.payload["figures"]["backlog"] == 2


def test_retry_age_alerts_say_thresholds_exceeded_with_the_critical_runbook(hooks):
    put_jobs("sevensa", Status.RETRY, 1, age=timedelta(minutes=16))
    lifecycle.tick()
    alert = Alert.objects.get(kind=Kind.RETRY_AGE)
    assert alert.severity == Severity.CRITICAL
    generic = arrived(hooks, "/json", 1)[0]
    assert generic["message"] == "queue thresholds exceeded"
    assert generic["kind"] == "retry_age"
    assert generic["retry_age_description"].startswith("oldest retry waiting 16 min")
    assert "QUEUE_REDIS_ENABLED=false" in generic["runbook"]


def test_the_same_alert_is_not_sent_again_within_the_throttle_window(hooks, managed_env):
    managed_env.set("ALERT_RESOLVE_QUIET_MS", "1000")
    put_jobs("rentguy", Status.PENDING, 2)
    t0 = timezone.now()
    lifecycle.tick(t0)
    clear_queue("rentguy")
    lifecycle.tick(t0 + timedelta(seconds=1))
    assert [n.event for n in lifecycle.tick(t0 + timedelta(seconds=3))] == ["resolved"]
    put_jobs("rentguy", Status.PENDING, 2)
    assert lifecycle.tick(t0 + timedelta(seconds=4)) == []  # firing again, inside the window
    assert lifecycle.tick(t0 + timedelta(seconds=100)) == []
    assert [n.event for n in lifecycle.tick(t0 + timedelta(seconds=121))] == ["firing"]
    assert events() == ["firing", "resolved", "firing"]


def test_escalation_to_critical_is_never_throttled(hooks):
    put_jobs("rentguy", Status.PENDING, 2)
    t0 = timezone.now()
    lifecycle.tick(t0)
    put_jobs("rentguy", Status.PENDING, 2)
    sent = lifecycle.tick(t0 + timedelta(seconds=5))
    assert [n.event for n in sent] == ["escalated"]
    escalated = arrived(hooks, "/json", 2)[1]
    assert escalated["severity"] == "critical"
    assert escalated["message"].startswith("escalated to critical")
    assert lifecycle.tick(t0 + timedelta(seconds=6)) == []


def test_two_evaluators_at_once_send_one_notification(hooks):
    put_jobs("rentguy", Status.PENDING, 2)
    now = timezone.now()
    start = threading.Barrier(4)
    errors = []

    def evaluate():
        from django.db import connection

        try:
            start.wait()
            lifecycle.tick(now)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=evaluate) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert Alert.objects.count() == 1
    assert events() == ["firing"]
    settle()
    assert len(hooks.to("/json")) == 1


def test_dead_letter_alerts_go_out_once_per_window_with_the_count_since_the_last(hooks):
    put_jobs("rentguy", Status.DEAD, 1)
    t0 = timezone.now()
    lifecycle.tick(t0)
    first = arrived(hooks, "/json", 1)[0]
    assert first["message"] == "Job moved to dead-letter queue: 1 job, 1 in dead-letter now"
    assert "deadletter/replay" in first["runbook"] and "/integrations/rentguy/" in first["runbook"]
    put_jobs("rentguy", Status.DEAD, 3)
    assert lifecycle.tick(t0 + timedelta(seconds=10)) == []
    put_jobs("rentguy", Status.DEAD, 2)
    assert lifecycle.tick(t0 + timedelta(seconds=60)) == []
    sent = lifecycle.tick(t0 + timedelta(seconds=121))
    assert [n.event for n in sent] == ["dead_letter"]
    summary = arrived(hooks, "/json", 2)[1]
    assert summary["dead_letter_new"] == 5
    assert (
        summary["message"]
        == "Job moved to dead-letter queue: 5 jobs since the last alert, 6 in dead-letter now"
    )
    assert lifecycle.tick(t0 + timedelta(seconds=200)) == []


def test_severity_route_adds_a_slack_channel_and_a_webhook_for_critical_only(hooks, managed_env):
    managed_env.set("ALERT_SEVERITY_ROUTE", f"critical:#dr-war-room,critical:json+{hooks.url}/war-room")
    put_jobs("rentguy", Status.PENDING, 2)
    lifecycle.tick()
    settle()
    assert [body.json()["channel"] for body in hooks.to("/slack")] == ["#alerts-queues"]
    assert hooks.to("/war-room") == []
    put_jobs("rentguy", Status.PENDING, 2)
    lifecycle.tick()
    settle()
    channels = sorted(body.json()["channel"] for body in hooks.to("/slack"))
    assert channels == ["#alerts-queues", "#alerts-queues", "#dr-war-room"]
    assert [body.json()["severity"] for body in hooks.to("/war-room")] == ["critical"]
    assert len(hooks.to("/discord")) == 2  # channels mean nothing to Discord: no extra copy


def test_resolves_only_after_the_condition_stayed_clear_for_the_quiet_period(hooks):
    put_jobs("rentguy", Status.PENDING, 2)
    t0 = timezone.now()
    lifecycle.tick(t0)
    alert_actions.acknowledge(Alert.objects.get(), "token:ops", t0)
    clear_queue("rentguy")
    lifecycle.tick(t0 + MINUTE)
    assert lifecycle.tick(t0 + 9 * MINUTE) == []
    put_jobs("rentguy", Status.PENDING, 2)  # back before the quiet period ended
    lifecycle.tick(t0 + 10 * MINUTE)
    clear_queue("rentguy")
    lifecycle.tick(t0 + 11 * MINUTE)
    assert lifecycle.tick(t0 + 20 * MINUTE) == []
    sent = lifecycle.tick(t0 + 21 * MINUTE)
    assert [n.event for n in sent] == ["resolved"]
    resolved = arrived(hooks, "/json", 2)[1]
    assert resolved["type"] == "resolved"
    assert resolved["severity"] == "resolved"
    assert Alert.objects.get().state == Alert.State.RESOLVED
    assert lifecycle.tick(t0 + 30 * MINUTE) == []


def test_unacknowledged_warning_is_sent_again_naming_the_next_role(hooks):
    put_jobs("rentguy", Status.PENDING, 2)
    t0 = timezone.now()
    lifecycle.tick(t0)
    assert lifecycle.tick(t0 + 4 * MINUTE) == []
    sent = lifecycle.tick(t0 + 5 * MINUTE)
    assert [n.event for n in sent] == ["unacknowledged"]
    again = arrived(hooks, "/json", 2)[1]
    assert again["escalation"] == "Not acknowledged within 5 min: escalating to #oncall-ops"
    settle()
    assert sorted(r.json()["channel"] for r in hooks.to("/slack")) == [
        "#alerts-queues",
        "#alerts-queues",
        "#oncall-ops",
    ]
    assert lifecycle.tick(t0 + 6 * MINUTE) == []


def test_unacknowledged_critical_escalates_after_two_minutes_to_the_incident_commander(hooks):
    put_jobs("rentguy", Status.PENDING, 4)
    t0 = timezone.now()
    lifecycle.tick(t0)
    assert lifecycle.tick(t0 + timedelta(seconds=119)) == []
    sent = lifecycle.tick(t0 + 2 * MINUTE)
    assert [n.event for n in sent] == ["unacknowledged"]
    assert "@ic-oncall" in sent[0].content["escalation"]


def test_an_acknowledged_alert_is_not_escalated(hooks):
    put_jobs("rentguy", Status.PENDING, 2)
    t0 = timezone.now()
    lifecycle.tick(t0)
    alert = Alert.objects.get()
    assert alert_actions.acknowledge(alert, "token:ops", t0 + MINUTE)
    assert not alert_actions.acknowledge(alert, "someone-else", t0 + 2 * MINUTE)
    alert.refresh_from_db()
    assert alert.acknowledged_by_name == "token:ops"
    assert lifecycle.tick(t0 + 10 * MINUTE) == []
    assert AuditEvent.objects.filter(action="alert.ack").count() == 1


def test_a_critical_alert_lasting_ten_minutes_triggers_the_dr_plan_once(hooks):
    put_jobs("rentguy", Status.PENDING, 4)
    t0 = timezone.now()
    lifecycle.tick(t0)
    assert [n.event for n in lifecycle.tick(t0 + 9 * MINUTE)] == ["unacknowledged"]
    sent = lifecycle.tick(t0 + 10 * MINUTE)
    assert [n.event for n in sent] == ["dr"]
    dr = sent[0].content
    assert dr["message"].startswith("Activate the DR plan: critical alert on rentguy for over 10 min")
    assert "docs/disaster_recovery/activation.md" in dr["runbook"]
    assert lifecycle.tick(t0 + 15 * MINUTE) == []
    assert DrActivation.objects.count() == 1
    settle()
    assert [r.json()["type"] for r in hooks.to("/json")].count("dr") == 1


def test_two_queues_critical_at_once_trigger_the_dr_plan(hooks):
    put_jobs("rentguy", Status.PENDING, 4)
    put_jobs("sevensa", Status.PENDING, 4)
    sent = lifecycle.tick()
    assert sorted(n.event for n in sent) == ["dr", "firing", "firing"]
    dr = next(n for n in sent if n.event == "dr")
    assert "queues rentguy and sevensa critical at the same time" in dr.message
    settle()
    assert [r.json()["type"] for r in hooks.to("/json")].count("dr") == 1


def test_telemetry_silent_while_an_alert_fires_triggers_the_dr_plan(hooks, monkeypatch):
    def telemetry(figures) -> list[Condition]:
        payload = {"figures": evaluation.totals(figures), "silent_for_ms": 400_000}
        return [Condition("", Kind.TELEMETRY_SILENT, Severity.WARNING, payload)]

    monkeypatch.setattr(evaluation, "SOURCES", [*evaluation.SOURCES, telemetry])
    assert [n.event for n in lifecycle.tick()] == ["firing"]  # telemetry alone: no DR
    put_jobs("rentguy", Status.PENDING, 2)
    sent = lifecycle.tick()
    assert sorted(n.event for n in sent) == ["dr", "firing"]
    assert "telemetry silent while an alert fires" in next(n for n in sent if n.event == "dr").message


def test_the_dr_trigger_rearms_once_every_alert_has_resolved(hooks, managed_env):
    managed_env.set("ALERT_RESOLVE_QUIET_MS", "0")
    put_jobs("rentguy", Status.PENDING, 4)
    put_jobs("sevensa", Status.PENDING, 4)
    t0 = timezone.now()
    lifecycle.tick(t0)
    clear_queue("rentguy")
    clear_queue("sevensa")
    lifecycle.tick(t0 + MINUTE)
    lifecycle.tick(t0 + 2 * MINUTE)
    assert DrActivation.objects.get().ended_at is not None
    put_jobs("rentguy", Status.PENDING, 4)
    put_jobs("sevensa", Status.PENDING, 4)
    assert "dr" in [n.event for n in lifecycle.tick(t0 + 10 * MINUTE)]
    assert DrActivation.objects.count() == 2


def test_a_silenced_queue_records_its_alerts_without_sending_until_the_silence_ends(hooks):
    t0 = timezone.now()
    silence = alert_actions.create_silence(
        "rentguy", t0 + timedelta(hours=1), "upstream maintenance", "cli:ops", t0
    )
    put_jobs("rentguy", Status.PENDING, 2)
    put_jobs("sevensa", Status.PENDING, 2)
    sent = lifecycle.tick(t0)
    by_queue = {n.alert.queue: n for n in sent}
    assert by_queue["rentguy"].silenced_by == silence
    assert not by_queue["rentguy"].deliveries.exists()
    assert by_queue["sevensa"].silenced_by is None
    alert_actions.acknowledge(by_queue["sevensa"].alert, "token:ops", t0)
    assert lifecycle.tick(t0 + MINUTE) == []  # recorded once, not on every evaluation
    assert lifecycle.tick(t0 + 30 * MINUTE) == []  # silenced alerts do not escalate either
    settle()
    assert {r.json()["queue"] for r in hooks.to("/json")} == {"sevensa"}
    sent = lifecycle.tick(t0 + 61 * MINUTE)
    assert [(n.event, n.alert.queue) for n in sent] == [("firing", "rentguy")]
    audit = AuditEvent.objects.get(action="alert.silence")
    assert audit.target == "rentguy" and audit.after["reason"] == "upstream maintenance"


def test_a_silence_can_be_expired_early_and_that_is_audited(hooks):
    t0 = timezone.now()
    silence = alert_actions.create_silence("", t0 + timedelta(hours=1), "deploy", "cli:ops", t0)
    assert alert_actions.expire_silence(silence, "cli:ops", t0 + MINUTE)
    assert not alert_actions.expire_silence(silence, "cli:ops", t0 + 2 * MINUTE)
    put_jobs("rentguy", Status.PENDING, 2)
    assert lifecycle.tick(t0 + 2 * MINUTE)[0].silenced_by is None
    assert AuditEvent.objects.filter(action="alert.silence.expire").count() == 1


@pytest.mark.parametrize(
    ("ends_in", "reason", "field"),
    [(timedelta(minutes=-5), "deploy", "ends_at"), (timedelta(hours=1), "   ", "reason")],
)
def test_a_silence_that_makes_no_sense_is_refused_on_its_field(hooks, ends_in, reason, field):
    with pytest.raises(ValidationError) as refused:
        alert_actions.create_silence("rentguy", timezone.now() + ends_in, reason, "cli:ops")
    assert field in refused.value.message_dict
    assert not AuditEvent.objects.filter(action="alert.silence").exists()


def test_redis_unreachable_while_the_queue_runs_over_it_is_critical_for_all_queues(
    hooks, managed_env, closed_port, monkeypatch
):
    put_jobs("rentguy", Status.PENDING, 1)
    put_jobs("sevensa", Status.DEAD, 2)
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{closed_port}/0")  # the environment wins
    managed_env.set("QUEUE_REDIS_ENABLED", "true")
    lifecycle.tick()
    broker = Alert.objects.get(kind=Kind.BROKER_UNREACHABLE)
    assert (broker.queue, broker.severity) == ("", Severity.CRITICAL)
    generic = next(b for b in arrived(hooks, "/json", 2) if b["kind"] == "broker_unreachable")
    assert generic["queue"] == "all queues"
    assert generic["message"] == "queue broker (Redis) unreachable"
    assert generic["backlog_description"] == "1 job waiting, 0 in flight"
    assert "redis-cli" in generic["runbook"]
    managed_env.set("QUEUE_REDIS_ENABLED", "false")  # the runbook's switch: the condition clears
    lifecycle.tick()
    assert Alert.objects.get(kind=Kind.BROKER_UNREACHABLE).clear_since is not None

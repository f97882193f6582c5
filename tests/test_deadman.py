"""The dead-man's switch: HEARTBEAT_URL pinged while the reconciler and the alert evaluation run,
<url>/fail naming what is wrong when they do not, nothing when it is empty. A local receiver
stands in for healthchecks.io; time is moved by passing now."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from alerting import deadman, sender, signals
from alerting import lifecycle as alerting
from alerting import tasks as alert_tasks
from alerting.evaluator import Evaluator
from integrations import heartbeat
from integrations import tasks as queue_tasks
from mrdj import pulses
from mrdj.celery import app
from mrdj.declarations import variable
from mrdj.models import Process
from tests.processes import wait_until
from tests.receivers import Receiver

pytestmark = pytest.mark.django_db(transaction=True)
MINUTE = timedelta(minutes=1)
PING = "/ping/5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278"


@pytest.fixture
def monitor(managed_env):
    """healthchecks.io on 127.0.0.1; in-process mode unless a test switches to Celery."""
    with Receiver() as receiver:
        managed_env.update({"HEARTBEAT_URL": receiver.url + PING, "ALERT_HTTP_READ_TIMEOUT_MS": "2000"})
        yield receiver
        sender.shutdown()


def all_ran(at) -> None:
    pulses.record(pulses.EVALUATION, at)
    pulses.record(pulses.RECONCILER, at)
    heartbeat.record("in-process")


def test_the_ping_url_is_a_secret_and_the_interval_drives_beat():
    assert variable("HEARTBEAT_URL").secret
    entry = settings.CELERY_BEAT_SCHEDULE["alerting-deadman"]
    assert entry["task"] == "alerting.deadman_ping" in app.tasks
    assert entry["schedule"] == 60 == entry["options"]["expires"]  # HEARTBEAT_INTERVAL_MS, in seconds


def test_nothing_is_sent_while_heartbeat_url_is_empty(managed_env):
    with Receiver() as receiver:
        all_ran(timezone.now())
        assert deadman.ping() is None
        assert alert_tasks.deadman_ping() is None
        assert deadman.ping_if_due() is False
        sender.shutdown()
        assert receiver.received == []


def test_a_healthy_mrdj_pings_the_url_with_what_it_checked(monitor):
    all_ran(timezone.now())
    assert alert_tasks.deadman_ping() is True  # beat's task
    [request] = monitor.wait_for(1)
    assert request.method == "POST" and request.path == PING
    assert request.headers["Content-Type"] == "text/plain; charset=utf-8"
    body = request.body.decode()
    assert "alert evaluation: last ran 0 s ago" in body and "in-process worker: last ran 0 s ago" in body


def test_a_stale_evaluation_sends_the_failure_ping_naming_it(monitor):
    t0 = timezone.now()
    all_ran(t0)
    later = t0 + 10 * MINUTE
    # The worker is fine.
    Process.objects.create(name="web-1:42", role="web", consumes="in-process", seen_at=later)
    sent = deadman.ping(later)
    assert sent.report.healthy is False and sent.status == 200
    [request] = monitor.wait_for(1)
    assert request.method == "POST" and request.path == PING + "/fail"
    assert request.body.decode() == (
        "alert evaluation: last ran 10 min ago, over HEARTBEAT_STALE_MS (2 min): alerts cannot fire; "
        "look for errors in the workers' and web processes' logs\n"
    )


def test_over_redis_the_reconciler_run_by_beat_is_what_counts(monitor, managed_env):
    managed_env.set("QUEUE_REDIS_ENABLED", "true")
    t0 = timezone.now()
    queue_tasks.reconcile()  # beat's reconcile task records its run
    ran = pulses.last(pulses.RECONCILER)
    assert ran >= t0
    pulses.record(pulses.EVALUATION, ran + 5 * MINUTE)
    assert deadman.ping(ran + 5 * MINUTE).report.problems == (
        "reconciler: last ran 5 min ago, over HEARTBEAT_STALE_MS (2 min): jobs are not handed to "
        "workers; are `celery -A mrdj beat` and a worker running?",
    )
    [request] = monitor.wait_for(1)
    assert request.path == PING + "/fail" and "reconciler: last ran 5 min ago" in request.body.decode()


def test_a_fresh_process_waits_for_a_first_run_before_it_calls_it_missing(monitor, monkeypatch):
    now = timezone.now()
    monkeypatch.setattr(deadman, "_started_at", now - MINUTE)
    assert deadman.ping(now).report.healthy  # nothing recorded yet, up for less than the limit
    assert monitor.wait_for(1)[0].path == PING
    assert "alert evaluation: no run recorded yet" in monitor.received[0].body.decode()
    sent = deadman.ping(now + 2 * MINUTE)
    assert sent.report.problems[0].startswith("alert evaluation: no run recorded: alerts cannot fire")
    assert monitor.wait_for(2)[1].path == PING + "/fail"


def test_an_evaluation_records_its_run(hooks, monkeypatch):
    monkeypatch.setattr(pulses, "_written", {})
    assert pulses.last(pulses.EVALUATION) is None
    alerting.tick()
    assert pulses.last(pulses.EVALUATION) is not None


def test_the_fail_form_keeps_a_query_string():
    assert deadman.fail_url("https://hc-ping.com/abc/") == "https://hc-ping.com/abc/fail"
    assert (
        deadman.fail_url("https://hc-ping.com/key/slug?create=1")
        == "https://hc-ping.com/key/slug/fail?create=1"
    )


def test_a_monitor_that_does_not_answer_is_logged_without_its_url(managed_env, closed_port, caplog):
    managed_env.set("HEARTBEAT_URL", f"http://127.0.0.1:{closed_port}{PING}")
    all_ran(timezone.now())
    with caplog.at_level(logging.WARNING, logger="alerting.deadman"):
        sent = deadman.ping()
    assert sent.status is None and sent.error == "could not connect"
    assert "HEARTBEAT_URL did not answer: could not connect" in caplog.text
    assert PING not in caplog.text and str(closed_port) not in caplog.text


def test_in_process_the_evaluator_loop_pings_once_per_interval(monitor, managed_env, monkeypatch):
    managed_env.update({"ALERT_EVALUATE_INTERVAL_MS": "100", "ALERT_EVALUATE_MIN_INTERVAL_MS": "10"})
    monkeypatch.setattr(deadman, "_next_ping", 0.0)
    all_ran(timezone.now())
    ticks = []

    def count(sender, **kwargs):
        ticks.append(1)

    signals.evaluated.connect(count, dispatch_uid="test-deadman-ticks")
    loop = Evaluator()
    loop.start()
    try:
        monitor.wait_for(1)
        wait_until(lambda: len(ticks) >= 5, message="the evaluator loop did not tick")
    finally:
        loop.stop()
        signals.evaluated.disconnect(dispatch_uid="test-deadman-ticks")
    sender.shutdown()
    assert [request.path for request in monitor.received] == [PING]  # HEARTBEAT_INTERVAL_MS is 60 s


@pytest.mark.services
def test_beat_pings_through_a_real_worker_while_the_reconciler_runs(celery_workers, managed_env, monitor):
    managed_env.update({"QUEUE_REDIS_ENABLED": "true", "HEARTBEAT_INTERVAL_MS": "1000"})
    celery_workers(beat=True)  # the schedule is read at start: a ping a second

    def reconciled() -> bool:
        return any("reconciler: last ran" in request.body.decode() for request in monitor.received)

    wait_until(reconciled, timeout=60, message="no ping vouching for the reconciler")
    assert {request.path for request in monitor.received} == {PING}

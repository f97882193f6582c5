"""Stall detection: due jobs that nothing takes raise a critical alert, degrade /healthz and fail
readiness, naming the likeliest cause; a queue held on purpose is not stalled."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from alerting import lifecycle as alerting
from alerting.models import Alert, Kind
from dashboard.page_data import flow_check
from integrations import engine, operations, stalls
from integrations.models import Job, UpstreamState
from integrations.queues import QUEUES
from tests.conftest import TOKENS, gunicorn, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def due_for(minutes: float) -> None:
    """Every waiting job became due this long ago (rather than waiting that long)."""
    Job.objects.update(next_attempt_at=timezone.now() - timedelta(minutes=minutes))


def stalled_alert() -> Alert | None:
    return Alert.objects.filter(kind=Kind.STALLED, state=Alert.State.FIRING).first()


def test_due_jobs_nothing_takes_are_a_stall_named_everywhere_until_tries_start(upstream, managed_env, hooks):
    for n in range(3):
        operations.enqueue(QUEUES["rentguy"], {"n": n})  # no worker runs in this test
    due_for(0.5)
    assert stalls.current_stalls() == []  # due for 30 s: not yet

    due_for(2)
    (stall,) = stalls.current_stalls()
    assert stall.queue == "rentguy"
    assert "the in-process worker starts no try" in stall.reason

    alerting.tick()
    alert = stalled_alert()
    assert (alert.queue, alert.severity) == ("rentguy", "critical")
    assert "in-process worker starts no try" in alert.payload["reason"]
    health = Client().get("/healthz")
    assert health.status_code == 200
    assert health.json()["status"] == "degraded"
    assert health.json()["degraded"][0].startswith(
        "rentguy: stalled (jobs due for over 60 s, no try started)"
    )
    assert not flow_check().ok

    # A worker comes back and takes them: the stall ends, and its alert resolves.
    stats = engine.Engine(4).run(engine.enabled(["rentguy"]), exit_when_idle=True)
    assert stats.tried == 3
    assert stalls.current_stalls() == []
    assert Client().get("/healthz").json()["status"] == "ok"
    assert flow_check().ok
    alerting.tick()
    alerting.tick(timezone.now() + timedelta(hours=1))
    alert.refresh_from_db()
    assert alert.state == Alert.State.RESOLVED


def test_a_queue_held_on_purpose_is_not_stalled(managed_env):
    managed_env.update(TOKENS)
    for n in range(2):
        operations.enqueue(QUEUES["rentguy"], {"n": n})
        operations.enqueue(QUEUES["sevensa"], {"n": n})
    due_for(10)
    UpstreamState.objects.create(queue="rentguy", circuit="open", opened_at=timezone.now())
    managed_env.set("FLAG_SEVENSA_INTEGRATION", "off")

    assert stalls.current_stalls() == []


def test_a_try_started_recently_means_the_queue_flows(managed_env):
    managed_env.update(TOKENS)
    operations.enqueue(QUEUES["rentguy"], {"n": 1})
    due_for(10)
    UpstreamState.objects.create(queue="rentguy", last_claim_at=timezone.now() - timedelta(seconds=5))

    assert stalls.current_stalls() == []


@pytest.mark.services
def test_no_celery_worker_at_all_stalls_every_queue(redis_url, managed_env):
    managed_env.update({**TOKENS, "QUEUE_REDIS_ENABLED": "true"})

    (stall,) = stalls.current_stalls()

    assert stall.queue == ""
    assert "no Celery worker seen consuming in the last 20 s" in stall.reason
    alerting.tick()
    assert stalled_alert().queue == ""
    assert Client().get("/healthz").json()["degraded"][0].startswith("all queues: stalled")


def test_a_broken_stall_setting_is_named_by_manage_py_check(managed_env):
    from django.core import checks

    managed_env.set("QUEUE_STALL_ALERT_MS", "soon")

    errors = [error.msg for error in checks.run_checks() if error.id == "mrdj.W001"]
    assert any("QUEUE_STALL_ALERT_MS='soon' is not a whole number" in error for error in errors)


@pytest.mark.services
def test_a_worker_that_stops_is_missed_at_once(celery_workers, managed_env):
    managed_env.set("QUEUE_REDIS_ENABLED", "true")
    worker = celery_workers()  # idle: no task runs, its main process beats for it
    wait_until(lambda: stalls.current_stalls() == [], message="the idle worker is seen")

    # SIGTERM takes the path of an error Celery cannot recover from: the worker's shutdown.
    worker.stop()

    (stall,) = stalls.current_stalls()
    assert stall.queue == "" and "no Celery worker seen" in stall.reason
    assert "stops (exit code 0): jobs wait in the database until a worker runs again" in worker.tail()


@pytest.mark.services
def test_the_web_process_alone_pages_when_no_worker_runs(transactional_db, redis_url, managed_env, tmp_path):
    """No worker, so no beat, and no intake: the web process's own evaluation still pages."""
    managed_env.update({**TOKENS, "QUEUE_REDIS_ENABLED": "true", "ALERT_EVALUATE_INTERVAL_MS": "200"})

    with gunicorn(managed_env, tmp_path / "web.log", REDIS_URL=redis_url):
        wait_until(stalled_alert, timeout=30, message="no stalled alert from the web process")

    assert stalled_alert().queue == ""

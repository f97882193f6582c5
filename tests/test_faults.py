"""Faults under a steady stream of intake, on real processes: gunicorn, a Celery worker with
beat, a Redis of the test's own, PostgreSQL. Whatever the fault: every accepted job reaches
the upstream, no intake request answers a 5xx other than 503, and nobody restarts anything
but the worker that was killed (as its supervisor would)."""

from __future__ import annotations

import dataclasses
import time

import pytest
from django.db import connection

from alerting.models import Alert, Kind
from tests.chaos import SteadyIntake, tally, terminate_connections, wait_delivered
from tests.conftest import TOKENS, database_url, gunicorn, python_env
from tests.processes import CeleryWorker, PrivateRedis, wait_until
from tests.receivers import Answer

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

PER_SECOND = 20
DELIVERED_WITHIN = 60  # seconds from the end of a fault until every job accepted by then arrived


@dataclasses.dataclass
class Rig:
    base_url: str
    redis: PrivateRedis
    worker: CeleryWorker
    upstream: object
    streams: list[SteadyIntake] = dataclasses.field(default_factory=list)

    def stream(self) -> SteadyIntake:
        intake = SteadyIntake(self.base_url, TOKENS["INTEGRATIONS_API_TOKEN"], PER_SECOND)
        self.streams.append(intake)
        intake.start()
        return intake

    def restart_worker(self) -> None:
        self.worker.stop()
        self.worker = CeleryWorker(self.worker.env, self.worker.log_path, concurrency=2, beat=True).start()

    def delivered(self, count: int) -> None:
        wait_until(lambda: len(self.upstream.received) >= count, 60, message=f"{count} deliveries")


@pytest.fixture
def rig(transactional_db, managed_env, upstream, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("the fault tests run on PostgreSQL (pg_terminate_backend), as in production")
    managed_env.update(
        {
            "QUEUE_REDIS_ENABLED": "true",
            "QUEUE_STALL_ALERT_MS": "2000",
            "QUEUE_LEASE_MS": "2000",
            "QUEUE_RECONCILE_INTERVAL_MS": "500",
            "ALERT_EVALUATE_INTERVAL_MS": "250",
            "ALERT_RESOLVE_QUIET_MS": "500",
        }
    )
    private = PrivateRedis(tmp_path).start()
    env = python_env(
        DJANGO_SETTINGS_MODULE="mrdj.settings",
        MANAGED_ENV_PATH=managed_env.path,
        DATABASE_URL=database_url(),
        REDIS_URL=private.url(),
    )
    worker = CeleryWorker(env, tmp_path / "worker.log", concurrency=2, beat=True)
    try:
        with gunicorn(managed_env, tmp_path / "web.log", REDIS_URL=private.url()) as base_url:
            rig = Rig(base_url, private, worker.start(), upstream)
            yield rig
            for intake in rig.streams:  # a test that failed midway left its stream running
                intake.stop()
            rig.worker.stop()
    finally:
        worker.stop()
        private.stop()


def settle(rig: Rig, intake: SteadyIntake, seconds: float) -> float:
    """Keep the stream going this long after the fault ends; when the fault ended."""
    ended, sent = time.monotonic(), intake.sent
    wait_until(
        lambda: intake.sent >= sent + seconds * PER_SECOND, seconds + 30, message="intake after the fault"
    )
    return ended


def check(rig: Rig, intake: SteadyIntake, fault_ended: float) -> None:
    results = intake.stop()
    wait_delivered(results, rig.upstream, DELIVERED_WITHIN + 30)
    figures = tally(results, rig.upstream, fault_ended)
    print(figures.line())
    assert figures.accepted > PER_SECOND, "the stream was accepted"
    assert figures.lost == 0
    assert figures.server_errors == 0, results.server_errors[:3]
    assert figures.caught_up < DELIVERED_WITHIN
    # At-least-once: a try cut by the fault may be sent again, under the same Idempotency-Key.
    assert figures.duplicates <= 2 * rig.worker.concurrency * 64


def firing() -> list[Alert]:
    return list(Alert.objects.filter(state=Alert.State.FIRING))


def test_every_database_connection_cut_mid_run(rig):
    intake = rig.stream()
    rig.delivered(20)

    cut = terminate_connections(database_url())
    connection.close()  # the test's own was cut too

    assert cut >= 3  # web, worker children, beat
    fault_ended = settle(rig, intake, 3)
    check(rig, intake, fault_ended)
    assert rig.worker.process.poll() is None, "the worker carried on by itself"


def test_redis_stopped_for_ten_seconds_and_back_empty(rig):
    intake = rig.stream()
    rig.delivered(20)

    rig.redis.stop()
    sent = intake.sent
    wait_until(
        lambda: intake.sent >= sent + 10 * PER_SECOND, 40, message="ten seconds of intake while Redis is down"
    )
    rig.redis.start()  # keeps nothing: it comes back empty
    fault_ended = settle(rig, intake, 2)

    check(rig, intake, fault_ended)
    assert rig.worker.process.poll() is None, "the worker survived the broker going away"
    assert "Unrecoverable error" not in rig.worker.tail(100_000)
    unreachable = Alert.objects.filter(kind=Kind.BROKER_UNREACHABLE).first()
    assert unreachable is not None, "the outage was noticed"
    wait_until(lambda: not firing(), 30, message="every alert resolved")


def test_redis_lost_while_a_drain_is_unacknowledged_keeps_the_worker(rig):
    """The case where kombu, restoring the unacknowledged task through the closed connection,
    stopped the worker for good (mrdj.broker)."""
    rig.upstream.default = Answer(200, delay=3)  # the drain outlives the outage: it acks after
    intake = rig.stream()
    wait_until(lambda: rig.upstream.in_flight, 30, message="a try in flight (its drain unacknowledged)")

    rig.redis.stop()
    wait_until(
        lambda: "Connection to broker lost" in rig.worker.tail(), 30, message="the worker sees Redis gone"
    )
    rig.redis.start()
    fault_ended = settle(rig, intake, 2)

    check(rig, intake, fault_ended)
    log = rig.worker.tail(100_000)
    assert rig.worker.process.poll() is None and "Unrecoverable error" not in log
    assert "broker connection already closed: a task's acknowledgement or restore is skipped" in log


def test_worker_killed_pages_within_a_minute_and_its_restart_catches_up(rig):
    intake = rig.stream()
    rig.delivered(20)
    wait_until(lambda: not firing(), 30, message="every alert resolved before the fault")

    rig.worker.kill()  # kill -9 of the worker and its pool
    killed = time.monotonic()
    (alert,) = wait_until(firing, 60, message="an alert after the kill")
    paged_after = time.monotonic() - killed
    rig.restart_worker()  # what systemd's Restart=always does
    fault_ended = time.monotonic()
    settle(rig, intake, 2)

    check(rig, intake, fault_ended)
    print(f"paged {paged_after:.1f} s after the kill: {alert.payload['reason']}")
    assert (alert.kind, alert.severity) == (Kind.STALLED, "critical")
    wait_until(lambda: not firing(), 30, message="the stalled alert resolved")

"""The delivery engine against a real local upstream: limits, Retry-After, the circuit breaker.

Time is moved by editing the queue's UpstreamState (when the next probe or the pause is
due) rather than by waiting: the engine reads the database's view of "now" against it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from integrations import engine, operations
from integrations.breaker import RATE_MARGIN
from integrations.models import Attempt, Circuit, Job, Status, UpstreamState
from integrations.queues import QUEUES
from tests.conftest import wait_until
from tests.receivers import Answer

RENTGUY = QUEUES["rentguy"]
pytestmark = pytest.mark.django_db(transaction=True)


def run_engine(threads: int = 8) -> engine.Stats:
    """One drain as the Celery task runs it: until nothing is due, or the queue is held."""
    return engine.Engine(threads).run(engine.enabled(["rentguy"]), exit_when_idle=True)


def state() -> UpstreamState:
    return UpstreamState.objects.get(queue="rentguy")


def statuses() -> dict[str, int]:
    result: dict[str, int] = {}
    for status in Job.objects.values_list("status", flat=True):
        result[status] = result.get(status, 0) + 1
    return result


def test_the_upstream_never_sees_more_than_max_in_flight(upstream, managed_env):
    managed_env.set("QUEUE_RENTGUY_MAX_IN_FLIGHT", "3")
    upstream.default = Answer(200, delay=0.05)
    for n in range(30):
        operations.enqueue(RENTGUY, {"n": n})

    stats = run_engine(threads=16)

    assert (stats.tried, stats.ended) == (30, "idle")
    assert upstream.peak_in_flight == 3
    assert statuses() == {Status.DONE: 30}


def test_tries_start_no_faster_than_the_rate(upstream, managed_env):
    managed_env.set("QUEUE_RENTGUY_RATE_PER_S", "10")
    for n in range(25):
        operations.enqueue(RENTGUY, {"n": n})

    run_engine(threads=16)

    arrivals = sorted(upstream.arrivals)
    assert len(arrivals) == 25
    most_in_a_second = max(sum(1 for t in arrivals if start <= t < start + 1.0) for start in arrivals)
    assert most_in_a_second <= 10
    assert arrivals[-1] - arrivals[0] >= 24 * RATE_MARGIN / 10 - 0.05  # and not slower than needed either


def test_a_429_with_retry_after_pauses_the_whole_queue_and_flush_lifts_it(upstream, managed_env):
    managed_env.set("QUEUE_RENTGUY_MAX_IN_FLIGHT", "1")  # one at a time: the 429 comes first
    upstream.script(Answer(429, headers=(("Retry-After", "120"),)))
    jobs = [operations.enqueue(RENTGUY, {"n": n})[0] for n in range(5)]

    stats = run_engine()

    assert stats.ended == "held" and 110 < stats.held_seconds <= 120
    assert len(upstream.received) == 1  # the others wait for the pause, untried
    assert state().paused_until > timezone.now() + timedelta(seconds=110)
    first = Job.objects.get(pk=jobs[0].pk)
    assert (first.status, first.attempts) == (Status.RETRY, 0)  # the upstream's pause costs no attempt
    assert operations.queue_figures()["queues"]["rentguy"]["paused_until"] is not None

    operations.flush(RENTGUY, actor="test")
    run_engine()

    assert statuses() == {Status.DONE: 5}
    assert state().paused_until is None


def test_the_circuit_opens_probes_once_per_interval_burns_no_attempts_and_closes(
    upstream, managed_env, closed_port
):
    managed_env.update(
        {
            "RENTGUY_API_URL": f"http://127.0.0.1:{closed_port}/down",
            "QUEUE_BREAKER_FAILURES": "3",
            "QUEUE_BREAKER_PROBE_MS": "5000",
            "QUEUE_BREAKER_PROBE_MAX_MS": "40000",
            "QUEUE_MAX_ATTEMPTS": "2",
        }
    )
    jobs = [operations.enqueue(RENTGUY, {"n": n})[0] for n in range(10)]

    stats = run_engine(threads=1)  # one at a time, so that the count of tries is exact

    assert (stats.tried, stats.ended) == (3, "held")
    opened = state()
    assert (opened.circuit, opened.failures) == (Circuit.OPEN, 3)
    assert opened.last_error == "network error (could not connect)"
    counted = list(Attempt.objects.values_list("counted", flat=True))
    assert counted == [True, True, False]  # the try that opened it counts against no job
    assert operations.queue_figures()["queues"]["rentguy"]["circuit"] == "open"

    # A long outage: a hundred probe intervals pass. Each lets exactly one try through.
    intervals = []
    for _ in range(100):
        held = state()
        intervals.append(held.probe_interval_ms)
        UpstreamState.objects.filter(pk=held.pk).update(probe_at=timezone.now() - timedelta(milliseconds=1))
        assert run_engine(threads=8).tried == 1
        assert state().circuit == Circuit.OPEN

    assert intervals[:5] == [5000, 10000, 20000, 40000, 40000]  # doubling up to the maximum
    assert Job.objects.filter(status=Status.DEAD).count() == 0
    assert max(job.attempts for job in Job.objects.all()) == 1  # under QUEUE_MAX_ATTEMPTS=2
    assert Attempt.objects.filter(counted=True).count() == 2

    # The upstream is back: the next probe closes the circuit and the backlog drains.
    managed_env.set("RENTGUY_API_URL", upstream.url + "/rentguy/leads")
    UpstreamState.objects.filter(queue="rentguy").update(probe_at=timezone.now())
    stats = run_engine(threads=8)

    assert statuses() == {Status.DONE: 10}
    assert len({r.json()["n"] for r in upstream.received}) == 10
    closed = state()
    assert (closed.circuit, closed.failures, closed.probe_at) == (Circuit.CLOSED, 0, None)
    assert {job.pk for job in jobs} == set(Job.objects.values_list("pk", flat=True))


def test_flush_probes_an_open_circuit_at_once_and_a_refusal_reopens_it(upstream, managed_env):
    managed_env.set("QUEUE_BREAKER_FAILURES", "2")
    upstream.default = Answer(503)  # no Retry-After: the upstream is down
    for n in range(4):
        operations.enqueue(RENTGUY, {"n": n})
    run_engine(threads=1)
    assert state().circuit == Circuit.OPEN
    assert len(upstream.received) == 2

    operations.flush(RENTGUY, actor="test")  # the probe is due now, not in 5 s
    assert run_engine().tried == 1
    assert (state().circuit, len(upstream.received)) == (Circuit.OPEN, 3)

    upstream.default = Answer(200)
    operations.flush(RENTGUY, actor="test")
    run_engine()
    assert statuses() == {Status.DONE: 4}
    assert state().circuit == Circuit.CLOSED


def test_a_4xx_dead_letters_at_once_and_counts_as_the_upstream_being_up(upstream, managed_env):
    managed_env.set("QUEUE_BREAKER_FAILURES", "2")
    upstream.script(Answer(500))
    first, _ = operations.enqueue(RENTGUY, {"n": 1})
    run_engine(threads=1)

    assert Job.objects.get(pk=first.pk).status == Status.DONE  # 500, then delivered
    bad, _ = operations.enqueue(RENTGUY, {"n": 2})
    upstream.script(Answer(400))
    run_engine(threads=1)

    assert Job.objects.get(pk=bad.pk).status == Status.DEAD
    assert (state().circuit, state().failures) == (Circuit.CLOSED, 0)


def test_an_open_circuit_raises_one_alert_with_the_cause_and_resolves_when_it_closes(
    upstream, managed_env, hooks
):
    from alerting import lifecycle as alerting
    from alerting.models import Alert, Kind

    managed_env.set("QUEUE_BREAKER_FAILURES", "2")
    upstream.default = Answer(502)
    for n in range(3):
        operations.enqueue(RENTGUY, {"n": n})
    run_engine(threads=1)

    alerting.tick()
    alert = Alert.objects.get(kind=Kind.CIRCUIT_OPEN, state=Alert.State.FIRING)
    assert (alert.queue, alert.severity) == ("rentguy", "critical")
    slack = wait_until(lambda: [r.json() for r in hooks.to("/slack") if "circuit" in str(r.json())])
    text = str(slack[0])
    assert "upstream down: circuit open" in text and "HTTP 502 Bad Gateway" in text
    assert "no job is lost" in text

    upstream.default = Answer(200)
    operations.flush(RENTGUY, actor="test")
    run_engine()
    alerting.tick()  # clear from now on...
    alerting.tick(timezone.now() + timedelta(hours=1))  # ...and past ALERT_RESOLVE_QUIET_MS
    alert.refresh_from_db()
    assert alert.state == Alert.State.RESOLVED


def test_the_in_process_worker_obeys_the_same_limits(inprocess_worker, upstream, managed_env):
    managed_env.set("QUEUE_RENTGUY_MAX_IN_FLIGHT", "2")
    upstream.default = Answer(200, delay=0.05)
    for n in range(12):
        operations.enqueue(RENTGUY, {"n": n})

    wait_until(lambda: statuses() == {Status.DONE: 12}, timeout=30)
    assert upstream.peak_in_flight == 2


@pytest.mark.config(QUEUE_BREAKER_FAILURES="2")
def test_the_in_process_worker_opens_the_circuit_and_dead_letters_nothing(
    inprocess_worker, managed_env, closed_port
):
    managed_env.set("RENTGUY_API_URL", f"http://127.0.0.1:{closed_port}/down")  # read at each try
    for n in range(20):
        operations.enqueue(RENTGUY, {"n": n})

    wait_until(lambda: UpstreamState.objects.filter(queue="rentguy", circuit=Circuit.OPEN).exists())
    assert Job.objects.filter(status=Status.DEAD).count() == 0
    assert Attempt.objects.filter(counted=True).count() == 1  # the failures before the one that opened it


def test_a_slow_probe_that_gets_through_drains_the_backlog_in_the_same_run(upstream, managed_env):
    managed_env.set("QUEUE_BREAKER_FAILURES", "1")
    upstream.script(Answer(503))
    for n in range(6):
        operations.enqueue(RENTGUY, {"n": n})
    run_engine(threads=1)
    assert state().circuit == Circuit.OPEN

    upstream.default = Answer(200, delay=0.3)  # slower than the engine's look between rounds
    UpstreamState.objects.filter(queue="rentguy").update(probe_at=timezone.now())
    stats = run_engine(threads=8)

    assert (stats.ended, statuses()) == ("idle", {Status.DONE: 6})


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("QUEUE_RENTGUY_RATE_PER_S", "fast", "QUEUE_RENTGUY_RATE_PER_S='fast' is not a number"),
        ("QUEUE_RENTGUY_RATE_PER_S", "inf", "QUEUE_RENTGUY_RATE_PER_S='inf' is not a number"),
        ("QUEUE_SEVENSA_MAX_IN_FLIGHT", "0", "QUEUE_SEVENSA_MAX_IN_FLIGHT='0' must be at least 1"),
        ("QUEUE_BREAKER_FAILURES", "five", "QUEUE_BREAKER_FAILURES='five' is not a whole number"),
        ("QUEUE_BREAKER_PROBE_MAX_MS", "10", "QUEUE_BREAKER_PROBE_MAX_MS='10' must be at least 100"),
        ("QUEUE_WORKER_THREADS", "-1", "QUEUE_WORKER_THREADS='-1' must be at least 1"),
    ],
)
def test_a_broken_engine_setting_is_named_by_manage_py_check(managed_env, client, name, value, message):
    from django.core import checks

    from tests.conftest import TOKENS

    managed_env.update({**TOKENS, name: value})

    errors = [e.msg for e in checks.run_checks() if e.id == "mrdj.W001"]

    assert any(message in error for error in errors), errors
    # The figures still answer: the limits of that queue read as unknown.
    response = client.get("/metrics/queues", HTTP_AUTHORIZATION=f"Bearer {TOKENS['METRICS_API_TOKEN']}")
    assert response.status_code == 200


def test_a_connection_killed_under_the_hot_path_is_replaced(upstream, managed_env, settings):
    from django.db import DatabaseError, close_old_connections

    from tests.support import kill_this_connection

    operations.enqueue(RENTGUY, {"n": 1})
    kill_this_connection()

    with pytest.raises(DatabaseError):  # Django's error, as for any query...
        operations.enqueue(RENTGUY, {"n": 2})
    close_old_connections()  # ...so that the end of the request retires the dead connection

    _, created = operations.enqueue(RENTGUY, {"n": 3})
    assert created and run_engine().tried == 2


def test_claims_racing_from_many_connections_never_exceed_max_in_flight(managed_env):
    """Four claimers on four database connections, as four worker processes would be."""
    import threading

    from django.db import connections

    from integrations import batches
    from integrations.delivery import Outcome, QueueSettings
    from mrdj.config import get_config

    managed_env.set("QUEUE_RENTGUY_MAX_IN_FLIGHT", "3")
    for n in range(60):
        operations.enqueue(RENTGUY, {"n": n})
    settings = QueueSettings.read(get_config())
    seen = []  # jobs in flight, as the database shows them right after each claim

    def claimer() -> None:
        try:
            while Job.objects.filter(status__in=[Status.PENDING, Status.RETRY]).exists():
                jobs = batches.claim(RENTGUY, 3, settings).jobs
                seen.append(Job.objects.filter(status=Status.ACTIVE).count())
                if jobs:
                    results = [
                        batches.Result(job, Outcome(True, False, 200, "", 1), timezone.now()) for job in jobs
                    ]
                    batches.finish(RENTGUY, results, settings)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claimer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert statuses() == {Status.DONE: 60}
    assert len(seen) >= 20 and max(seen) <= 3

"""One job's life against a real local upstream, driven by the in-process worker."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from integrations import operations, signals
from integrations.models import Attempt, Job, QueueCounter, Status
from integrations.queues import QUEUES
from tests.conftest import TOKENS, wait_until
from tests.receivers import Answer
from tests.support import claim

RENTGUY = QUEUES["rentguy"]


def job_status(job: Job) -> str:
    job.refresh_from_db()
    return job.status


def settled(job: Job, status: str, timeout: float = 30) -> Job:
    wait_until(lambda: job_status(job) == status, timeout, message=f"job never became {status}: {job.status}")
    return job


def counters() -> dict[tuple[str, str], int]:
    return {(c.queue, c.status): c.count for c in QueueCounter.objects.all() if c.count}


@pytest.fixture
def events():
    received = []

    def record(signal_name):
        def receiver(sender, **kwargs):
            received.append((signal_name, kwargs))

        return receiver

    handlers = {
        signals.job_dead_lettered: record("dead"),
        signals.job_recovered: record("recovered"),
        signals.backlog_changed: record("backlog"),
    }
    for signal, handler in handlers.items():
        signal.connect(handler)
    yield received
    for signal, handler in handlers.items():
        signal.disconnect(handler)


def test_a_job_is_posted_upstream_with_token_key_and_json(inprocess_worker, upstream):
    job, _ = operations.enqueue(RENTGUY, {"lead": "Bruiloft", "guests": 120}, "lead-1")

    settled(job, Status.DONE)

    (request,) = upstream.received
    assert request.path == "/rentguy/leads"
    assert request.json() == {"lead": "Bruiloft", "guests": 120}
    assert request.headers["Authorization"] == f"Bearer {TOKENS['RENTGUY_API_TOKEN']}"
    assert request.headers["Idempotency-Key"] == "lead-1"
    assert request.headers["Content-Type"] == "application/json"
    attempt = Attempt.objects.get(job=job)
    assert (attempt.number, attempt.status_code, attempt.outcome, attempt.error) == (1, 200, "done", "")
    assert counters() == {}


def test_a_failing_upstream_is_retried_then_delivered(inprocess_worker, upstream, events):
    upstream.script(Answer(503), Answer(500))
    job, _ = operations.enqueue(RENTGUY, {"n": 1})

    settled(job, Status.DONE)

    assert [a.status_code for a in Attempt.objects.filter(job=job)] == [503, 500, 200]
    assert len({r.headers["Idempotency-Key"] for r in upstream.received}) == 1
    assert (
        "recovered",
        {"signal": signals.job_recovered, "queue": "rentguy", "job_id": job.pk, "attempts": 3},
    ) in [(name, kwargs) for name, kwargs in events]


@pytest.mark.config(QUEUE_HTTP_READ_TIMEOUT_MS="200")
def test_network_errors_and_timeouts_are_retried(inprocess_worker, upstream, managed_env, closed_port):
    upstream.script(Answer(200, delay=1.0))  # answers too late: a timeout
    job, _ = operations.enqueue(RENTGUY, {"n": 1})
    settled(job, Status.DONE)

    managed_env.set("RENTGUY_API_URL", f"http://127.0.0.1:{closed_port}/down")
    down, _ = operations.enqueue(RENTGUY, {"n": 2})
    settled(down, Status.DEAD)

    assert [a.error for a in Attempt.objects.filter(job=job)] == ["timed out", ""]
    errors = {a.error for a in Attempt.objects.filter(job=down)}
    assert errors == {"network error (could not connect)"}


def test_429_waits_for_retry_after(inprocess_worker, upstream):
    upstream.script(Answer(429, headers=(("Retry-After", "120"),)))
    before = timezone.now()
    job, _ = operations.enqueue(RENTGUY, {"n": 1})

    settled(job, Status.RETRY)

    assert job.next_attempt_at >= before + timedelta(seconds=120)
    assert len(upstream.received) == 1
    # Rather than wait two minutes: the operator's flush skips the wait.
    assert operations.flush(RENTGUY, actor="test") == 1
    settled(job, Status.DONE)


@pytest.mark.parametrize("code", [400, 401, 404, 409, 422])
def test_a_4xx_answer_goes_straight_to_dead_letter(inprocess_worker, upstream, events, code):
    upstream.script(Answer(code))
    job, _ = operations.enqueue(RENTGUY, {"n": 1})

    settled(job, Status.DEAD)

    assert job.attempts == 1
    assert job.last_status_code == code
    assert counters() == {("rentguy", "dead"): 1}
    dead = [kwargs for name, kwargs in events if name == "dead"]
    assert [(d["queue"], d["job_id"], d["status_code"]) for d in dead] == [("rentguy", job.pk, code)]


def test_408_is_retried(inprocess_worker, upstream):
    upstream.script(Answer(408))
    job, _ = operations.enqueue(RENTGUY, {"n": 1})

    settled(job, Status.DONE)
    assert job.attempts == 2


def test_a_job_out_of_attempts_is_dead_lettered(inprocess_worker, upstream):
    upstream.default = Answer(502)
    job, _ = operations.enqueue(RENTGUY, {"n": 1})

    settled(job, Status.DEAD)

    assert job.attempts == 3  # QUEUE_MAX_ATTEMPTS in the upstream fixture
    assert [a.outcome for a in Attempt.objects.filter(job=job)] == ["retry", "retry", "dead"]
    assert len(upstream.received) == 3


def test_attempts_never_record_the_upstream_token(inprocess_worker, upstream):
    upstream.script(Answer(500, body=TOKENS["RENTGUY_API_TOKEN"].encode()))
    job, _ = operations.enqueue(RENTGUY, {"n": 1})
    settled(job, Status.DONE)

    stored = " ".join(f"{a.error} {a.status_code}" for a in Attempt.objects.all()) + job.last_error
    assert TOKENS["RENTGUY_API_TOKEN"] not in stored


def test_replay_returns_dead_jobs_with_attempts_reset(inprocess_worker, upstream):
    upstream.script(Answer(400), Answer(400), Answer(400))
    jobs = [operations.enqueue(RENTGUY, {"n": n})[0] for n in range(3)]
    for job in jobs:
        settled(job, Status.DEAD)

    assert operations.replay(RENTGUY, actor="test", ids=[jobs[0].pk]) == 1
    settled(jobs[0], Status.DONE)
    assert job_status(jobs[1]) == Status.DEAD

    assert operations.replay(RENTGUY, actor="test") == 2
    for job in jobs:
        settled(job, Status.DONE)
    assert [Job.objects.get(pk=j.pk).attempts for j in jobs] == [1, 1, 1]  # reset, then one try
    assert counters() == {}


def test_a_switched_off_queue_holds_its_jobs_and_resumes_when_on(inprocess_worker, upstream, managed_env):
    from mrdj.flags import set_flag

    set_flag("FLAG_RENTGUY_INTEGRATION", "off", actor="test")
    held = [operations.enqueue(RENTGUY, {"n": n})[0] for n in range(5)]
    sevensa, _ = operations.enqueue(QUEUES["sevensa"], {"n": "other queue flows"})
    settled(sevensa, Status.DONE)

    assert {job_status(job) for job in held} == {Status.PENDING}
    assert operations.queue_figures()["queues"]["rentguy"]["backlog"] == 5

    set_flag("FLAG_RENTGUY_INTEGRATION", "on", actor="test")
    for job in held:
        settled(job, Status.DONE)


@pytest.mark.config(FLAG_RENTGUY_INTEGRATION="off")  # keep the worker off it while we stage the crash
def test_a_claim_whose_worker_died_is_released_and_the_job_delivered(inprocess_worker, upstream, managed_env):
    job, _ = operations.enqueue(RENTGUY, {"n": 1})
    assert [claimed.pk for claimed in claim("rentguy")] == [job.pk]
    # A worker took it and died: move its claim back past the lease instead of waiting.
    Job.objects.filter(pk=job.pk).update(claimed_at=timezone.now() - timedelta(minutes=5))
    managed_env.set("FLAG_RENTGUY_INTEGRATION", "on")

    settled(job, Status.DONE)

    outcomes = [(a.number, a.outcome, a.error) for a in Attempt.objects.filter(job=job)]
    assert outcomes == [(1, "retry", "worker lost: claim expired"), (2, "done", "")]


def test_a_stale_worker_cannot_finish_a_job_it_lost(transactional_db, upstream):
    from integrations import batches, engine
    from integrations.delivery import Outcome, QueueSettings
    from mrdj.config import get_config

    job, _ = operations.enqueue(RENTGUY, {"n": 1})
    (stale,) = claim("rentguy")
    Job.objects.filter(pk=job.pk).update(claimed_at=timezone.now() - timedelta(minutes=5))
    assert operations.release_expired_claims() == 1
    Job.objects.filter(pk=job.pk).update(next_attempt_at=timezone.now())
    stats = engine.Engine(threads=2).run(engine.enabled(["rentguy"]), exit_when_idle=True)
    assert (stats.tried, job_status(job)) == (1, Status.DONE)

    settings = QueueSettings.read(get_config())
    late, _ = batches.finish(
        RENTGUY, [batches.Result(stale, Outcome(False, True, 500, "HTTP 500", 5), timezone.now())], settings
    )

    assert late.rows == []
    assert job_status(job) == Status.DONE
    assert list(Attempt.objects.filter(job=job).values_list("outcome", flat=True)) == [
        "retry",
        "stale",
        "done",
    ]

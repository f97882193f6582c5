"""Claim a batch of due jobs in one transaction, and record a batch of answers in one.

The queue's UpstreamState row is locked by both, which is what makes the circuit
breaker, the pause and the limits hold across every worker on every machine. The
database stays the truth: a worker that dies holding a batch leaves claims that
the reconciler releases once their lease has run out.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import itemgetter

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from integrations import breaker, postgres
from integrations.delivery import Outcome, QueueSettings, retry_delay_ms
from integrations.models import WAITING, Attempt, Job, QueueCounter, Status, UpstreamState
from integrations.queues import QUEUES, Queue
from mrdj.api import UNSTORABLE
from mrdj.config import get_config

CLAIM_NOTED_EVERY = timedelta(seconds=1)  # last_claim_at is written at most this often


@dataclass(frozen=True)
class ClaimedJob:
    pk: int
    queue: str
    payload: dict
    idempotency_key: str
    attempts: int  # this try's number
    created_at: datetime
    claim_token: str
    trace_parent: str = ""  # the trace that accepted the job, when telemetry was on
    probe: bool = False
    delay_seconds: float = 0.0  # its rate slot: send no earlier
    spacing_seconds: float = 0.0  # the least time between two tries of the queue (0: no rate limit)


@dataclass(frozen=True)
class Claim:
    jobs: list[ClaimedJob]
    wait_seconds: float | None = None  # nothing taken because of a limit: look again after this
    next_due_seconds: float | None = None  # nothing was due: the soonest waiting job is due in this


@dataclass(frozen=True)
class Result:
    job: ClaimedJob
    outcome: Outcome
    started_at: datetime


@dataclass
class Finished:
    """What a batch of answers did, for the metrics and signals sent after commit."""

    queue: str
    rows: list[tuple[Result, str, bool]] = field(default_factory=list)  # result, new status, counted
    circuit_event: str | None = None


def locked_state(queue: str) -> UpstreamState:
    """The queue's row, locked until the transaction ends (created on first use), with
    active: its jobs in flight (stable while the lock is held: every claim takes it)."""
    for _ in range(2):
        if connection.vendor == "postgresql":
            state = postgres.lock_state(queue)
        else:
            state = UpstreamState.objects.select_for_update().filter(queue=queue).first()
            if state is not None:
                state.active = Job.objects.filter(queue=queue, status=Status.ACTIVE).count()
        if state is not None:
            return state
        UpstreamState.objects.bulk_create([UpstreamState(queue=queue)], ignore_conflicts=True)
    raise UpstreamState.DoesNotExist(queue)


def claim(queue: Queue, want: int, settings: QueueSettings, now: datetime | None = None) -> Claim:
    """Take up to want due jobs of the queue, as many as its breaker and limits admit now."""
    with transaction.atomic():
        return _claim_locked(locked_state(queue.name), queue, want, settings, now or timezone.now())


def _claim_locked(
    state: UpstreamState, queue: Queue, want: int, settings: QueueSettings, now: datetime
) -> Claim:
    """The claim, inside the caller's transaction, with the queue's state row locked."""
    limits = queue.limits()
    gate = breaker.admit(state, limits, state.active, want, now)
    if not gate.allowed:
        return Claim([], gate.wait_seconds)
    token = uuid.uuid4().hex
    if connection.vendor == "postgresql":
        rows = postgres.claim_due(queue.name, gate.allowed, now, token)
    else:
        rows = _claim_due_portable(queue.name, gate.allowed, now, token)
    if not rows:
        soonest = next_due(queue.name)
        return Claim([], next_due_seconds=None if soonest is None else (soonest - now).total_seconds())
    delays = breaker.take(state, gate, len(rows), limits, now, settings)
    noted = state.last_claim_at is None or now - state.last_claim_at >= CLAIM_NOTED_EVERY
    if noted:
        state.last_claim_at = now
    if gate.probe or limits.rate_per_s or noted:
        state.save(update_fields=["circuit", "probe_at", "rate_next_at", "last_claim_at"])
    spacing = breaker.spacing_seconds(limits.rate_per_s) if limits.rate_per_s else 0.0
    return Claim(
        [
            ClaimedJob(
                pk, queue.name, payload, key, attempts, created_at, token, trace, gate.probe, delay, spacing
            )
            for (pk, payload, key, attempts, created_at, trace), delay in zip(rows, delays, strict=True)
        ]
    )


def _claim_due_portable(queue: str, limit: int, now: datetime, token: str) -> list[tuple]:
    """The oldest-due waiting jobs, each status read from the (queue, status, due) index."""
    due = Job.objects.filter(queue=queue, next_attempt_at__lte=now)
    candidates = [
        row
        for status in WAITING
        for row in due.filter(status=status)
        .order_by("next_attempt_at")
        .values_list("pk", "next_attempt_at")[:limit]
    ]
    picked = [pk for pk, _ in sorted(candidates, key=itemgetter(1))[:limit]]
    taken = list(
        Job.objects.select_for_update(skip_locked=True)
        .filter(pk__in=picked, status__in=WAITING)
        .values_list("pk", "status")
    )
    if not taken:
        return []
    ids = [pk for pk, _ in taken]
    Job.objects.filter(pk__in=ids).update(
        status=Status.ACTIVE, claimed_at=now, claim_token=token, attempts=F("attempts") + 1
    )
    QueueCounter.objects.adjust(queue, {status: -n for status, n in Counter(s for _, s in taken).items()})
    rows = Job.objects.filter(pk__in=ids).order_by("next_attempt_at")
    return list(
        rows.values_list("pk", "payload", "idempotency_key", "attempts", "created_at", "trace_parent")
    )


def finish(
    queue: Queue, results: list[Result], settings: QueueSettings, refill: int = 0
) -> tuple[Finished, Claim]:
    """Record a batch of answers of one queue (jobs, attempts, counters and breaker together)
    and, in the same transaction, claim up to refill jobs for the slots they freed."""
    now = timezone.now()
    finished = Finished(queue.name)
    claim = Claim([])
    with transaction.atomic():
        state = locked_state(queue.name)
        before = _breaker_fields(state)
        values = []
        for result in results:
            counted, event = breaker.record(state, result.outcome, now, settings, result.job.probe)
            finished.circuit_event = event or finished.circuit_event
            row = _next_state(result, counted, state, now, settings)
            values.append(row)
        if connection.vendor == "postgresql":
            updated = postgres.finish_batch(queue.name, values)
        else:
            updated = _finish_portable(queue.name, values)
        if _breaker_fields(state) != before:  # all delivered while all is well: nothing to write
            state.save(update_fields=BREAKER_FIELDS)
        if refill:
            state.active -= len(updated)  # what this batch finished is in flight no more
            claim = _claim_locked(state, queue, refill, settings, now)
    for result, row in zip(results, values, strict=True):
        if result.job.pk in updated:
            finished.rows.append((result, row["status"], row["counted"]))
    return finished, claim


def _breaker_fields(state: UpstreamState) -> tuple:
    return tuple(getattr(state, name) for name in BREAKER_FIELDS)


BREAKER_FIELDS = (
    "circuit",
    "failures",
    "opened_at",
    "probe_at",
    "probe_interval_ms",
    "paused_until",
    "last_error",
    "last_error_at",
)


def _next_state(
    result: Result, counted: bool, state: UpstreamState, now: datetime, settings: QueueSettings
) -> dict:
    job, outcome = result.job, result.outcome
    attempts = job.attempts if counted else job.attempts - 1
    if outcome.delivered:
        status, next_at = Status.DONE, now
    elif not counted:  # the circuit or the pause holds it; it is due when they let go
        status, next_at = Status.RETRY, max(now, state.paused_until or now)
    elif outcome.retryable and attempts < settings.max_attempts:
        delay = retry_delay_ms(attempts, settings, outcome.retry_after_ms)
        status, next_at = Status.RETRY, now + timedelta(milliseconds=delay)
    else:
        status, next_at = Status.DEAD, now
    return {
        "id": job.pk,
        "token": job.claim_token,
        "status": status,
        "next_attempt_at": next_at,
        "finished_at": now if status in (Status.DONE, Status.DEAD) else None,
        "status_code": outcome.status_code,
        "error": outcome.error[:500],
        "answer": UNSTORABLE.sub("\ufffd", outcome.answer),
        "attempts": attempts,
        "number": job.attempts,
        "started_at": result.started_at,
        "duration_ms": outcome.duration_ms,
        "counted": counted,
    }


def _finish_portable(queue: str, values: list[dict]) -> set[int]:
    updated, attempts, counts = set(), [], Counter()
    for row in values:
        done = Job.objects.filter(pk=row["id"], status=Status.ACTIVE, claim_token=row["token"]).update(
            status=row["status"],
            next_attempt_at=row["next_attempt_at"],
            finished_at=row["finished_at"],
            claimed_at=None,
            claim_token="",
            last_status_code=row["status_code"],
            last_error=row["error"],
            attempts=row["attempts"],
        )
        if done:
            updated.add(row["id"])
            if row["status"] != Status.DONE:
                counts[row["status"]] += 1
        attempts.append(
            Attempt(
                job_id=row["id"],
                number=row["number"],
                started_at=row["started_at"],
                duration_ms=row["duration_ms"],
                status_code=row["status_code"],
                error=row["error"],
                answer=row["answer"],
                outcome=row["status"] if done else Attempt.STALE,
                counted=row["counted"],
            )
        )
    Attempt.objects.bulk_create(attempts)
    QueueCounter.objects.adjust(queue, dict(counts))
    return updated


def next_due(queue: str) -> datetime | None:
    """When the soonest waiting job of the queue is due (one index lookup per status)."""
    waiting = (
        Job.objects.filter(queue=queue).order_by("next_attempt_at").values_list("next_attempt_at", flat=True)
    )
    return min(filter(None, (waiting.filter(status=status).first() for status in WAITING)), default=None)


def has_due(queue: str) -> bool:
    now = timezone.now()
    due = Job.objects.filter(queue=queue, next_attempt_at__lte=now)
    return any(due.filter(status=status).exists() for status in WAITING)


def release_expired_claims(limit: int = 500) -> list[tuple[int, str, str, int, datetime]]:
    """Jobs claimed by a worker that died go back to retry (or dead-letter when out of tries).
    Returns (job id, queue, new status, attempts, accepted at) of each released job."""
    now = timezone.now()
    settings = QueueSettings.read(get_config())
    cutoff = now - timedelta(milliseconds=settings.lease_ms)
    released = []
    for queue in QUEUES:
        expired = Job.objects.filter(queue=queue, status=Status.ACTIVE, claimed_at__lt=cutoff)
        rows = expired.values_list("pk", "attempts", "claim_token", "created_at")[:limit]
        for pk, attempts, token, created_at in rows:
            status = Status.DEAD if attempts >= settings.max_attempts else Status.RETRY
            with transaction.atomic():
                updated = Job.objects.filter(pk=pk, status=Status.ACTIVE, claim_token=token).update(
                    status=status,
                    next_attempt_at=now,
                    claimed_at=None,
                    claim_token="",
                    finished_at=now if status == Status.DEAD else None,
                    last_error=LOST,
                )
                if not updated:
                    continue
                Attempt.objects.create(
                    job_id=pk, number=attempts, started_at=now, duration_ms=0, error=LOST, outcome=status
                )
                QueueCounter.objects.adjust(queue, {status: 1})
            released.append((pk, queue, status, attempts, created_at))
    return released


LOST = "worker lost: claim expired"

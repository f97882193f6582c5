"""Everything that moves a job: intake, one try, flush, replay, the reconciler, the figures.

Views, admin actions, management commands, Celery tasks and the in-process
worker all call these functions. Every status change goes through here, in the
same transaction as the queue counters it affects.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Count
from django.utils import timezone

from integrations import dispatch, postgres, signals
from integrations.delivery import Outcome, QueueSettings, deliver, retry_delay_ms
from integrations.models import WAITING, Attempt, Job, QueueCounter, Status
from integrations.queues import QUEUES, Queue
from mrdj import audit, metrics
from mrdj.config import ConfigError, Source, get_config
from mrdj.flags import describe, is_enabled


def lease_ms() -> int:
    """A claim older than this belongs to a worker that died."""
    return get_config().get_int("QUEUE_LEASE_MS", 60_000, minimum=1000)


def redispatch_after_ms() -> int:
    """A job handed to the broker this long ago and still waiting was lost there."""
    return get_config().get_int("QUEUE_REDISPATCH_AFTER_MS", 30_000, minimum=1000)


def enabled_queues() -> list[str]:
    return [name for name, queue in QUEUES.items() if is_enabled(queue.flag)]


# --- Intake


def enqueue(queue: Queue, payload: dict, idempotency_key: str | None = None) -> tuple[Job, bool]:
    """Store a job and hand it on; the same key again returns the stored job."""
    now = timezone.now()
    key = idempotency_key or uuid.uuid4().hex
    via_broker = dispatch.uses_broker()
    dispatched_at = now if via_broker else None
    if connection.vendor == "postgresql":
        pk = postgres.enqueue(queue.name, payload, key, now, dispatched_at)
    else:
        pk = _enqueue_portable(queue.name, payload, key, now, dispatched_at)
    if pk is None:
        return Job.objects.get(queue=queue.name, idempotency_key=key), False
    # Inside a caller's transaction, a worker could not see the row yet: hand on after commit.
    transaction.on_commit(lambda: dispatch.hand_over([(pk, queue.name)], via_broker))
    transaction.on_commit(lambda: signals.backlog_changed.send(sender=Job, queue=queue.name))
    job = Job(
        pk=pk,
        queue=queue.name,
        payload=payload,
        idempotency_key=key,
        status=Status.PENDING,
        created_at=now,
        next_attempt_at=now,
        dispatched_at=dispatched_at,
    )
    return job, True


def _enqueue_portable(
    queue: str, payload: dict, key: str, now: datetime, dispatched_at: datetime | None
) -> int | None:
    try:
        with transaction.atomic():
            job = Job.objects.create(
                queue=queue,
                payload=payload,
                idempotency_key=key,
                created_at=now,
                next_attempt_at=now,
                dispatched_at=dispatched_at,
            )
            QueueCounter.objects.adjust(queue, {Status.PENDING: 1})
    except IntegrityError:
        return None
    return job.pk


# --- One try


def process_job(job_id: int, queue: str | None = None) -> str:
    """Claim the job, try it once, record the answer. Returns what happened, for logs and tests."""
    if queue is None:
        queue = Job.objects.filter(pk=job_id).values_list("queue", flat=True).first()
        if queue is None:
            return "missing"
    if not is_enabled(QUEUES[queue].flag):
        # Held, not dropped: the reconciler hands it on again once the flag is on.
        Job.objects.filter(pk=job_id, status__in=WAITING).update(dispatched_at=None)
        return "held"
    claimed = claim(job_id)
    if claimed is None:
        return "not claimable"
    config = get_config()
    settings = QueueSettings.read(config)
    started = timezone.now()
    outcome = deliver(QUEUES[claimed.queue], claimed.payload, claimed.idempotency_key, config, settings)
    return finish(claimed, outcome, settings, started)


def claim(job_id: int) -> Job | None:
    """Take the job if it is due and nobody has it; one winner however many workers try."""
    now, token = timezone.now(), uuid.uuid4().hex
    if connection.vendor == "postgresql":
        return postgres.claim(job_id, now, token)
    with transaction.atomic():
        job = (
            Job.objects.select_for_update(skip_locked=True)
            .filter(pk=job_id, status__in=WAITING, next_attempt_at__lte=now)
            .first()
        )
        if job is None:
            return None
        previous = job.status
        job.status = Status.ACTIVE
        job.claimed_at = now
        job.claim_token = token
        job.attempts += 1
        job.dispatched_at = None
        job.save(update_fields=["status", "claimed_at", "claim_token", "attempts", "dispatched_at"])
        QueueCounter.objects.adjust(job.queue, {previous: -1})
    return job


def finish(job: Job, outcome: Outcome, settings: QueueSettings, started: datetime) -> str:
    now = timezone.now()
    if outcome.delivered:
        status, next_attempt_at = Status.DONE, job.next_attempt_at
    elif outcome.retryable and job.attempts < settings.max_attempts:
        delay = retry_delay_ms(job.attempts, settings, outcome.retry_after_ms)
        status, next_attempt_at = Status.RETRY, now + timedelta(milliseconds=delay)
    else:
        status, next_attempt_at = Status.DEAD, job.next_attempt_at
    values = {
        "status": status,
        "next_attempt_at": next_attempt_at,
        "finished_at": now if status in (Status.DONE, Status.DEAD) else None,
        "last_status_code": outcome.status_code,
        "last_error": outcome.error[:500],
    }
    if connection.vendor == "postgresql":
        updated = postgres.finish(job, values, started, outcome.duration_ms)
    else:
        updated = _finish_portable(job, values, started, outcome.duration_ms)
    if not updated:
        return "stale"  # the lease ran out and someone else owns the job now
    outcome_name = {Status.DONE: "delivered", Status.RETRY: "retry", Status.DEAD: "dead"}[status]
    metrics.delivery_tried(job.queue, outcome_name)
    if status != Status.RETRY:
        metrics.job_finished(job.queue, outcome_name, (now - job.created_at).total_seconds())
    _announce(job.queue, status, job.pk, job.attempts, outcome)
    return status


def _finish_portable(job: Job, values: dict, started: datetime, duration_ms: int) -> bool:
    with transaction.atomic():
        updated = Job.objects.filter(pk=job.pk, status=Status.ACTIVE, claim_token=job.claim_token).update(
            claimed_at=None, claim_token="", **values
        )
        Attempt.objects.create(
            job_id=job.pk,
            number=job.attempts,
            started_at=started,
            duration_ms=duration_ms,
            status_code=values["last_status_code"],
            error=values["last_error"],
            outcome=values["status"] if updated else "stale",
        )
        if updated and values["status"] != Status.DONE:
            QueueCounter.objects.adjust(job.queue, {values["status"]: 1})
    return bool(updated)


def _announce(queue: str, status: str, job_id: int, attempts: int, outcome: Outcome) -> None:
    signals.backlog_changed.send(sender=Job, queue=queue)
    if status == Status.DEAD:
        signals.job_dead_lettered.send(
            sender=Job,
            queue=queue,
            job_id=job_id,
            attempts=attempts,
            status_code=outcome.status_code,
            error=outcome.error,
        )
    elif status == Status.DONE and attempts > 1:
        signals.job_recovered.send(sender=Job, queue=queue, job_id=job_id, attempts=attempts)


# --- Operator actions


def flush(queue: Queue, actor: Any, ids: Iterable[int] | None = None) -> int:
    """Retry now every job of the queue waiting to retry (or those of ids), skipping the backoff."""
    now = timezone.now()
    jobs = Job.objects.filter(queue=queue.name, status=Status.RETRY, next_attempt_at__gt=now)
    if ids is not None:
        jobs = jobs.filter(pk__in=list(ids))
    moved = jobs.update(next_attempt_at=now, dispatched_at=None)
    audit.record("queue.flush", actor=actor, target=queue.name, after={"jobs": moved})
    if moved:
        dispatch.kick()
    return moved


def replay(queue: Queue, actor: Any, ids: Iterable[int] | None = None) -> int:
    """Return dead-letter jobs (all of the queue, or those of ids) to pending with attempts reset."""
    now = timezone.now()
    ids = None if ids is None else list(ids)
    with transaction.atomic():
        jobs = Job.objects.filter(queue=queue.name, status=Status.DEAD)
        if ids is not None:
            jobs = jobs.filter(pk__in=ids)
        moved = jobs.update(
            status=Status.PENDING,
            attempts=0,
            next_attempt_at=now,
            dispatched_at=None,
            finished_at=None,
            last_error="",
            last_status_code=None,
        )
        QueueCounter.objects.adjust(queue.name, {Status.DEAD: -moved, Status.PENDING: moved})
        audit.record(
            "deadletter.replay",
            actor=actor,
            target=queue.name,
            before={"ids": sorted(ids)[:100]} if ids is not None else None,
            after={"jobs": moved},
        )
    if moved:
        signals.backlog_changed.send(sender=Job, queue=queue.name)
        dispatch.kick()
    return moved


def switch_mode(use_broker: bool, actor: Any) -> None:
    """Write QUEUE_REDIS_ENABLED to managed.env (the playbook's Redis-incident switch), audited."""
    config = get_config()
    _, source = config.lookup("QUEUE_REDIS_ENABLED")
    if source is Source.ENVIRONMENT:
        raise ConfigError(
            "QUEUE_REDIS_ENABLED is set in the service's environment; unset it there to switch it here"
        )
    before = dispatch.mode()
    config.store.set("QUEUE_REDIS_ENABLED", "true" if use_broker else "false")
    audit.record(
        "queue.mode", actor=actor, target="QUEUE_REDIS_ENABLED", before=before, after=dispatch.mode()
    )
    dispatch.kick()


# --- The reconciler


def release_expired_claims(limit: int = 500) -> int:
    """Jobs claimed by a worker that died go back to retry (or dead-letter when out of tries)."""
    now = timezone.now()
    cutoff = now - timedelta(milliseconds=lease_ms())
    max_attempts = QueueSettings.read(get_config()).max_attempts
    expired = list(
        Job.objects.filter(status=Status.ACTIVE, claimed_at__lt=cutoff).values_list(
            "pk", "queue", "attempts", "claim_token", "created_at"
        )[:limit]
    )
    released = 0
    for pk, queue, attempts, token, created_at in expired:
        status = Status.DEAD if attempts >= max_attempts else Status.RETRY
        with transaction.atomic():
            updated = Job.objects.filter(pk=pk, status=Status.ACTIVE, claim_token=token).update(
                status=status,
                next_attempt_at=now,
                claimed_at=None,
                claim_token="",
                finished_at=now if status == Status.DEAD else None,
                last_error="worker lost: claim expired",
            )
            if not updated:
                continue
            Attempt.objects.create(
                job_id=pk,
                number=attempts,
                started_at=now,
                duration_ms=0,
                error="worker lost: claim expired",
                outcome=status,
            )
            QueueCounter.objects.adjust(queue, {status: 1})
        released += 1
        metrics.delivery_tried(queue, "dead" if status == Status.DEAD else "retry")
        if status == Status.DEAD:
            metrics.job_finished(queue, "dead", (now - created_at).total_seconds())
        _announce(queue, status, pk, attempts, Outcome(False, False, None, "worker lost", 0))
    return released


def due_jobs(queues: list[str], limit: int, carried: str = "any") -> list[tuple[int, str]]:
    """Due waiting jobs, oldest due first. carried: "any", "none" (never handed to the
    broker, or given back), or "lost" (handed on longer than QUEUE_REDISPATCH_AFTER_MS ago)."""
    now = timezone.now()
    jobs = Job.objects.filter(status__in=WAITING, next_attempt_at__lte=now, queue__in=queues)
    if carried == "none":
        jobs = jobs.filter(dispatched_at__isnull=True)
    elif carried == "lost":
        jobs = jobs.filter(dispatched_at__lt=now - timedelta(milliseconds=redispatch_after_ms()))
    return list(jobs.order_by("next_attempt_at").values_list("pk", "queue")[:limit])


def reconcile(batch: int = 1000, budget_seconds: float = 10.0) -> dict[str, int]:
    """Release lost claims and hand on due jobs that nothing carries. Runs on beat, and on a kick."""
    released = release_expired_claims()
    handed = 0
    if not dispatch.uses_broker():
        dispatch.kick()  # the in-process worker finds due jobs itself
        return {"released": released, "dispatched": 0}
    deadline = time.monotonic() + budget_seconds
    queues = enabled_queues()
    # Jobs handed on long ago count as lost only once the broker's queue has drained:
    # while it still holds messages, they are most likely just waiting their turn.
    kinds = ["none", "lost"] if dispatch.broker_backlog() == 0 else ["none"]
    for carried in kinds:
        while queues and time.monotonic() < deadline:
            jobs = due_jobs(queues, batch, carried)
            sent = dispatch.hand_over(jobs, via_broker=True, mark=True) if jobs else 0
            handed += sent
            if sent < batch:
                break  # all handed on, or the broker refused: the next run goes on
    return {"released": released, "dispatched": handed}


# --- Figures


def _age_ms(since: datetime | None, now: datetime) -> int:
    return max(int((now - since).total_seconds() * 1000), 0) if since else 0


def _oldest(queue: str, status: str) -> datetime | None:
    """Served by the (queue, status, created_at) index: one lookup, whatever the table size."""
    return (
        Job.objects.filter(queue=queue, status=status)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )


def queue_figures() -> dict[str, Any]:
    """What /metrics/queues shows: counters and index lookups, never a scan of the job table."""
    now = timezone.now()
    counts = QueueCounter.objects.counts()
    active = dict(
        Job.objects.filter(status=Status.ACTIVE)
        .values_list("queue")
        .annotate(n=Count("pk"))
        .values_list("queue", "n")
    )
    queues = {}
    for name, queue in QUEUES.items():
        count = counts.get(name, {})
        oldest_pending, oldest_retry = _oldest(name, Status.PENDING), _oldest(name, Status.RETRY)
        oldest_waiting = min((t for t in (oldest_pending, oldest_retry) if t), default=None)
        queues[name] = {
            "backlog": count.get(Status.PENDING, 0) + count.get(Status.RETRY, 0),
            "active": active.get(name, 0),
            "retry_age_ms": _age_ms(oldest_retry, now),
            "dead_letter": count.get(Status.DEAD, 0),
            "oldest_pending_age_ms": _age_ms(oldest_waiting, now),
            "enabled": describe(queue.flag).enabled,
        }
    return {
        "generated_at": now.isoformat().replace("+00:00", "Z"),
        "queue_mode": dispatch.mode(),
        "queues": queues,
    }


def recount() -> dict[str, dict[str, int]]:
    """Rebuild the counters from the job table: a full scan, for repair, not for metrics.

    The counter rows are locked first, so a transition running meanwhile either is
    counted here or applies its change after this commits, never both or neither.
    """
    counted = (WAITING[0], WAITING[1], Status.DEAD)
    with transaction.atomic():
        list(QueueCounter.objects.select_for_update())
        actual: dict[tuple[str, str], int] = defaultdict(int)
        rows = Job.objects.filter(status__in=counted).values_list("queue", "status")
        for queue, status, n in rows.annotate(n=Count("pk")).values_list("queue", "status", "n"):
            actual[queue, status] = n
        for queue in QUEUES:
            for status in counted:
                updated = QueueCounter.objects.filter(queue=queue, status=status).update(
                    count=actual[queue, status]
                )
                if not updated:
                    QueueCounter.objects.create(queue=queue, status=status, count=actual[queue, status])
    return {queue: {status: actual[queue, status] for status in counted} for queue in QUEUES}

"""What moves jobs from outside the engine: intake, flush, replay, the reconciler, the figures.

Views, admin actions, management commands and Celery tasks call these functions;
the tries themselves are the engine's (integrations.engine, integrations.batches).
Every status change happens in the same transaction as the queue counters it affects.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Count
from django.utils import timezone

from integrations import batches, breaker, handoff, postgres, signals
from integrations.models import WAITING, Circuit, Job, QueueCounter, Status, UpstreamState
from integrations.queues import QUEUES, Queue
from mrdj import audit, metrics, telemetry
from mrdj.config import ConfigError, Source, get_config
from mrdj.flags import describe, is_enabled
from mrdj.health import check_redis


def enabled_queues() -> list[str]:
    return [name for name, queue in QUEUES.items() if is_enabled(queue.flag)]


# --- Intake


def enqueue(queue: Queue, payload: dict, idempotency_key: str | None = None) -> tuple[Job, bool]:
    """Store a job and hand it on; the same key again returns the stored job."""
    (result,) = enqueue_many(queue, [(payload, idempotency_key)])
    return result


def enqueue_many(queue: Queue, items: list[tuple[dict, str | None]]) -> list[tuple[Job, bool]]:
    """Store jobs (payload, key or None) in one statement, each idempotent on its own key.

    Returns (job, created) in the order given; created is False for a key already stored
    (or given twice), and the job is then the stored one.
    """
    now = timezone.now()
    keyed = [(payload, key or uuid.uuid4().hex) for payload, key in items]
    firsts = {}  # each key once, with its first payload, in the order given
    for payload, key in keyed:
        firsts.setdefault(key, payload)
    unique = [(payload, key) for key, payload in firsts.items()]
    trace = telemetry.traceparent()
    if connection.vendor == "postgresql":
        created = postgres.enqueue(queue.name, unique, now, trace)
    else:
        created = _enqueue_portable(queue.name, unique, now, trace)
    if created:
        # Inside a caller's transaction, a worker could not see the rows yet: hand on after commit.
        transaction.on_commit(lambda: handoff.wake(queue.name))
        transaction.on_commit(lambda: signals.backlog_changed.send(sender=Job, queue=queue.name))
    jobs = {
        key: Job(
            pk=pk,
            queue=queue.name,
            payload=firsts[key],
            idempotency_key=key,
            status=Status.PENDING,
            created_at=now,
            next_attempt_at=now,
        )
        for key, pk in created.items()
    }
    taken = [key for key in firsts if key not in created]
    if taken:
        jobs.update(
            (job.idempotency_key, job)
            for job in Job.objects.filter(queue=queue.name, idempotency_key__in=taken)
        )
    results, seen = [], set()
    for _, key in keyed:
        results.append((jobs[key], key in created and key not in seen))
        seen.add(key)
    return results


def _enqueue_portable(queue: str, items: list[tuple[dict, str]], now: datetime, trace: str) -> dict[str, int]:
    with transaction.atomic():
        taken = set(
            Job.objects.filter(queue=queue, idempotency_key__in=[key for _, key in items]).values_list(
                "idempotency_key", flat=True
            )
        )
        fresh = [
            Job(
                queue=queue,
                payload=payload,
                idempotency_key=key,
                created_at=now,
                next_attempt_at=now,
                trace_parent=trace,
            )
            for payload, key in items
            if key not in taken
        ]
        if not fresh:
            return {}
        try:
            with transaction.atomic():
                Job.objects.bulk_create(fresh)
        except IntegrityError:  # a concurrent intake took a key meanwhile: one at a time
            fresh = [job for job in fresh if _created_alone(job)]
        QueueCounter.objects.adjust(queue, {Status.PENDING: len(fresh)})
    return {job.idempotency_key: job.pk for job in fresh}


def _created_alone(job: Job) -> bool:
    try:
        with transaction.atomic():
            job.save(force_insert=True)
    except IntegrityError:
        return False
    return True


# --- Operator actions


def flush(queue: Queue, actor: Any, ids: Iterable[int] | None = None) -> int:
    """Retry now every job of the queue waiting to retry (or those of ids), skipping the backoff.

    The playbook's step after a fix: it also lifts a pause the upstream asked for and, while
    the circuit is open, sends a probe at once; if the upstream still refuses, they come back.
    """
    now = timezone.now()
    with transaction.atomic():
        state = batches.locked_state(queue.name)
        held = bool(state.paused_until and state.paused_until > now) or state.circuit != Circuit.CLOSED
        breaker.lift(state, now)
        state.save()
        jobs = Job.objects.filter(queue=queue.name, status=Status.RETRY, next_attempt_at__gt=now)
        if ids is not None:
            jobs = jobs.filter(pk__in=list(ids))
        moved = jobs.update(next_attempt_at=now)
        lifted = {"lifted": "the pause or open circuit: probing now"} if held else {}
        audit.record("queue.flush", actor=actor, target=queue.name, after={"jobs": moved, **lifted})
    transaction.on_commit(lambda: handoff.wake(queue.name, force=True))
    return moved


def replay(queue: Queue, actor: Any, ids: Iterable[int] | None = None) -> int:
    """Return dead-letter jobs (all of the queue, or those of ids) to pending with attempts reset.

    One statement however many jobs; the drainers then send them at the upstream's limits.
    """
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
        handoff.wake(queue.name)
    return moved


def switch_mode(use_broker: bool, actor: Any, force: bool = False) -> None:
    """Write QUEUE_REDIS_ENABLED to managed.env (the playbook's Redis-incident switch), audited.
    To Celery only while Redis answers, unless forced: jobs would otherwise wait for it."""
    config = get_config()
    _, source = config.lookup("QUEUE_REDIS_ENABLED")
    if source is Source.ENVIRONMENT:
        raise ConfigError(
            "QUEUE_REDIS_ENABLED is set in the service's environment; unset it there to switch it here"
        )
    if use_broker and not force and not (redis := check_redis()).ok:
        raise ConfigError(
            f"Redis does not answer ({redis.detail}): over Redis, jobs would wait until it does. "
            "Fix Redis first, or switch anyway (queues mode celery --force)"
        )
    before = handoff.mode()
    config.store.set("QUEUE_REDIS_ENABLED", "true" if use_broker else "false")
    audit.record("queue.mode", actor=actor, target="QUEUE_REDIS_ENABLED", before=before, after=handoff.mode())
    handoff.wake_all(enabled_queues())


# --- The reconciler


def release_expired_claims() -> int:
    """Claims of workers that died go back to their queue (or dead-letter), announced."""
    released = batches.release_expired_claims()
    now = timezone.now()
    for pk, queue, status, attempts, created_at in released:
        metrics.delivery_tried(queue, "dead" if status == Status.DEAD else "retry")
        signals.backlog_changed.send(sender=Job, queue=queue)
        if status == Status.DEAD:
            metrics.job_finished(queue, "dead", (now - created_at).total_seconds())
            signals.job_dead_lettered.send(
                sender=Job, queue=queue, job_id=pk, attempts=attempts, status_code=None, error=batches.LOST
            )
    return len(released)


def reconcile() -> dict[str, int]:
    """Release lost claims and make sure every queue with due jobs has a drainer.
    Runs on beat, and in the in-process worker."""
    released = release_expired_claims()
    woken = 0
    for name in enabled_queues():
        if batches.has_due(name):
            woken += handoff.wake(name)
    return {"released": released, "woken": woken}


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
    states = {state.queue: state for state in UpstreamState.objects.all()}
    queues = {}
    for name, queue in QUEUES.items():
        count = counts.get(name, {})
        state = states.get(name) or UpstreamState(queue=name)
        oldest_pending, oldest_retry = _oldest(name, Status.PENDING), _oldest(name, Status.RETRY)
        oldest_waiting = min((t for t in (oldest_pending, oldest_retry) if t), default=None)
        queues[name] = {
            "backlog": count.get(Status.PENDING, 0) + count.get(Status.RETRY, 0),
            "active": active.get(name, 0),
            "retry_age_ms": _age_ms(oldest_retry, now),
            "dead_letter": count.get(Status.DEAD, 0),
            "oldest_pending_age_ms": _age_ms(oldest_waiting, now),
            "enabled": describe(queue.flag).enabled,
            **_upstream_figures(queue, state, now),
        }
    return {
        "generated_at": _iso(now),
        "queue_mode": handoff.mode(),
        "queues": queues,
    }


def _upstream_figures(queue: Queue, state: UpstreamState, now: datetime) -> dict[str, Any]:
    try:
        limits = queue.limits()
        in_flight_limit, rate = limits.max_in_flight, limits.rate_per_s
    except ConfigError:
        in_flight_limit = rate = None  # named by manage.py check; the figures still answer
    paused = state.paused_until if state.paused_until and state.paused_until > now else None
    return {
        "circuit": state.circuit,
        "circuit_since": _iso(state.opened_at),
        "paused_until": _iso(paused),
        "in_flight_limit": in_flight_limit,
        "rate_limit_per_s": rate,
        "last_error": state.last_error,
        "last_error_at": _iso(state.last_error_at),
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


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

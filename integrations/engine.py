"""The delivery engine: many tries in flight per process, claimed and recorded in batches.

One loop thread talks to the database (one connection per process, whatever the
number of tries in flight); a thread pool makes the HTTP calls. As tries finish,
their answers are recorded together and the freed slots refilled with one claim.
The Celery drain task and the in-process worker both run this loop, so the two
modes share the limits, the breaker and the bookkeeping.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from django.db import close_old_connections
from django.utils import timezone

from integrations import batches, handoff, heartbeat, signals
from integrations.delivery import Outcome, QueueSettings, deliver
from integrations.models import Job, Status
from integrations.queues import QUEUES, Queue
from mrdj import metrics, telemetry
from mrdj.config import get_config
from mrdj.flags import is_enabled

log = logging.getLogger(__name__)
IDLE_POLL_SECONDS = 1.0  # a queue with nothing due is looked at again after this
IN_FLIGHT_POLL_SECONDS = 0.1  # ...or this, while tries are in flight anyway
SOON_SECONDS = 1.0  # a job due within this is waited for; one due later is the reconciler's
ERROR_PAUSE_SECONDS = 1.0  # after a database error, before the next claim


def threads_per_queue() -> int:
    return get_config().value("QUEUE_WORKER_THREADS")


@dataclass
class Stats:
    tried: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # Why the run ended: "idle" (nothing due), "held" (paused, open circuit or limits; wait
    # this long), "deadline" (work remained), or "stopped".
    ended: str = ""
    held_seconds: float = 0.0


@dataclass
class _Round:
    """What one run() keeps between its rounds."""

    in_flight: dict[Future, batches.ClaimedJob] = field(default_factory=dict)
    per_queue: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    not_before: dict[str, float] = field(default_factory=dict)  # monotonic: claim no sooner
    idle: set[str] = field(default_factory=set)  # their last claim found nothing due
    stats: Stats = field(default_factory=Stats)


class Engine:
    """One per process; run() may be called again and again (one caller at a time)."""

    def __init__(self, threads: int | None = None):
        self.threads = threads or threads_per_queue()
        self._pool = ThreadPoolExecutor(self.threads * len(QUEUES), thread_name_prefix="mrdj-delivery")

    def run(
        self,
        queues: Callable[[], list[Queue]],
        *,
        until: float | None = None,
        stop: threading.Event | None = None,
        wake: threading.Event | None = None,
        exit_when_idle: bool = False,
        hold_limit_seconds: float = 1.0,
        on_round: Callable[[], None] | None = None,
    ) -> Stats:
        """Deliver due jobs of queues() until stop is set or the monotonic deadline until passes.

        exit_when_idle: return once nothing is due and nothing is in flight, or when the
        queues are held for longer than hold_limit_seconds (a Celery drain does; the
        in-process worker instead waits on wake).
        """
        run = _Round()
        while True:
            if on_round:
                on_round()
            if wake is not None and wake.is_set():
                wake.clear()
                run.not_before.clear()  # something changed: look at every queue now
            stopping = (stop is not None and stop.is_set()) or (
                until is not None and time.monotonic() >= until
            )
            settings = QueueSettings.read(get_config())
            current = [] if stopping else queues()
            for queue in current:
                want = self._room(run, queue.name)
                if want:
                    self._take(run, queue, self._claim(run, queue, want, settings), settings)
            if run.in_flight:
                self._record(run, current, settings)
                continue
            if stopping:
                run.stats.ended = "stopped" if stop is not None and stop.is_set() else "deadline"
                return run.stats
            names = {queue.name for queue in current}
            now = time.monotonic()
            next_look = min(
                (run.not_before.get(name, now) for name in names), default=now + IDLE_POLL_SECONDS
            )
            rest = max(next_look - now, 0.001)
            if exit_when_idle:
                if names <= run.idle:
                    run.stats.ended = "idle"
                    return run.stats
                if rest > hold_limit_seconds:
                    run.stats.ended, run.stats.held_seconds = "held", rest
                    return run.stats
            if wake is not None:
                wake.wait(min(rest, IDLE_POLL_SECONDS))
            else:
                time.sleep(rest)

    def _room(self, run: _Round, name: str, batched: bool = True) -> int:
        """How many jobs to claim for the queue now: its free threads, when due. batched: wait
        for a few free threads first (a claim of its own costs a transaction; one that rides
        on recording results costs next to nothing)."""
        free = self.threads - run.per_queue[name]
        if free <= 0 or time.monotonic() < run.not_before.get(name, 0.0):
            return 0
        if batched and run.per_queue[name] and free < max(self.threads // 8, 1):
            return 0
        return free

    def _claim(self, run: _Round, queue: Queue, want: int, settings) -> batches.Claim | None:
        try:
            return batches.claim(queue, want, settings)
        except Exception:
            log.exception("claiming %s jobs failed; trying again shortly", queue.name)
            close_old_connections()
            run.not_before[queue.name] = time.monotonic() + ERROR_PAUSE_SECONDS
            return None

    def _take(self, run: _Round, queue: Queue, claim: batches.Claim | None, settings) -> None:
        """Start the claimed tries, or note when to look at the queue again."""
        if claim is None:
            return
        name, now = queue.name, time.monotonic()
        if not claim.jobs:
            soon = claim.next_due_seconds
            if claim.wait_seconds is None and soon is not None and soon <= SOON_SECONDS:
                run.idle.discard(name)  # a retry is due in a moment: wait for it here
                run.not_before[name] = now + max(soon, 0.001)
            elif claim.wait_seconds is None:
                run.idle.add(name)
                run.not_before[name] = now + (IN_FLIGHT_POLL_SECONDS if run.in_flight else IDLE_POLL_SECONDS)
            else:
                run.idle.discard(name)
                run.not_before[name] = now + claim.wait_seconds
            return
        run.idle.discard(name)
        run.not_before.pop(name, None)
        config = get_config()
        for job in claim.jobs:
            run.in_flight[self._pool.submit(_try, queue, job, config, settings)] = job
        run.per_queue[name] += len(claim.jobs)

    def _record(self, run: _Round, current: list[Queue], settings) -> None:
        """Wait for some tries to end; record them, one batch per queue, and refill the slots
        they freed in the same transaction."""
        soonest = min(run.not_before.values(), default=time.monotonic() + IN_FLIGHT_POLL_SECONDS)
        timeout = min(max(soonest - time.monotonic(), 0.005), IN_FLIGHT_POLL_SECONDS)
        done, _ = wait(run.in_flight, timeout=timeout, return_when=FIRST_COMPLETED)
        if not done:
            return
        by_queue: dict[str, list[batches.Result]] = defaultdict(list)
        for future in done:
            job = run.in_flight.pop(future)
            run.per_queue[job.queue] -= 1
            by_queue[job.queue].append(future.result())
        enabled = {queue.name: queue for queue in current}
        for name, results in by_queue.items():
            queue = QUEUES[name]
            refill = self._room(run, name, batched=False) if name in enabled else 0
            try:
                finished, claim = batches.finish(queue, results, settings, refill)
            except Exception:
                # The claims stay; the reconciler releases them when their lease runs out.
                log.exception("recording %d %s tries failed", len(results), name)
                close_old_connections()
                continue
            announce(finished)
            if finished.circuit_event == "closed":
                run.not_before.pop(name, None)  # the probe got through: drain now, not at the next probe
            if refill:
                self._take(run, queue, claim, settings)
            run.stats.tried += len(results)
            for _, status, counted in finished.rows:
                run.stats.outcomes[_outcome_name(status, counted)] += 1


class Pacer:
    """Keeps this process's tries of one queue at least the rate's spacing apart, so that
    threads waking late from their slot's sleep cannot bunch up behind one another."""

    def __init__(self):
        self._lock = threading.Lock()
        self._last = 0.0

    def wait(self, spacing: float) -> None:
        with self._lock:
            gap = self._last + spacing - time.monotonic()
            if gap > 0:
                time.sleep(gap)
            self._last = time.monotonic()


_pacers = {name: Pacer() for name in QUEUES}


def _try(queue: Queue, job: batches.ClaimedJob, config, settings: QueueSettings) -> batches.Result:
    """One try, on a pool thread: wait for its rate slot, POST, classify. No database here."""
    if job.delay_seconds > 0:
        time.sleep(job.delay_seconds)
    if job.spacing_seconds:
        _pacers[queue.name].wait(job.spacing_seconds)
    started = timezone.now()
    try:
        with telemetry.delivery_span(queue.name, job.pk, job.attempts, job.trace_parent):
            outcome = deliver(queue, job.payload, job.idempotency_key, config, settings)
    except Exception as error:  # a bug must not take the batch down with it
        log.exception("try of job %s failed unexpectedly", job.pk)
        outcome = Outcome(False, True, None, f"internal error ({type(error).__name__})", 0)
    return batches.Result(job, outcome, started)


def _outcome_name(status: str, counted: bool) -> str:
    if not counted:
        return "held"
    return {Status.DONE: "delivered", Status.RETRY: "retry", Status.DEAD: "dead"}[status]


def announce(finished: batches.Finished) -> None:
    """Metrics and signals for a recorded batch, after its commit."""
    now = timezone.now()
    for result, status, counted in finished.rows:
        metrics.delivery_tried(finished.queue, _outcome_name(status, counted))
        if status in (Status.DONE, Status.DEAD):
            outcome = "delivered" if status == Status.DONE else "dead"
            metrics.job_finished(finished.queue, outcome, (now - result.job.created_at).total_seconds())
    signals.backlog_changed.send(sender=Job, queue=finished.queue)
    for result, status, _ in finished.rows:
        job, outcome = result.job, result.outcome
        if status == Status.DEAD:
            signals.job_dead_lettered.send(
                sender=Job,
                queue=finished.queue,
                job_id=job.pk,
                attempts=job.attempts,
                status_code=outcome.status_code,
                error=outcome.error,
            )
        elif status == Status.DONE and job.attempts > 1:
            signals.job_recovered.send(sender=Job, queue=finished.queue, job_id=job.pk, attempts=job.attempts)
    if finished.circuit_event:
        signals.circuit_changed.send(sender=Job, queue=finished.queue, event=finished.circuit_event)


_engine: Engine | None = None
_engine_lock = threading.Lock()


def engine() -> Engine:
    """This process's engine, made on first use (after a fork, in the child)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = Engine()
        return _engine


def enabled(names: list[str] | None = None) -> Callable[[], list[Queue]]:
    """The queues among names (all by default) whose flag is on, read at each round."""
    chosen = [QUEUES[name] for name in (names or QUEUES)]
    return lambda: [queue for queue in chosen if is_enabled(queue.flag)]


DRAIN_BUDGET_SECONDS = 30.0  # then the drain hands on to a fresh task, so a busy queue never hogs a slot


def drain_queue(name: str, budget_seconds: float = DRAIN_BUDGET_SECONDS) -> dict:
    """The Celery drain task: deliver the queue's due jobs until none is due (or the budget ends)."""

    def on_round() -> None:
        refresh()
        heartbeat.beat("celery")

    queues = enabled([name])
    with handoff.draining(name) as refresh:
        stats = engine().run(
            queues, until=time.monotonic() + budget_seconds, exit_when_idle=True, on_round=on_round
        )
    if stats.ended == "held":
        handoff.hold(name, stats.held_seconds)
    elif queues() and (stats.ended == "deadline" or batches.has_due(name)):
        handoff.wake(name)  # more to do, or a job that came in as this drain was ending
    return {"queue": name, "tried": stats.tried, "ended": stats.ended, **stats.outcomes}

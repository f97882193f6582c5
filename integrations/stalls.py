"""Stall detection: due jobs that nothing takes, whatever the reason.

It looks at the effect rather than at every cause one could think of (a dead
database connection in a worker, a worker that exited, a broker that forgot): a
queue with a job due for longer than QUEUE_STALL_ALERT_MS, and no try started in
that time, is stalled. A queue held on purpose (flag off, upstream paused, circuit
open) is not. Over Redis, no live worker at all is a stall of every queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from integrations import batches, engine, handoff, heartbeat
from integrations.models import Circuit, UpstreamState
from mrdj.config import get_config
from mrdj.health import check_redis


@dataclass(frozen=True)
class Stall:
    queue: str  # "" for every queue
    reason: str
    due_since: datetime | None = None


def stall_ms() -> int:
    return get_config().value("QUEUE_STALL_ALERT_MS")


def current_stalls(now: datetime | None = None) -> list[Stall]:
    now = now or timezone.now()
    limit = timedelta(milliseconds=stall_ms())
    stalls = []
    if handoff.uses_broker() and not _celery_alive():
        stalls.append(Stall("", _no_worker()))
    states = {state.queue: state for state in UpstreamState.objects.all()}
    for queue in engine.enabled()():
        state = states.get(queue.name) or UpstreamState(queue=queue.name)
        held = state.circuit != Circuit.CLOSED or (state.paused_until and state.paused_until > now)
        due_since = batches.next_due(queue.name)
        if held or due_since is None or now - due_since < limit:
            continue
        if state.last_claim_at and now - state.last_claim_at < limit:
            continue
        stalls.append(Stall(queue.name, _why(), due_since))
    return stalls


def _celery_alive() -> bool:
    return bool(heartbeat.alive("celery"))


def _no_worker() -> str:
    within = int(heartbeat.ALIVE_WITHIN.total_seconds())
    return f"no Celery worker seen consuming in the last {within} s: start `celery -A mrdj worker`"


def _why() -> str:
    """The likeliest cause, in the words an on-call engineer acts on."""
    if not handoff.uses_broker():
        return "the in-process worker starts no try: look for errors in the web process's log"
    if not check_redis().ok:
        return "the broker (Redis) is unreachable"
    if not _celery_alive():
        return _no_worker()
    return "Celery workers are alive but start no try: look for database errors in the worker's log"


def describe(now: datetime | None = None) -> list[str]:
    """One line per stall, for /healthz and readiness."""
    limit = f"{stall_ms() // 1000} s"
    return [
        f"{stall.queue or 'all queues'}: stalled (jobs due for over {limit}, no try started): {stall.reason}"
        for stall in current_stalls(now)
    ]

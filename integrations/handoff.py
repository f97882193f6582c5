"""Where work goes: Celery over Redis, or the in-process worker (QUEUE_REDIS_ENABLED).

Over Redis, the broker carries no job: it carries a drain task per queue, which
claims due jobs from the database in batches until nothing is due. At most one
drain per queue is queued or running at a time (a Redis key with an expiry marks
it), so intake publishes a message only when no drainer is on the queue, and a
replay of 100,000 jobs puts one message on the broker, not 100,000. Handing on is
best effort by design: the jobs are rows, and beat's reconciler wakes a drainer for
any queue with due jobs and none on it (after a lost message, a killed worker or a
Redis that restarted empty, within QUEUE_RECONCILE_INTERVAL_MS plus the key's expiry).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator

import redis
from django.conf import settings

from mrdj import telemetry
from mrdj.celery import app
from mrdj.config import get_config

log = logging.getLogger(__name__)
BROKER_BACKOFF_SECONDS = 5.0
DRAINER_TTL_MS = 5_000  # a drainer that died no longer holds the queue after this
REFRESH_EVERY_SECONDS = 1.0
DRAIN_TASK = "integrations.drain"

# Set to have the in-process worker (integrations.fallback) look for due jobs now.
inprocess_wake = threading.Event()


def uses_broker() -> bool:
    return get_config().value("QUEUE_REDIS_ENABLED")


def mode() -> str:
    return "celery" if uses_broker() else "in-process"


def _key(queue: str) -> str:
    return f"mrdj:drainer:{queue}"


class BrokerLink:
    """This process's Redis client (a forked child makes its own) and whether the broker failed
    a moment ago, so that callers do not each wait for a broker that is down."""

    def __init__(self):
        self._client: tuple[int, redis.Redis] | None = None
        self._down_until = 0.0

    def client(self) -> redis.Redis:
        if self._client is None or self._client[0] != os.getpid():
            client = redis.Redis.from_url(
                settings.CELERY_BROKER_URL,
                socket_connect_timeout=2,
                socket_timeout=5,
                health_check_interval=30,
            )
            self._client = (os.getpid(), client)
        return self._client[1]

    @property
    def down(self) -> bool:
        return time.monotonic() < self._down_until

    def failed(self, what: str, error: Exception) -> None:
        self._down_until = time.monotonic() + BROKER_BACKOFF_SECONDS
        log.warning("broker refused %s (%s); the reconciler will hand it on", what, type(error).__name__)

    def reset(self) -> None:
        """Forget a failure: the broker is tried again at once."""
        self._down_until = 0.0


broker_link = BrokerLink()


def wake(queue: str, force: bool = False) -> bool:
    """Have a drainer deliver the queue's due jobs now. force: even if one is marked as on it
    (an operator's flush while the queue is held). False when the broker refused."""
    if not uses_broker():
        inprocess_wake.set()
        return True
    if broker_link.down:
        return False  # the broker failed a moment ago: don't make every caller wait for it
    try:
        with telemetry.unrecorded():  # a span per Redis command would cost more than it tells
            client = broker_link.client()
            if force:
                client.delete(_key(queue))
            if client.set(_key(queue), "queued", nx=True, px=DRAINER_TTL_MS):
                try:
                    app.send_task(DRAIN_TASK, (queue,), retry=False)
                except Exception:
                    with contextlib.suppress(redis.RedisError):
                        client.delete(_key(queue))  # no drain is coming: don't hold the queue
                    raise
    except Exception as error:
        # Redis down: the SET failed, so there is no mark to undo, and no second wait for it.
        broker_link.failed(f"the wake-up of {queue}", error)
        return False
    return True


def wake_all(queues: list[str], force: bool = False) -> None:
    for queue in queues:
        wake(queue, force)


@contextlib.contextmanager
def draining(queue: str) -> Iterator[Callable[[], None]]:
    """Mark the queue as having a drainer while the block runs; yields a refresh to call often."""
    last = [0.0]

    def refresh() -> None:
        if time.monotonic() - last[0] >= REFRESH_EVERY_SECONDS:
            last[0] = time.monotonic()
            with contextlib.suppress(redis.RedisError):
                broker_link.client().set(_key(queue), "running", px=DRAINER_TTL_MS)

    refresh()
    try:
        yield refresh
    finally:
        with contextlib.suppress(redis.RedisError):
            broker_link.client().delete(_key(queue))


def hold(queue: str, seconds: float) -> None:
    """The queue is paused or its circuit open: no drainer until then (the reconciler or a
    flush wakes one), so that intake during an outage does not publish a drain per job."""
    ttl = int(min(max(seconds, 0.5), DRAINER_TTL_MS / 1000) * 1000)
    with contextlib.suppress(redis.RedisError):
        broker_link.client().set(_key(queue), "held", px=ttl, nx=True)

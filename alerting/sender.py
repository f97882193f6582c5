"""Deliveries leave from a small thread pool in the process that created them.

Each target gets its own thread, so a webhook that hangs holds up only itself (up
to its read timeout). The row is written before anything is sent and claimed with
one conditional UPDATE, so a delivery whose process died is picked up again by
the periodic tick: nothing is lost, and nothing is sent twice at the same time.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta

from django.db import connections
from django.db.models import Q
from django.utils import timezone

from alerting import targets
from alerting.content import NotificationContent
from alerting.models import Delivery, Notification
from alerting.transports import TRANSPORTS, TransportError
from mrdj import http, metrics
from mrdj.config import get_config

log = logging.getLogger(__name__)
Status = Delivery.Status

_pool: ThreadPoolExecutor | None = None
_pool_pid = 0
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    """One pool per process, made after a fork (Celery's prefork children each get their own)."""
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            threads = get_config().value("ALERT_SENDER_THREADS")
            _pool = ThreadPoolExecutor(threads, thread_name_prefix="mrdj-alert-send")
            _pool_pid = os.getpid()
        return _pool


def shutdown() -> None:
    """Wait for what is being sent (for tests and orderly exits)."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True)


def in_background(function: Callable, *args) -> Future:
    def run():
        try:
            return function(*args)
        except Exception:
            log.exception("alert background work failed; the periodic tick tries again")
        finally:
            connections.close_all()  # this thread's connections only

    return _executor().submit(run)


def submit(delivery_ids: Iterable[int]) -> list[Future]:
    return [in_background(send, pk) for pk in delivery_ids]


def resend_due() -> list[Future]:
    """The deliveries whose next try is due (failed before, or abandoned by a dead process)."""
    return submit(due())


def timeouts() -> tuple[float, float]:
    """(connect, read) in seconds, for every call alerting and incidents make."""
    config = get_config()
    return (
        config.value("ALERT_HTTP_CONNECT_TIMEOUT_MS") / 1000,
        config.value("ALERT_HTTP_READ_TIMEOUT_MS") / 1000,
    )


def backoff_ms(attempts: int) -> int:
    config = get_config()
    return http.backoff_ms(
        attempts, config.value("ALERT_DELIVERY_RETRY_BASE_MS"), config.value("ALERT_DELIVERY_RETRY_MAX_MS")
    )


def _claimable(now: datetime) -> Q:
    waiting = Q(status__in=(Status.PENDING, Status.RETRY), next_attempt_at__lte=now)
    abandoned = Q(status=Status.SENDING, claimed_until__lt=now)  # its process died mid-send
    return waiting | abandoned


def _claim(delivery_id: int, now: datetime) -> Delivery | None:
    connect, read = timeouts()
    lease = now + timedelta(seconds=connect + read + 30)
    claimed = Delivery.objects.filter(_claimable(now), pk=delivery_id).update(
        status=Status.SENDING, claimed_until=lease
    )
    if not claimed:
        return None
    return Delivery.objects.select_related("notification").get(pk=delivery_id)


def send(delivery_id: int, now: datetime | None = None) -> Delivery | None:
    """Try one delivery once, if it is due and nobody else is sending it; record the result."""
    now = now or timezone.now()
    delivery = _claim(delivery_id, now)
    if delivery is None:
        return None
    delivery.attempts += 1
    target = targets.find(delivery.target_hash)
    if target is None:
        return _record_failure(delivery, now, "target is no longer configured", permanent=True)
    transport = TRANSPORTS[target.service](*timeouts(), secret=target.secret)
    try:
        body = NotificationContent.from_json(delivery.notification.content)
        sent = transport.send(target.url, body, delivery.channel)
    except TransportError as error:
        return _record_failure(delivery, now, str(error), error.permanent, error.status, error.body)
    delivery.status = Status.SENT
    delivery.response_code, delivery.response_body = sent.status, sent.body[:300]
    delivery.duration_ms, delivery.error = sent.duration_ms, ""
    delivery.sent_at = timezone.now()
    delivery.claimed_until = None
    delivery.save()
    metrics.alert_sent(delivery.notification.severity, target.service)
    return delivery


def _record_failure(
    delivery: Delivery,
    now: datetime,
    error: str,
    permanent: bool,
    status: int | None = None,
    body: str = "",
) -> Delivery:
    max_attempts = get_config().value("ALERT_DELIVERY_MAX_ATTEMPTS")
    give_up = permanent or delivery.attempts >= max_attempts
    delivery.status = Status.FAILED if give_up else Status.RETRY
    delivery.next_attempt_at = now + timedelta(milliseconds=backoff_ms(delivery.attempts))
    delivery.error, delivery.response_code, delivery.response_body = error[:300], status, body[:300]
    delivery.claimed_until = None
    delivery.save()
    metrics.alert_send_failed(delivery.service, give_up)
    log.warning(
        "alert delivery %s to %s failed (try %s%s): %s",
        delivery.pk,
        delivery.target,
        delivery.attempts,
        ", giving up" if give_up else "",
        error,
    )
    return delivery


def due(now: datetime | None = None, limit: int = 200) -> list[int]:
    now = now or timezone.now()
    # A smoke test is sent by whoever asked for it, and never again later by a tick.
    waiting = Delivery.objects.filter(_claimable(now)).exclude(notification__event=Notification.Event.SMOKE)
    return list(waiting.order_by("next_attempt_at").values_list("pk", flat=True)[:limit])

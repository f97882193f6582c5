"""Where work goes: Celery over Redis, or the in-process worker (QUEUE_REDIS_ENABLED).

Handing on is best effort by design: the job is already a row, so when the
broker refuses, the job waits for the reconciler instead of failing the caller.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from mrdj import telemetry
from mrdj.config import get_config

log = logging.getLogger(__name__)
BROKER_BACKOFF_SECONDS = 5.0
_broker_down_until = 0.0


def uses_broker() -> bool:
    return get_config().get_bool("QUEUE_REDIS_ENABLED", settings.QUEUE_REDIS_ENABLED)


def mode() -> str:
    return "celery" if uses_broker() else "in-process"


def hand_over(jobs: list[tuple[int, str]], via_broker: bool, mark: bool = False) -> int:
    """Send jobs to the broker (or wake the in-process worker); returns how many were sent.

    mark sets dispatched_at first (the intake already stored it with the row); jobs the
    broker did not take get it cleared, so the reconciler sends them again.
    """
    from integrations import fallback
    from integrations.models import Job

    if not via_broker:
        fallback.worker.wake()
        return len(jobs)
    if mark:
        Job.objects.filter(pk__in=[pk for pk, _ in jobs]).update(dispatched_at=timezone.now())
    sent = _publish(jobs)
    if sent < len(jobs):
        unsent = [pk for pk, _ in jobs[sent:]]
        Job.objects.filter(Q(pk__in=unsent), ~Q(dispatched_at=None)).update(dispatched_at=None)
    return sent


def _publish(jobs: list[tuple[int, str]]) -> int:
    global _broker_down_until
    from integrations.tasks import deliver

    if time.monotonic() < _broker_down_until:
        return 0  # the broker failed a moment ago: don't make every caller wait for it
    for sent, (job_id, queue) in enumerate(jobs):
        try:
            with telemetry.publishing() as trace_headers:
                deliver.apply_async((job_id, queue), retry=False, headers=trace_headers)
        except Exception as error:
            _broker_down_until = time.monotonic() + BROKER_BACKOFF_SECONDS
            log.warning(
                "broker refused job %s (%s); the reconciler will hand it on", job_id, type(error).__name__
            )
            return sent
    return len(jobs)


def broker_backlog() -> int | None:
    """Messages waiting in the broker's task queue; None when the broker cannot be asked."""
    from mrdj.celery import app

    try:
        with app.connection_for_read() as connection:
            return connection.default_channel.client.llen(app.conf.task_default_queue)
    except Exception as error:
        log.warning("could not read the broker's queue length (%s)", type(error).__name__)
        return None


def kick() -> None:
    """Have due jobs handed on now rather than at the next periodic run."""
    from integrations import fallback
    from integrations.tasks import reconcile

    if not uses_broker():
        fallback.worker.wake()
        return
    if time.monotonic() < _broker_down_until:
        return
    try:
        reconcile.apply_async(retry=False)
    except Exception as error:
        log.warning("broker refused the reconcile kick (%s); beat will run it", type(error).__name__)

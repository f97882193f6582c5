"""What an operator does to single jobs: cancel them, or correct a payload and send it again.

Both keep the row (nothing accepted disappears) and leave an audit record with the state
before and after. Status changes move the queue counters in the same transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from integrations import handoff, signals
from integrations.models import CANCELLABLE, Job, QueueCounter, Status
from mrdj import audit


class Refused(Exception):
    """The job is not in a state that allows the action; the message says why."""


def cancel(queue: str, actor: Any, ids: Iterable[int]) -> int:
    """Cancel the queue's waiting or dead-letter jobs among ids: never tried again, kept as
    'cancelled' with who did it. Jobs in flight or delivered are left as they are."""
    ids = sorted(set(ids))
    now = timezone.now()
    with transaction.atomic():
        jobs = Job.objects.select_for_update().filter(queue=queue, pk__in=ids, status__in=CANCELLABLE)
        before = dict(jobs.values_list("pk", "status"))
        moved = Job.objects.filter(pk__in=list(before)).update(
            status=Status.CANCELLED,
            finished_at=now,
            claim_token="",
            last_error=f"cancelled by {audit.actor_fields(actor)['actor']}",
        )
        deltas = Counter(before.values())
        QueueCounter.objects.adjust(
            queue, {**{status: -count for status, count in deltas.items()}, Status.CANCELLED: moved}
        )
        if moved:
            audit.record(
                "job.cancel",
                actor=actor,
                target=queue,
                before={"jobs": {str(pk): status for pk, status in sorted(before.items())[:100]}},
                after={"cancelled": moved},
            )
    if moved:
        signals.backlog_changed.send(sender=Job, queue=queue)
    return moved


def edit_and_replay(job_id: int, payload: dict, actor: Any) -> Job:
    """Replace a waiting or dead-letter job's payload and make it due now with its tries reset.

    The payload intake accepted is kept in original_payload (the first edit only), and the
    audit record holds this edit's payload before and after."""
    if not isinstance(payload, dict):
        raise Refused("payload: a JSON object is expected")
    now = timezone.now()
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if job.status not in CANCELLABLE:
            raise Refused(
                f"job {job.pk} is {job.get_status_display()}: only waiting and dead-letter jobs are edited"
            )
        previous_status, previous_payload = job.status, job.payload
        if job.original_payload is None:
            job.original_payload = previous_payload
        job.payload = payload
        job.status = Status.PENDING
        job.attempts = 0
        job.next_attempt_at = now
        job.finished_at = None
        job.last_error = ""
        job.last_status_code = None
        job.save(
            update_fields=[
                "original_payload",
                "payload",
                "status",
                "attempts",
                "next_attempt_at",
                "finished_at",
                "last_error",
                "last_status_code",
            ]
        )
        if previous_status != Status.PENDING:
            QueueCounter.objects.adjust(job.queue, {previous_status: -1, Status.PENDING: 1})
        audit.record(
            "job.edit",
            actor=actor,
            target=f"{job.queue} job {job.pk}",
            before={"status": previous_status, "payload": previous_payload},
            after={"status": Status.PENDING.value, "payload": payload},
        )
    signals.backlog_changed.send(sender=Job, queue=job.queue)
    handoff.wake(job.queue)
    return job

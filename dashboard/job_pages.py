"""What a queue's Jobs page and a job's page show: jobs filtered by state, cause, time and
search, newest first, a page at a time without counting the table; dead-letter jobs grouped
by cause; one job with every try in time order."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, Max, Min, Q, TextField
from django.db.models.functions import Cast

from integrations.models import Job, Status
from mrdj.api import BadRequest, moment

PAGE_SIZE = 50
STATES = {status.value: status.label for status in Status}


@dataclass(frozen=True)
class Filters:
    state: str = ""
    cause: str = ""
    q: str = ""
    since: datetime | None = None
    until: datetime | None = None
    before: int | None = None  # the page: jobs older (smaller id) than this one

    def query(self) -> dict[str, str]:
        """The filters as query parameters, for links to the next page."""
        moments = {"since": self.since, "until": self.until}
        values = {"state": self.state, "cause": self.cause, "q": self.q}
        values.update({name: moment.isoformat() for name, moment in moments.items() if moment})
        return {name: value for name, value in values.items() if value}


def read_filters(params: Any) -> Filters:
    state = params.get("state", "")
    if state and state not in STATES:
        raise BadRequest(f"state: {state[:20]!r} is not one of {', '.join(STATES)}")
    before = params.get("before", "")
    if before and not (before.isascii() and before.isdigit() and len(before) < 19):
        raise BadRequest("before: a job id is expected")
    return Filters(
        state=state,
        cause=params.get("cause", "")[:500],
        q=params.get("q", "").strip()[:200],
        since=moment(params.get("since", ""), "since"),
        until=moment(params.get("until", ""), "until"),
        before=int(before) if before else None,
    )


def jobs_page(queue: str, filters: Filters) -> dict[str, Any]:
    """Newest first, PAGE_SIZE at a time by id (keyset: no COUNT, no OFFSET).

    Cost: a key search is one lookup in the (queue, idempotency_key) unique index; a state
    filter walks the (queue, status, created_at) index; text in the payload is matched only
    among the jobs the other filters leave (a scan of those rows: narrow it by state or time
    on a large table)."""
    jobs = Job.objects.filter(queue=queue).accepted_within(filters.since, filters.until)
    if filters.state:
        jobs = jobs.filter(status=filters.state)
    if filters.cause:
        jobs = jobs.filter(last_error=filters.cause)
    if filters.q:
        by_key = Job.objects.filter(queue=queue, idempotency_key=filters.q).values_list("pk", flat=True)
        in_payload = jobs.annotate(text=Cast("payload", TextField())).filter(text__icontains=filters.q)
        jobs = jobs.filter(Q(pk__in=list(by_key)) | Q(pk__in=in_payload.values("pk")))
    if filters.before:
        jobs = jobs.filter(pk__lt=filters.before)
    rows = list(jobs.order_by("-pk")[: PAGE_SIZE + 1])
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return {"jobs": rows, "next_before": rows[-1].pk if more else None}


@dataclass(frozen=True)
class Cause:
    text: str
    count: int
    first: datetime
    last: datetime


def dead_letter_causes(queue: str, limit: int = 20) -> list[Cause]:
    """Dead-letter jobs grouped by their last error ('HTTP 500 Internal Server Error',
    'network error (could not connect)', 'SEVENSA_SUBMIT_URL is not set'), most first."""
    groups = (
        Job.objects.filter(queue=queue, status=Status.DEAD)
        .values("last_error")
        .annotate(count=Count("pk"), first=Min("finished_at"), last=Max("finished_at"))
        .order_by("-count", "last_error")[:limit]
    )
    return [
        Cause(group["last_error"] or "(no error recorded)", group["count"], group["first"], group["last"])
        for group in groups
    ]


def dead_ids(queue: str, cause: str) -> list[int]:
    return list(
        Job.objects.filter(queue=queue, status=Status.DEAD, last_error=cause).values_list("pk", flat=True)
    )


def job_detail(job: Job) -> dict[str, Any]:
    return {
        "job": job,
        "attempts": list(job.attempt_set.order_by("number")),
        "trace_id": _trace_id(job),
        "payload_json": json.dumps(job.payload, indent=2, ensure_ascii=False),
    }


def _trace_id(job: Job) -> str:
    """From the W3C traceparent kept with the job (version-traceid-spanid-flags)."""
    parts = job.trace_parent.split("-")
    return parts[1] if len(parts) == 4 else ""

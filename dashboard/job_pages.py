"""What a queue's Jobs page and a job's page show: jobs filtered by state, cause, time and
search, newest first, a page at a time without counting the table; dead-letter jobs grouped
by cause; one job with every try in time order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, Max, Min, TextField
from django.db.models.functions import Cast

from integrations.models import CANCELLABLE, Job, Status
from mrdj.api import BadRequest, moment
from mrdj.diffs import diff_lines, pretty_json

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

    Cost (bench/job_search.py measures it at 1M jobs): a key is one lookup in the
    (queue, idempotency_key) unique index; the list and a state or cause filter walk the
    primary key newest first and stop at a page; a time window uses the (queue, status,
    created_at) index. Text in the payload is looked for in SEARCH_WINDOW jobs at a time,
    newest first: a page of matches among recent jobs comes at once, and a search reads at
    most SEARCH_WINDOW * SEARCH_WINDOWS jobs before it offers to go on further back."""
    jobs = Job.objects.filter(queue=queue).accepted_within(filters.since, filters.until)
    if filters.state:
        jobs = jobs.filter(status=filters.state)
    elif filters.since or filters.until:
        jobs = jobs.filter(status__in=list(STATES))  # so that the (queue, status, created_at) index serves
    if filters.cause:
        jobs = jobs.filter(last_error=filters.cause)
    if filters.before:
        jobs = jobs.filter(pk__lt=filters.before)
    if filters.q:
        by_key = list(Job.objects.filter(queue=queue, idempotency_key=filters.q).values_list("pk", flat=True))
        if by_key:
            jobs = jobs.filter(pk__in=by_key)
        else:
            return _search_payloads(jobs, filters)
    return _page(jobs)


SEARCH_WINDOW = 20_000  # ids per query: a primary-key range the planner reads in order
SEARCH_WINDOWS = 10


def _search_payloads(jobs, filters: Filters) -> dict[str, Any]:
    """Text in the payload, window by window of ids going back from the newest job."""
    matching = jobs.annotate(text=Cast("payload", TextField())).filter(text__icontains=filters.q)
    top = filters.before or (Job.objects.aggregate(last=Max("pk"))["last"] or 0) + 1
    found: list[Job] = []
    for _ in range(SEARCH_WINDOWS):
        if top <= 1 or len(found) > PAGE_SIZE:
            break
        low = max(top - SEARCH_WINDOW, 1)
        found += matching.filter(pk__gte=low, pk__lt=top).order_by("-pk")[: PAGE_SIZE + 1 - len(found)]
        top = low
    if len(found) > PAGE_SIZE:
        return {"jobs": found[:PAGE_SIZE], "next_before": found[PAGE_SIZE - 1].pk, "searched_to": None}
    return {"jobs": found, "next_before": top if top > 1 else None, "searched_to": top if top > 1 else None}


def _page(jobs) -> dict[str, Any]:
    rows = list(jobs.order_by("-pk")[: PAGE_SIZE + 1])
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return {"jobs": rows, "next_before": rows[-1].pk if more else None, "searched_to": None}


@dataclass(frozen=True)
class Cause:
    text: str
    count: int
    first: datetime
    last: datetime


def dead_letter_causes(queue: str, limit: int = 20, among: int | None = None) -> list[Cause]:
    """Dead-letter jobs grouped by their last error ('HTTP 500 Internal Server Error',
    'network error (could not connect)', 'SEVENSA_SUBMIT_URL is not set'), most first;
    among: only the newest that many (what the card, refreshed every few seconds, reads)."""
    dead = Job.objects.filter(queue=queue, status=Status.DEAD)
    if among:
        dead = Job.objects.filter(pk__in=dead.order_by("-pk").values("pk")[:among])
    groups = (
        dead.values("last_error")
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
        "attempts": list(job.attempt_set.order_by("started_at", "number", "pk")),
        "trace_id": _trace_id(job),
        "payload_json": pretty_json(job.payload),
        "edit_diff": [] if job.original_payload is None else diff_lines(job.original_payload, job.payload),
        "editable": job.status in CANCELLABLE,
    }


def _trace_id(job: Job) -> str:
    """From the W3C traceparent kept with the job (version-traceid-spanid-flags)."""
    parts = job.trace_parent.split("-")
    return parts[1] if len(parts) == 4 else ""

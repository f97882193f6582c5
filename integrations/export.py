"""Export a queue's jobs as CSV or JSON, streamed: memory stays flat however many rows there are.

Rows are read in keyset pages (WHERE id > last ORDER BY id LIMIT n), so no page
is held longer than it takes to write it, on PostgreSQL and SQLite alike, and no
server-side cursor stays open while a slow client reads.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from integrations.models import Job, Status

FIELDS = (
    "id",
    "status",
    "attempts",
    "created_at",
    "next_attempt_at",
    "finished_at",
    "last_status_code",
    "last_error",
    "idempotency_key",
    "payload",
)
FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "jsonl": "application/x-ndjson",
}
PAGE = 2000


@dataclass(frozen=True)
class Filters:
    since: datetime | None = None
    until: datetime | None = None
    statuses: tuple[str, ...] = ()


def rows(queue: str, filters: Filters, page: int = PAGE) -> Iterator[dict[str, Any]]:
    jobs = Job.objects.filter(queue=queue).accepted_within(filters.since, filters.until)
    if filters.statuses:
        jobs = jobs.filter(status__in=filters.statuses)
    last = 0
    while True:
        batch = list(jobs.filter(pk__gt=last).order_by("pk").values_list(*FIELDS)[:page])
        for values in batch:
            yield dict(zip(FIELDS, values, strict=True))
        if len(batch) < page:
            return
        last = batch[-1][0]


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def _cell(value: str) -> str:
    """Spreadsheets run a cell starting with = + - @ (or a tab or CR before one) as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


class _Line:
    """csv.writer writes into this and gets the line back, so each row is yielded at once."""

    def write(self, text: str) -> str:
        return text


def as_csv(records: Iterable[dict[str, Any]]) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield writer.writerow(FIELDS)
    for row in records:
        yield writer.writerow(
            [
                row["id"],
                row["status"],
                row["attempts"],
                _iso(row["created_at"]),
                _iso(row["next_attempt_at"]),
                _iso(row["finished_at"]),
                row["last_status_code"] if row["last_status_code"] is not None else "",
                _cell(row["last_error"]),
                _cell(row["idempotency_key"]),
                json.dumps(row["payload"], ensure_ascii=False),
            ]
        )


def as_json_lines(records: Iterable[dict[str, Any]]) -> Iterator[str]:
    for row in records:
        yield json.dumps(row, cls=DjangoJSONEncoder, ensure_ascii=False) + "\n"


def as_json_array(records: Iterable[dict[str, Any]]) -> Iterator[str]:
    """One valid JSON document, written a row at a time."""
    yield "["
    separator = "\n"
    for row in records:
        yield separator + json.dumps(row, cls=DjangoJSONEncoder, ensure_ascii=False)
        separator = ",\n"
    yield "\n]\n"


WRITERS = {"csv": as_csv, "json": as_json_array, "jsonl": as_json_lines}
STATUSES = tuple(Status.values)

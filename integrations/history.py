"""The queues' recent history, sampled by mrdj itself for the dashboard's charts.

One row per queue per minute, kept a little over a day, and one per ten minutes, kept a
little over a week: at most about 2,700 rows per queue, whatever the traffic. Every
process's alert evaluator calls sample_if_due() on its tick; the unique constraint keeps
one row per queue and period for the whole deployment, and each process asks the
database at most once per period. A sample costs the figures of /metrics/queues plus one
pass over the tries finished since the previous sample (by Attempt id, the primary key:
no scan of older tries).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Max
from django.utils import timezone

from integrations import operations
from integrations.models import Attempt, QueueCounter, QueueSample, Status

MINUTE, TEN_MINUTES = 60, 600
KEPT = {MINUTE: timedelta(hours=25), TEN_MINUTES: timedelta(days=8)}
RANGES = {
    "1h": (MINUTE, timedelta(hours=1)),
    "24h": (MINUTE, timedelta(days=1)),
    "7d": (TEN_MINUTES, timedelta(days=7)),
}
LATENCY_SAMPLE = 20_000  # the newest deliveries of a period the percentiles are taken from
SERIES = (
    "backlog",
    "retrying",
    "retry_age_ms",
    "dead_letter",
    "delivered",
    "failed",
    "latency_p50_ms",
    "latency_p95_ms",
)
_checked: dict[int, datetime] = {}  # per process: the last period it found sampled


def period_start(moment: datetime, resolution: int) -> datetime:
    seconds = int(moment.timestamp())
    return datetime.fromtimestamp(seconds - seconds % resolution, tz=moment.tzinfo)


def sample_if_due(now: datetime | None = None) -> int:
    """Write the samples of the periods that just ended, unless another process has; the
    number of rows written."""
    now = now or timezone.now()
    written = 0
    for resolution in KEPT:
        period = period_start(now, resolution) - timedelta(seconds=resolution)
        if _checked.get(resolution) == period:
            continue
        if not QueueSample.objects.filter(resolution_s=resolution, at=period).exists():
            written += _sample(period, resolution)
            QueueSample.objects.filter(resolution_s=resolution, at__lt=now - KEPT[resolution]).delete()
        _checked[resolution] = period
    return written


def _sample(period: datetime, resolution: int) -> int:
    figures = operations.queue_figures()["queues"]
    counters = QueueCounter.objects.counts()
    upto = Attempt.objects.aggregate(last=Max("pk"))["last"] or 0
    previous = QueueSample.objects.filter(resolution_s=resolution).aggregate(last=Max("attempts_upto"))[
        "last"
    ]
    tries = _tries(upto if previous is None else previous, upto)
    rows = []
    for name, numbers in figures.items():
        counted = tries.get(name, Tries())
        p50, p95 = counted.percentiles()
        rows.append(
            QueueSample(
                queue=name,
                resolution_s=resolution,
                at=period,
                backlog=numbers["backlog"],
                retrying=counters.get(name, {}).get(Status.RETRY, 0),
                retry_age_ms=numbers["retry_age_ms"],
                dead_letter=numbers["dead_letter"],
                delivered=counted.delivered,
                failed=counted.failed,
                latency_p50_ms=p50,
                latency_p95_ms=p95,
                attempts_upto=upto,
            )
        )
    return len(QueueSample.objects.bulk_create(rows, ignore_conflicts=True))


@dataclass
class Tries:
    delivered: int = 0
    failed: int = 0
    latencies_ms: list[int] = field(default_factory=list)

    def percentiles(self) -> tuple[int | None, int | None]:
        values = self.latencies_ms
        if len(values) < 2:
            return (values[0], values[0]) if values else (None, None)
        cuts = statistics.quantiles(values, n=100, method="inclusive")
        return int(cuts[49]), int(cuts[94])


def _tries(after: int, upto: int) -> dict[str, Tries]:
    """Tries finished after the Attempt id after, up to upto, per queue: deliveries, failed
    tries, and the delivery latency (accepted to delivered) of the newest deliveries."""
    found: dict[str, Tries] = {}
    window = Attempt.objects.filter(pk__gt=after, pk__lte=upto)
    for queue, outcome, count in (
        window.values_list("job__queue", "outcome")
        .annotate(n=Count("pk"))
        .values_list("job__queue", "outcome", "n")
    ):
        tries = found.setdefault(queue, Tries())
        if outcome == Status.DONE:
            tries.delivered += count
        elif outcome in (Status.RETRY, Status.DEAD):
            tries.failed += count
    delivered = window.filter(outcome=Status.DONE).order_by("-pk")[:LATENCY_SAMPLE]
    for queue, started, took_ms, accepted in delivered.values_list(
        "job__queue", "started_at", "duration_ms", "job__created_at"
    ):
        latency = (started - accepted).total_seconds() * 1000 + took_ms
        found.setdefault(queue, Tries()).latencies_ms.append(max(int(latency), 0))
    return found


def series(queue: str, span: str, now: datetime | None = None) -> dict[str, Any]:
    """The queue's samples over span (1h, 24h, 7d), as columns: t (Unix seconds) and one list
    per figure, None where nothing was measured."""
    resolution, length = RANGES[span]
    now = now or timezone.now()
    rows = QueueSample.objects.filter(queue=queue, resolution_s=resolution, at__gte=now - length).order_by(
        "at"
    )
    values = list(rows.values_list("at", *SERIES))
    columns: dict[str, list] = {"t": [int(row[0].timestamp()) for row in values]}
    for index, name in enumerate(SERIES, start=1):
        columns[name] = [row[index] for row in values]
    return {"queue": queue, "range": span, "resolution_s": resolution, "series": columns}

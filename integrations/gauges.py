"""The queue figures as OpenTelemetry observable gauges, read from what /metrics/queues reads.

Every process could report them, but they describe the database, not the process: one
process per deployment does, the beat process while the queue runs over Redis, the web
processes while it runs in-process (there is no beat then). The figures are read once
per export for all four gauges.
"""

from __future__ import annotations

import time

from django.db import close_old_connections
from opentelemetry.metrics import CallbackOptions, Observation

from mrdj.metrics import METER

_cache: tuple[float, dict] = (0.0, {})


def _reports_queues() -> bool:
    from integrations import handoff
    from mrdj.telemetry import runtime

    if not runtime.exporting:
        return False  # switched off: no database read for gauges nobody receives
    if runtime.role == "beat":
        return handoff.uses_broker()
    return runtime.role == "web" and not handoff.uses_broker()


def _figures() -> dict:
    global _cache
    read_at, figures = _cache
    if time.monotonic() - read_at > 1.0:
        from opentelemetry.instrumentation.utils import suppress_instrumentation

        from integrations.operations import queue_figures

        with suppress_instrumentation():  # reading the gauges is not worth a trace
            close_old_connections()  # a connection broken by a database blip is replaced
            try:
                figures = queue_figures()["queues"]
            finally:
                close_old_connections()
        _cache = (time.monotonic(), figures)
    return figures


def _observe(field: str, scale: float = 1.0):
    def callback(options: CallbackOptions) -> list[Observation]:
        if not _reports_queues():
            return []
        return [
            Observation(numbers[field] * scale, {"queue": queue}) for queue, numbers in _figures().items()
        ]

    return callback


METER.create_observable_gauge(
    "mrdj.queue.backlog", [_observe("backlog")], unit="{job}", description="Jobs waiting, retries included."
)
METER.create_observable_gauge(
    "mrdj.queue.active", [_observe("active")], unit="{job}", description="Jobs in flight."
)
METER.create_observable_gauge(
    "mrdj.queue.retry_age",
    [_observe("retry_age_ms", 0.001)],
    unit="s",
    description="Age of the oldest job waiting to retry.",
)
METER.create_observable_gauge(
    "mrdj.queue.dead_letter",
    [_observe("dead_letter")],
    unit="{job}",
    description="Jobs in the dead-letter queue.",
)


def _observe_circuit(options: CallbackOptions) -> list[Observation]:
    if not _reports_queues():
        return []
    return [
        Observation(int(numbers["circuit"] == state), {"queue": queue, "state": state})
        for queue, numbers in _figures().items()
        for state in ("closed", "open", "half_open")
    ]


METER.create_observable_gauge(
    "mrdj.queue.circuit",
    [_observe_circuit],
    unit="1",
    description="1 for the upstream circuit breaker's current state (closed, open, half_open).",
)

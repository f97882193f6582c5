"""Spans from the libraries mrdj uses: Django requests (server_spans.py), Celery tasks, Redis,
outgoing HTTP through urllib3, and the queries of Django's database connections.

Their own per-call metrics (HTTP durations and the like) are left out: recorded on every
call whether or not telemetry is switched on, they cost more than all of mrdj's tracing
together, and the spans carry the same durations.
"""

from __future__ import annotations

import os

from django.db import connections
from django.db.backends.signals import connection_created
from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from mrdj.telemetry import otel_settings, workarounds
from mrdj.telemetry.process_state import runtime

SEMCONV_DEFAULT = "http"


def instrument(role: str) -> None:
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor
    from opentelemetry.metrics import NoOpMeterProvider

    no_metrics = {"meter_provider": NoOpMeterProvider()}
    # mrdj's default for OTEL_SEMCONV_STABILITY_OPT_IN: the stable HTTP attribute names (fewer
    # attributes per request than the old ones, measured in docs/benchmarks.md). Set before
    # the first instrumentor reads it, which it does once per process.
    if not os.environ.get("OTEL_SEMCONV_STABILITY_OPT_IN", "").strip():
        os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = SEMCONV_DEFAULT
    if role == "web":
        from mrdj.telemetry import server_spans  # the Django package, in web processes only

        server_spans.instrument_django()
    CeleryInstrumentor().instrument(**no_metrics)
    workarounds.publish_hooks_off(CeleryInstrumentor())  # a job's trace travels in its row
    RedisInstrumentor().instrument(**no_metrics)
    # Upstream deliveries, webhooks and Jira (mrdj/http.py): scheme and host only in the spans.
    URLLib3Instrumentor().instrument(url_filter=otel_settings.host_only, **no_metrics)
    trace_database()


_db_tracer = trace.get_tracer("mrdj.db")  # a proxy until the provider is set: looked up once


def traced_query(execute, sql, params, many, context):
    """Django's execute_wrapper: a span per query, only inside a span that is recorded (a
    request, a task, a try): a query of background work alone is not worth a trace."""
    if (
        not runtime.exporting
        or not trace.get_current_span().is_recording()
        or not is_instrumentation_enabled()
    ):
        return execute(sql, params, many, context)
    connection = context["connection"]
    operation = sql.lstrip().split(" ", 1)[0].upper()
    with _db_tracer.start_as_current_span(operation, kind=trace.SpanKind.CLIENT) as span:
        span.set_attribute("db.system", connection.vendor)
        span.set_attribute("db.name", str(connection.settings_dict.get("NAME", "")))
        span.set_attribute("db.statement", sql[:2000])
        return execute(sql, params, many, context)


def trace_database() -> None:
    """A span per query of Django's connections (PostgreSQL and SQLite alike), through Django's
    own execute_wrapper hook: while switched off it costs one attribute check per query, where
    wrapping every cursor (as the psycopg instrumentation does) cost more than the tracing."""

    def add_to(connection, **kwargs) -> None:
        if traced_query not in connection.execute_wrappers:
            connection.execute_wrappers.append(traced_query)

    connection_created.connect(add_to, weak=False, dispatch_uid="mrdj-telemetry-db")
    for connection in connections.all(initialized_only=True):
        add_to(connection)

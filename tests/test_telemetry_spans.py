"""Which spans mrdj records, in-process with an SDK tracer of the test's own: a trace starts
only at a request, a task, a try or background_span(); queries and library calls outside
those record nothing; every try of a job is in the trace that accepted it."""

from __future__ import annotations

import pytest
from django.db import connection
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased

from mrdj import telemetry
from mrdj.telemetry import gates, instrumentation
from mrdj.telemetry.process_state import runtime

SERVER, CONSUMER, CLIENT = trace.SpanKind.SERVER, trace.SpanKind.CONSUMER, trace.SpanKind.CLIENT


@pytest.fixture
def recorded(monkeypatch) -> InMemorySpanExporter:
    """Telemetry on, mrdj's sampler in front of the default one, spans kept in memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=gates.GatedSampler(ParentBased(ALWAYS_ON)))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(runtime, "exporting", True)
    monkeypatch.setattr(trace, "get_tracer", lambda name, *args, **kwargs: provider.get_tracer(name))
    monkeypatch.setattr(instrumentation, "_db_tracer", provider.get_tracer("mrdj.db"))
    return exporter


def names(exporter) -> list[str]:
    return [span.name for span in exporter.get_finished_spans()]


@pytest.mark.django_db
def test_a_query_is_a_span_only_inside_a_recorded_span(recorded):
    tracer = trace.get_tracer("test")
    with connection.execute_wrapper(instrumentation.traced_query):
        connection.cursor().execute("SELECT 1")  # a loop's query, with nothing around it
        with tracer.start_as_current_span("GET healthz", kind=SERVER) as request:
            connection.cursor().execute("SELECT 2")
    [query, server] = recorded.get_finished_spans()
    assert (query.name, server.name) == ("SELECT", "GET healthz")
    assert query.parent.span_id == request.get_span_context().span_id
    assert query.attributes["db.statement"] == "SELECT 2"


@pytest.mark.parametrize("kind", [CLIENT, trace.SpanKind.PRODUCER, trace.SpanKind.INTERNAL])
def test_library_spans_with_no_parent_start_no_trace(recorded, kind):
    tracer = trace.get_tracer("opentelemetry.instrumentation.redis")
    with tracer.start_as_current_span("BRPOP", kind=kind) as span:
        assert not span.is_recording()
        with tracer.start_as_current_span("child", kind=CLIENT) as child:
            assert not child.is_recording()  # nor anything under it
    assert names(recorded) == []


@pytest.mark.parametrize("kind", [SERVER, CONSUMER])
def test_requests_and_tasks_start_traces(recorded, kind):
    tracer = trace.get_tracer("test")
    with (
        tracer.start_as_current_span("run/integrations.reconcile", kind=kind),
        tracer.start_as_current_span("GET", kind=CLIENT) as call,
    ):
        assert call.is_recording()
    assert names(recorded) == ["GET", "run/integrations.reconcile"]


@pytest.mark.django_db
def test_background_span_starts_a_trace_with_its_queries_in_it(recorded):
    with (
        connection.execute_wrapper(instrumentation.traced_query),
        telemetry.background_span("alerting.evaluate", queue="rentguy"),
    ):
        connection.cursor().execute("SELECT 1")
    [query, background] = recorded.get_finished_spans()
    assert background.name == "alerting.evaluate" and background.parent is None
    assert query.parent.span_id == background.context.span_id
    assert background.attributes["queue"] == "rentguy"


def test_nothing_is_recorded_while_switched_off(recorded, monkeypatch):
    monkeypatch.setattr(runtime, "exporting", False)
    with trace.get_tracer("test").start_as_current_span("GET", kind=SERVER) as span:
        assert not span.is_recording()
        assert telemetry.traceparent() == ""
        with telemetry.delivery_span("rentguy", 1, 1, ""), telemetry.background_span("tick"):
            pass
    assert names(recorded) == []


def accepted(tracer) -> tuple[str, trace.SpanContext]:
    """An intake request: the traceparent stored with the job, and the request's span."""
    with tracer.start_as_current_span("POST integrations/<str:queue>/jobs", kind=SERVER) as request:
        return telemetry.traceparent(), request.get_span_context()


def test_every_try_continues_the_accepting_trace_and_links_the_task_it_ran_under(recorded):
    tracer = trace.get_tracer("test")
    stored, request = accepted(tracer)
    with telemetry.delivery_span("rentguy", 7, 1, stored):  # first try: no span around it
        pass
    with (
        tracer.start_as_current_span("run/integrations.reconcile", kind=CONSUMER) as task,
        telemetry.delivery_span("rentguy", 7, 2, stored),  # the retry, under a task's span
    ):
        pass
    first, second = [s for s in recorded.get_finished_spans() if s.name == "integrations.deliver rentguy"]
    for attempt, span in enumerate([first, second], start=1):
        assert span.context.trace_id == request.trace_id
        assert span.parent.span_id == request.span_id
        assert span.attributes["mrdj.job.attempt"] == attempt
    assert first.links == ()
    [link] = second.links
    assert link.context.span_id == task.get_span_context().span_id
    assert link.context.trace_id != request.trace_id


def test_a_job_accepted_while_telemetry_was_off_is_tried_under_the_task(recorded):
    tracer = trace.get_tracer("test")
    with (
        tracer.start_as_current_span("run/integrations.drain", kind=CONSUMER) as task,
        telemetry.delivery_span("sevensa", 8, 1, ""),
    ):
        pass
    [deliver] = [s for s in recorded.get_finished_spans() if s.name == "integrations.deliver sevensa"]
    assert deliver.parent.span_id == task.get_span_context().span_id
    assert deliver.links == ()

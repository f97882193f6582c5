"""Helpers for mrdj's own spans: a job's trace stored and continued, background work traced
only inside a span that means something, and stretches the libraries must not record.

A trace starts only at a span worth a trace of its own: a request (server), a task or a
try of a job (consumer), or background work wrapped in background_span(). A query, a Redis
command or an outgoing call with no such span around it records nothing (the sampler in
mrdj/telemetry/gates.py drops it), so loops that run with no traffic (the switch watcher,
beat's scheduler, heartbeats) do not fill the collector with one-span traces.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from mrdj.telemetry.process_state import runtime

# The attribute that lets background_span() start a trace (gates.may_start_a_trace).
BACKGROUND = "mrdj.background"


@contextmanager
def unrecorded() -> Iterator[None]:
    """Inside: the libraries' instrumentation records nothing (cheap while telemetry is off)."""
    if not runtime.exporting:
        yield
        return
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    with suppress_instrumentation():
        yield


def traceparent() -> str:
    """The current trace as a W3C traceparent, stored with a job so that its tries continue
    the trace that accepted it; empty while telemetry is off (no cost on intake then)."""
    if not runtime.exporting:
        return ""
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent", "")


@contextmanager
def delivery_span(queue: str, job_id: int, attempt: int, parent: str) -> Iterator[None]:
    """One try of a job, as a span in the trace of the request that accepted it (`parent`, the
    traceparent stored with the job), whichever try it is and wherever it runs. When it runs
    inside another trace's span (a drain or reconcile task), the try is still continued from
    the accepting trace, with a link to the span it ran under; a job accepted while telemetry
    was off has no parent to continue, and its try is a child of that span, or a trace of its
    own."""
    if not runtime.exporting:
        yield
        return
    from opentelemetry import propagate, trace

    tracer = trace.get_tracer("mrdj.queue")
    attributes = {"mrdj.queue": queue, "mrdj.job.id": job_id, "mrdj.job.attempt": attempt}
    context, links = None, ()
    if parent:
        context = propagate.extract({"traceparent": parent})
        accepting = trace.get_current_span(context).get_span_context()
        enclosing = trace.get_current_span().get_span_context()
        if enclosing.is_valid and enclosing.trace_id != accepting.trace_id:
            links = (trace.Link(enclosing, {"mrdj.link": "ran under"}),)
    with tracer.start_as_current_span(
        f"integrations.deliver {queue}", context, trace.SpanKind.CONSUMER, attributes=attributes, links=links
    ):
        yield


@contextmanager
def background_span(name: str, **attributes) -> Iterator[None]:
    """Background work worth a trace of its own (a tick, a sweep): its queries and calls are
    recorded as its children. Without it they record nothing, unless some span encloses them."""
    if not runtime.exporting:
        yield
        return
    from opentelemetry import trace

    with trace.get_tracer("mrdj.background").start_as_current_span(
        name, attributes={**attributes, BACKGROUND: True}
    ):
        yield

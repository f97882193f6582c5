"""The run-time switch applied where spans and metrics are decided and sent.

While telemetry is switched off nothing is sampled and the exporters drop what is still
queued. While it is on, the sampler also decides which spans may start a trace: only a
request (server), a task or a try of a job (consumer), and background_span(); a query, a
Redis command or an outgoing call with no recording span around it records nothing.
Every successful export is noted for the silence detector.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from django.db import close_old_connections
from opentelemetry import trace
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult

from mrdj import processes
from mrdj.telemetry import otel_settings, workarounds
from mrdj.telemetry.process_state import runtime
from mrdj.telemetry.tracing import BACKGROUND

log = logging.getLogger("mrdj.telemetry")
RECORD_EVERY_SECONDS = 5.0
ROOT_KINDS = (trace.SpanKind.SERVER, trace.SpanKind.CONSUMER)
DROP = SamplingResult(Decision.DROP)


def may_start_a_trace(kind, attributes) -> bool:
    return kind in ROOT_KINDS or bool(attributes and attributes.get(BACKGROUND))


class GatedSampler(Sampler):
    """Samples nothing while telemetry is switched off, nor a span that would start a trace
    of no interest; otherwise the configured sampler decides."""

    def __init__(self, delegate: Sampler):
        self.delegate = delegate

    def should_sample(
        self, parent_context, trace_id, name, kind=None, attributes=None, links=None, trace_state=None
    ):
        if not runtime.exporting:
            return DROP
        if not trace.get_current_span(parent_context).get_span_context().is_valid and not may_start_a_trace(
            kind, attributes
        ):
            return DROP
        return self.delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"mrdj-switch({self.delegate.get_description()})"


class GatedSpans(SpanExporter):
    """Drops while switched off; notes every successful export for the silence detector."""

    def __init__(self, inner: SpanExporter):
        self.inner = inner

    def export(self, spans: Sequence) -> SpanExportResult:
        if not runtime.exporting:
            return SpanExportResult.SUCCESS
        result = self.inner.export(spans)
        if result == SpanExportResult.SUCCESS:
            note_export()
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class GatedMetrics(MetricExporter):
    """The same for metrics, asking the reader for what the wrapped exporter asks."""

    def __init__(self, inner):
        super().__init__(**workarounds.metric_preferences(inner))
        self.inner = inner

    def export(self, metrics_data, timeout_millis: float = 10_000, **kwargs) -> MetricExportResult:
        if not runtime.exporting:
            return MetricExportResult.SUCCESS
        result = self.inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        if result == MetricExportResult.SUCCESS:
            note_export()
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self.inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs) -> None:
        self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)


def note_export() -> None:
    """Called from the exporters' threads after a successful export."""
    # Often enough for the silence detector to be sure, rarely enough to cost nothing.
    every = min(RECORD_EVERY_SECONDS, otel_settings.silence_ms() / 1000 / 5)
    if time.monotonic() - runtime.last_recorded < every:
        return
    runtime.last_recorded = time.monotonic()
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    with suppress_instrumentation():  # the bookkeeping of an export is not worth a span
        close_old_connections()  # a connection broken by a database blip is replaced
        try:
            processes.exported()
        except Exception as error:  # the export itself succeeded; say why it was not noted
            log.error("could not note a telemetry export (%s)", type(error).__name__)
        finally:
            close_old_connections()

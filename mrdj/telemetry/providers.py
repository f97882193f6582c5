"""Starting telemetry in a process: the providers, exporters and instrumentation, once, and
the watcher that switches export on and off at run time.

bootstrap(role) runs at the start of every web process, in every Celery worker process
after the fork, and in beat. Telemetry runs when FLAG_TELEMETRY is on, OTEL_ENABLED is true
and the endpoints are set; otherwise one line says what is missing, and nothing is sampled
or exported. The watcher re-reads those every few seconds: switching the flag off stops
export in every process, switching it on starts it, without a restart.

Export never holds up a request or a job: spans are batched in a bounded queue (dropped
when full) and exported from a background thread with a short timeout.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from django.db import close_old_connections

from mrdj import processes
from mrdj.config import get_config
from mrdj.telemetry import gates, instrumentation, otel_settings
from mrdj.telemetry.process_state import runtime

log = logging.getLogger("mrdj.telemetry")
WATCH_SECONDS = 2.0


def bootstrap(role: str) -> None:
    """Start telemetry for this process (idempotent per process) and watch for switches."""
    if runtime.pid == os.getpid():
        return
    runtime.reset()  # a forked child starts from nothing: its parent's threads are gone
    runtime.role, runtime.pid = role, os.getpid()
    try:
        refresh()
    except Exception:
        log.exception("telemetry could not start; the application runs without it")
    threading.Thread(target=_watch, name="mrdj-telemetry-watch", daemon=True).start()


def refresh() -> None:
    """Install once the endpoints are known (even while switched off, so that switching on
    later needs no restart), then open or close the gates."""
    state = otel_settings.status()
    with runtime.lock:
        if (
            not runtime.installed
            and all(otel_settings.endpoints().values())
            and not otel_settings.sdk_disabled()
        ):
            # Once per process, failed or not: a provider, once set, cannot be replaced, and
            # retrying every few seconds would stack up exporter threads.
            runtime.installed = True
            try:
                install(runtime.role)
            except Exception:
                runtime.failed = True
                raise
        exporting = state.state == "on" and runtime.installed and not runtime.failed
        if exporting and not runtime.exporting:
            _started_exporting(runtime.role)
        if not exporting and state.reason != runtime.reason:
            log.info("Telemetry disabled: %s", state.reason)
        runtime.exporting, runtime.reason = exporting, ("" if exporting else state.reason)


def _watch() -> None:
    while True:
        time.sleep(WATCH_SECONDS)
        try:
            refresh()
        except Exception:
            log.exception("telemetry switch check failed; trying again")
        finally:
            close_old_connections()


def install(role: str) -> None:
    from opentelemetry import metrics, trace
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    config = get_config()
    urls = otel_settings.endpoints()
    # Every setting is read (and refused, when invalid) before anything is built: a provider,
    # once set, cannot be replaced in this process.
    timeout_ms = config.value("OTEL_EXPORT_TIMEOUT_MS")
    schedule_delay_ms = otel_settings.own_or_standard("OTEL_BSP_SCHEDULE_DELAY_MS", "OTEL_BSP_SCHEDULE_DELAY")
    export_interval_ms = otel_settings.own_or_standard(
        "OTEL_METRIC_EXPORT_INTERVAL_MS", "OTEL_METRIC_EXPORT_INTERVAL"
    )
    sampler = otel_settings.sampler()
    sent_headers = otel_settings.headers()
    resource = otel_settings.resource(role)
    spans = gates.GatedSpans(
        OTLPSpanExporter(
            endpoint=urls["traces"],
            headers=otel_settings.signal_headers("TRACES", sent_headers),
            timeout=timeout_ms / 1000,
        )
    )
    tracer_provider = TracerProvider(resource=resource, sampler=gates.GatedSampler(sampler))
    tracer_provider.add_span_processor(
        BatchSpanProcessor(
            spans,
            # Bounded (OTEL_BSP_MAX_QUEUE_SIZE, 2048 by default): a collector that is down costs
            # dropped spans, not memory.
            max_queue_size=None,
            schedule_delay_millis=schedule_delay_ms,
            export_timeout_millis=timeout_ms,
        )
    )
    trace.set_tracer_provider(tracer_provider)
    metric_exporter = gates.GatedMetrics(
        OTLPMetricExporter(
            endpoint=urls["metrics"],
            headers=otel_settings.signal_headers("METRICS", sent_headers),
            timeout=timeout_ms / 1000,
        )
    )
    reader = PeriodicExportingMetricReader(
        metric_exporter,
        export_interval_millis=export_interval_ms,
        export_timeout_millis=timeout_ms,
    )
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=[reader]))
    instrumentation.instrument(role)


def _started_exporting(role: str) -> None:
    processes.telemetry_started(role)  # silence counts from now until its first export
    urls = otel_settings.endpoints()
    log.info(
        "Telemetry initialized (%s): traces to %s, metrics to %s",
        role,
        otel_settings.shown(urls["traces"]),
        otel_settings.shown(urls["metrics"]),
    )

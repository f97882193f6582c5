"""OpenTelemetry for mrdj: traces and metrics over OTLP/HTTP, switched at run time.

bootstrap(role) runs at the start of every web process, and in every Celery worker
process after the fork (and in beat). Telemetry runs when FLAG_TELEMETRY is on,
OTEL_ENABLED is true and the endpoints are set; otherwise one line says what is
missing, and nothing is sampled or exported. A watcher re-reads those every few
seconds: switching the flag off stops export in every process (spans are no longer
sampled, exporters drop what is queued), switching it on starts it, without a restart.
Code elsewhere records through the OpenTelemetry API and gets no-op tracers and meters
until this has run.

Export never holds up a request or a job: spans are batched in a bounded queue
(dropped when full) and exported from a background thread with a short timeout.

The standard OTEL_* variables of the process environment work as the OpenTelemetry
specification says (OTEL_SDK_DISABLED, OTEL_TRACES_SAMPLER[_ARG], OTEL_RESOURCE_ATTRIBUTES,
OTEL_SERVICE_NAME, OTEL_PYTHON_DJANGO_EXCLUDED_URLS / OTEL_PYTHON_EXCLUDED_URLS); mrdj's own
variables (DEPLOYMENT_ENVIRONMENT, OTEL_TRACES_SAMPLE_PERCENT) only fill in what those
leave unset (docs/telemetry.md).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from mrdj.config import ConfigError, get_config
from mrdj.flags import is_enabled

log = logging.getLogger("mrdj.telemetry")
VERSION = "0.1.0"
SERVICE_NAME = "mr-dj-backend"
WATCH_SECONDS = 2.0
RECORD_EVERY_SECONDS = 5.0


@dataclass(frozen=True)
class TelemetryStatus:
    state: str  # off, on, misconfigured
    reason: str
    last_export: datetime | None = None


def endpoints() -> dict[str, str]:
    config = get_config()
    base = config.value("OTEL_EXPORTER_OTLP_ENDPOINT").rstrip("/")
    return {
        "traces": config.value("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or (base and base + "/v1/traces"),
        "metrics": config.value("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") or (base and base + "/v1/metrics"),
    }


def sdk_disabled() -> bool:
    """OTEL_SDK_DISABLED=true (any case) in the process environment, read where the SDK reads
    it: a no-op SDK for every signal, whatever mrdj's own switches say."""
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def status(with_last_export: bool = False) -> TelemetryStatus:
    """Which of the conditions holds, OTEL_SDK_DISABLED first (and the last successful export
    of any process)."""
    if sdk_disabled():
        return TelemetryStatus("off", "OTEL_SDK_DISABLED=true")
    try:
        if not is_enabled("FLAG_TELEMETRY"):
            return TelemetryStatus("off", "FLAG_TELEMETRY is off")
        if not get_config().value("OTEL_ENABLED"):
            return TelemetryStatus("off", "OTEL_ENABLED is false")
    except ConfigError as error:
        return TelemetryStatus("misconfigured", str(error))
    missing = [name for name, url in endpoints().items() if not url]
    if missing:
        names = " and ".join(f"OTEL_EXPORTER_OTLP_{name.upper()}_ENDPOINT" for name in missing)
        return TelemetryStatus("misconfigured", f"{names} not set (nor OTEL_EXPORTER_OTLP_ENDPOINT)")
    where = ", ".join(f"{name} to {shown(url)}" for name, url in endpoints().items())
    return TelemetryStatus("on", f"exporting {where}", last_export() if with_last_export else None)


def last_export() -> datetime | None:
    from mrdj.models import TelemetryProcess

    return (
        TelemetryProcess.objects.exclude(last_export_at=None)
        .order_by("-last_export_at")
        .values_list("last_export_at", flat=True)
        .first()
    )


def silent_for(now: datetime | None = None) -> timedelta | None:
    """How long no process has exported, counted from its last export or, before the first,
    from when it started exporting; None when no process runs telemetry."""
    from django.db.models import Max
    from django.db.models.functions import Coalesce

    from mrdj.models import TelemetryProcess

    newest = TelemetryProcess.objects.aggregate(newest=Max(Coalesce("last_export_at", "started_at")))[
        "newest"
    ]
    return (now or timezone.now()) - newest if newest else None


def silence_ms() -> int:
    return get_config().value("OTEL_SILENCE_ALERT_MS")


def shown(url: str) -> str:
    """A URL as it may be logged and displayed: without credentials or query string."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"


def host_only(url: str) -> str:
    """What outgoing-HTTP spans may say of a URL: webhook URLs carry their secret in the path."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/"


def headers() -> dict[str, str]:
    """OTEL_EXPORTER_OTLP_HEADERS: key=value pairs, comma-separated, values URL-encoded."""
    pairs = {}
    for item in get_config().value("OTEL_EXPORTER_OTLP_HEADERS"):
        key, _, value = item.partition("=")
        if key.strip():
            pairs[key.strip()] = unquote(value.strip())
    return pairs


class Runtime:
    """This process's telemetry: installed once, then switched on and off by the watcher."""

    def __init__(self):
        self.role = ""
        self.pid = 0
        self.installed = False
        self.failed = False
        self.exporting = False
        self.reason = ""
        self.last_recorded = 0.0
        self.lock = threading.Lock()

    def refresh(self) -> None:
        """Install once the endpoints are known (even while switched off, so that switching on
        later needs no restart: Django's middleware is only read at start-up), then open or
        close the gates."""
        state = status()
        with self.lock:
            if not self.installed and all(endpoints().values()) and not sdk_disabled():
                # Once per process, failed or not: a provider, once set, cannot be replaced, and
                # retrying every few seconds would stack up exporter threads.
                self.installed = True
                try:
                    _install(self.role)
                except Exception:
                    self.failed = True
                    raise
            exporting = state.state == "on" and self.installed and not self.failed
            if exporting and not self.exporting:
                _started_exporting(self.role)
            if not exporting and state.reason != self.reason:
                log.info("Telemetry disabled: %s", state.reason)
            self.exporting, self.reason = exporting, ("" if exporting else state.reason)

    def exported(self) -> None:
        """Called by the exporters after a successful export."""
        # Often enough for the silence detector to be sure, rarely enough to cost nothing.
        every = min(RECORD_EVERY_SECONDS, silence_ms() / 1000 / 5)
        if time.monotonic() - self.last_recorded < every:
            return
        self.last_recorded = time.monotonic()
        from opentelemetry.instrumentation.utils import suppress_instrumentation

        from mrdj.models import TelemetryProcess

        with suppress_instrumentation():  # the bookkeeping of an export is not worth a span
            close_old_connections()  # a connection broken by a database blip is replaced
            try:
                TelemetryProcess.objects.filter(name=_process_name()).update(last_export_at=timezone.now())
            except Exception as error:  # the export itself succeeded; say why it was not noted
                log.error("could not note a telemetry export (%s)", type(error).__name__)
            finally:
                close_old_connections()


runtime = Runtime()


def _process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def bootstrap(role: str) -> None:
    """Start telemetry for this process (idempotent per process) and watch for switches."""
    if runtime.pid == os.getpid():
        return
    runtime.__init__()  # a forked child starts from nothing: its parent's threads are gone
    runtime.role, runtime.pid = role, os.getpid()
    try:
        runtime.refresh()
    except Exception:
        log.exception("telemetry could not start; the application runs without it")
    threading.Thread(target=_watch, name="mrdj-telemetry-watch", daemon=True).start()


def _watch() -> None:
    while True:
        time.sleep(WATCH_SECONDS)
        try:
            runtime.refresh()
        except Exception:
            log.exception("telemetry switch check failed; trying again")
        finally:
            close_old_connections()


def _install(role: str) -> None:
    from opentelemetry import metrics, trace
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    config = get_config()
    urls = endpoints()
    # Every setting is read (and refused, when invalid) before anything is built: a provider,
    # once set, cannot be replaced in this process.
    timeout_ms = config.value("OTEL_EXPORT_TIMEOUT_MS")
    schedule_delay_ms = own_or_standard("OTEL_BSP_SCHEDULE_DELAY_MS", "OTEL_BSP_SCHEDULE_DELAY")
    export_interval_ms = own_or_standard("OTEL_METRIC_EXPORT_INTERVAL_MS", "OTEL_METRIC_EXPORT_INTERVAL")
    sampler = _sampler()
    sent_headers = headers()
    resource = _resource(role)
    spans = _Gated(
        OTLPSpanExporter(
            endpoint=urls["traces"], headers=signal_headers("TRACES", sent_headers), timeout=timeout_ms / 1000
        )
    )
    tracer_provider = TracerProvider(resource=resource, sampler=_GatedSampler(sampler))
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
    metric_exporter = _gated_metric_exporter(
        OTLPMetricExporter(
            endpoint=urls["metrics"],
            headers=signal_headers("METRICS", sent_headers),
            timeout=timeout_ms / 1000,
        )
    )
    reader = PeriodicExportingMetricReader(
        metric_exporter,
        export_interval_millis=export_interval_ms,
        export_timeout_millis=timeout_ms,
    )
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=[reader]))
    _instrument(role)


def own_or_standard(own: str, standard: str) -> int:
    """mrdj's variable when set (environment or managed.env); else the standard one, when set
    in the environment (whole milliseconds); else mrdj's default."""
    from mrdj.config import Source

    config = get_config()
    raw = os.environ.get(standard, "").strip()
    if config.lookup(own)[1] is Source.DEFAULT and raw:
        try:
            return int(max(int(raw), variable_minimum(own)))
        except ValueError:
            log.warning(
                "%s=%r is not a whole number of milliseconds; %s's default is used", standard, raw, own
            )
    return config.value(own)


def variable_minimum(name: str) -> float:
    from mrdj.declarations import variable

    return variable(name).minimum or 0


def signal_headers(signal: str, generic: dict[str, str]) -> dict[str, str]:
    """OTEL_EXPORTER_OTLP_<SIGNAL>_HEADERS in the environment replaces the generic headers, as
    the specification says: the exporter then reads it itself."""
    return {} if os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_HEADERS", "").strip() else generic


def _sampler():
    """OTEL_TRACES_SAMPLER (and _ARG) when set in the environment, as the SDK reads them;
    otherwise mrdj's OTEL_TRACES_SAMPLE_PERCENT as parentbased_traceidratio (at 100:
    parentbased_always_on, the specification's default)."""
    from opentelemetry.sdk.trace import sampling

    from mrdj.config import Source

    config = get_config()
    if os.environ.get("OTEL_TRACES_SAMPLER", "").strip():
        if config.lookup("OTEL_TRACES_SAMPLE_PERCENT")[1] is not Source.DEFAULT:
            log.warning("OTEL_TRACES_SAMPLER is set: OTEL_TRACES_SAMPLE_PERCENT is not used")
        # The SDK's own reading, so that every value and its fallbacks mean what the spec says.
        return sampling._get_from_env_or_default()
    ratio = config.value("OTEL_TRACES_SAMPLE_PERCENT") / 100
    root = sampling.ALWAYS_ON if ratio >= 1 else sampling.TraceIdRatioBased(ratio)
    return sampling.ParentBased(root)


def _resource(role: str):
    """The SDK's resource (OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME, the detectors) with
    mrdj's attributes as defaults: they fill only what the standard variables left unset."""
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource

    from mrdj.config import Source

    config = get_config()
    given = dict(OTELResourceDetector().detect().attributes)
    # OTEL_SERVICE_NAME > service.name in OTEL_RESOURCE_ATTRIBUTES > mrdj's default; mrdj
    # declares OTEL_SERVICE_NAME, so one set in managed.env counts as set too.
    named = config.lookup("OTEL_SERVICE_NAME")[1] is not Source.DEFAULT and config.value("OTEL_SERVICE_NAME")
    service_name = named or given.get("service.name") or SERVICE_NAME
    # The old and the new name of the attribute say the same: one given fills the other.
    environment = (
        given.get("deployment.environment.name")
        or given.get("deployment.environment")
        or settings.DEPLOYMENT_ENVIRONMENT
    )
    defaults = {
        "service.version": VERSION,
        "service.instance.id": _process_name(),
        "deployment.environment": environment,
        "deployment.environment.name": environment,
        "mrdj.process.role": role,
    }
    return Resource.create({**defaults, **given, "service.name": service_name})


def _started_exporting(role: str) -> None:
    """The silence detector counts from here until the first export succeeds."""
    from mrdj.models import TelemetryProcess

    now = timezone.now()
    TelemetryProcess.objects.update_or_create(
        name=_process_name(), defaults={"role": role, "started_at": now, "last_export_at": None}
    )
    # Processes come and go with every deploy and recycled worker: forget those gone a day.
    TelemetryProcess.objects.filter(started_at__lt=now - timedelta(days=1)).exclude(
        last_export_at__gte=now - timedelta(days=1)
    ).delete()
    urls = endpoints()
    log.info(
        "Telemetry initialized (%s): traces to %s, metrics to %s",
        role,
        shown(urls["traces"]),
        shown(urls["metrics"]),
    )


def _instrument(role: str) -> None:
    """Traces from the libraries; their own per-call metrics (HTTP durations and the like) are
    left out: recorded on every request whether or not telemetry is switched on, they cost
    more than all of mrdj's tracing together, and the spans carry the same durations."""
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor
    from opentelemetry.metrics import NoOpMeterProvider

    no_metrics = {"meter_provider": NoOpMeterProvider()}
    if role == "web" and REQUEST_TRACING not in settings.MIDDLEWARE:
        settings.MIDDLEWARE.insert(0, REQUEST_TRACING)  # before the WSGI handler loads the middleware
    CeleryInstrumentor().instrument(**no_metrics)
    _publish_hooks_off(CeleryInstrumentor())  # a job's trace travels in its row (traceparent())
    RedisInstrumentor().instrument(**no_metrics)
    # Upstream deliveries, webhooks and Jira (mrdj/http.py): scheme and host only in the spans.
    URLLib3Instrumentor().instrument(url_filter=host_only, **no_metrics)
    _trace_database()


def _publish_hooks_off(instrumentor) -> None:
    from celery import signals

    signals.before_task_publish.disconnect(instrumentor._trace_before_publish)
    signals.after_task_publish.disconnect(instrumentor._trace_after_publish)


def _trace_database() -> None:
    """A span per query of Django's connections (PostgreSQL and SQLite alike), through Django's
    own execute_wrapper hook: while switched off it costs one attribute check per query, where
    wrapping every cursor (as the psycopg instrumentation does) cost more than the tracing."""
    from django.db import connections
    from django.db.backends.signals import connection_created
    from opentelemetry import trace
    from opentelemetry.instrumentation.utils import is_instrumentation_enabled

    tracer = trace.get_tracer("mrdj.db")

    def traced(execute, sql, params, many, context):
        if not runtime.exporting or not is_instrumentation_enabled():
            return execute(sql, params, many, context)
        connection = context["connection"]
        operation = sql.lstrip().split(" ", 1)[0].upper()
        with tracer.start_as_current_span(operation, kind=trace.SpanKind.CLIENT) as span:
            span.set_attribute("db.system", connection.vendor)
            span.set_attribute("db.name", str(connection.settings_dict.get("NAME", "")))
            span.set_attribute("db.statement", sql[:2000])
            return execute(sql, params, many, context)

    def add_to(connection, **kwargs) -> None:
        if traced not in connection.execute_wrappers:
            connection.execute_wrappers.append(traced)

    connection_created.connect(add_to, weak=False, dispatch_uid="mrdj-telemetry-db")
    for connection in connections.all(initialized_only=True):
        add_to(connection)


def _sdk_classes():
    from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
    from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult

    return (
        MetricExporter,
        MetricExportResult,
        SpanExporter,
        SpanExportResult,
        Decision,
        Sampler,
        SamplingResult,
    )


(MetricExporter, MetricExportResult, SpanExporter, SpanExportResult, Decision, Sampler, SamplingResult) = (
    _sdk_classes()
)


class _GatedSampler(Sampler):
    """Samples nothing while telemetry is switched off: spans cost next to nothing then."""

    def __init__(self, delegate: Sampler):
        self.delegate = delegate

    def should_sample(
        self, parent_context, trace_id, name, kind=None, attributes=None, links=None, trace_state=None
    ):
        if not runtime.exporting:
            return SamplingResult(Decision.DROP)
        return self.delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"mrdj-switch({self.delegate.get_description()})"


class _Gated(SpanExporter):
    """Drops while switched off; notes every successful export for the silence detector."""

    def __init__(self, inner: SpanExporter):
        self.inner = inner

    def export(self, spans: Sequence) -> SpanExportResult:
        if not runtime.exporting:
            return SpanExportResult.SUCCESS
        result = self.inner.export(spans)
        if result == SpanExportResult.SUCCESS:
            runtime.exported()
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def _gated_metric_exporter(inner):
    class GatedMetrics(MetricExporter):
        def __init__(self):
            super().__init__(
                preferred_temporality=inner._preferred_temporality,
                preferred_aggregation=inner._preferred_aggregation,
            )

        def export(self, metrics_data, timeout_millis: float = 10_000, **kwargs) -> MetricExportResult:
            if not runtime.exporting:
                return MetricExportResult.SUCCESS
            result = inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
            if result == MetricExportResult.SUCCESS:
                runtime.exported()
            return result

        def force_flush(self, timeout_millis: float = 10_000) -> bool:
            return inner.force_flush(timeout_millis)

        def shutdown(self, timeout_millis: float = 30_000, **kwargs) -> None:
            inner.shutdown(timeout_millis=timeout_millis, **kwargs)

    return GatedMetrics()


REQUEST_TRACING = "mrdj.telemetry.RequestTracingMiddleware"


class RequestTracingMiddleware:
    """A server span per request while telemetry is on, continuing the caller's trace.

    Written here rather than taken from opentelemetry-instrumentation-django: that middleware
    resolves the URL a second time, collects some twenty attributes and reads its header
    capture settings on every request, whether the request is sampled or not, and that alone
    took more than the overhead budget of an intake request (docs/benchmarks.md). This one
    names the span after the route Django already resolved and records the attributes of the
    HTTP semantic conventions a trace view needs.
    """

    def __init__(self, get_response):
        from opentelemetry import propagate, trace
        from opentelemetry.instrumentation.wsgi import wsgi_getter
        from opentelemetry.util.http import get_excluded_urls

        self.get_response = get_response
        self.extract = lambda meta: propagate.extract(meta, getter=wsgi_getter)
        self.trace = trace
        self.tracer = trace.get_tracer("mrdj.web")  # once: looking it up cost 0.1 ms a request
        # OTEL_PYTHON_DJANGO_EXCLUDED_URLS, else OTEL_PYTHON_EXCLUDED_URLS: comma-separated
        # regular expressions searched in the URL, read once as the Django instrumentation does.
        excluded = get_excluded_urls("DJANGO")
        self.excluded = excluded if getattr(excluded, "_excluded_urls", True) else None

    def __call__(self, request):
        if not runtime.exporting:
            return self.get_response(request)
        if self.excluded is not None and self.excluded.url_disabled(_url_of(request)):
            from opentelemetry.instrumentation.utils import suppress_instrumentation

            with suppress_instrumentation():  # nor a trace of its queries and calls
                return self.get_response(request)
        trace = self.trace
        context = self.extract(request.META)
        with self.tracer.start_as_current_span(request.method, context, trace.SpanKind.SERVER) as span:
            response = self.get_response(request)
            if span.is_recording():
                match = request.resolver_match
                route = match.route if match is not None else ""
                if route:
                    span.update_name(f"{request.method} /{route}")
                span.set_attributes(
                    {
                        "http.request.method": request.method,
                        "http.route": f"/{route}" if route else "",
                        "http.response.status_code": response.status_code,
                        "url.scheme": request.scheme,
                        "url.path": request.path,
                        "server.address": request.get_host().rsplit(":", 1)[0],
                        "user_agent.original": request.headers.get("User-Agent", ""),
                    }
                )
                if response.status_code >= 500:
                    span.set_status(trace.Status(trace.StatusCode.ERROR))
        return response

    def process_exception(self, request, exception):
        """Django turns it into a 500 response; the span keeps what was raised."""
        if runtime.exporting:
            self.trace.get_current_span().record_exception(exception)
        return None


def _url_of(request) -> str:
    """What the exclusions are searched in: the URL without its query, as the Django
    instrumentation matches them (a Host Django refuses leaves the path)."""
    from django.core.exceptions import DisallowedHost

    try:
        return request.build_absolute_uri("?")
    except DisallowedHost:
        return request.path


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
    """One try of a job, as a span in the trace of the request that accepted it."""
    if not runtime.exporting:
        yield
        return
    from opentelemetry import propagate, trace

    context = propagate.extract({"traceparent": parent}) if parent else None
    tracer = trace.get_tracer("mrdj.queue")
    attributes = {"mrdj.queue": queue, "mrdj.job.id": job_id, "mrdj.job.attempt": attempt}
    with tracer.start_as_current_span(
        f"integrations.deliver {queue}", context, trace.SpanKind.CONSUMER, attributes=attributes
    ):
        yield

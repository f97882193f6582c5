"""OpenTelemetry for mrdj: traces and metrics over OTLP/HTTP, switched at run time.

One module per job:

- providers: bootstrap(role) at process start, the providers and exporters, the switch watcher;
- otel_settings: mrdj's switches and endpoints, the standard OTEL_* variables, status();
- gates: the switch applied to sampling and export, which spans may start a trace;
- tracing: traceparent(), delivery_span(), background_span(), unrecorded();
- instrumentation: spans from Celery, Redis, urllib3 and Django's database connections;
- server_spans: the Django instrumentation's middleware, as listed in settings.MIDDLEWARE;
- silence: how long no process has exported (the exports are noted in mrdj.processes);
- workarounds: every private name of the OpenTelemetry packages that mrdj relies on.

Code elsewhere records through the OpenTelemetry API and gets no-op tracers and meters
until bootstrap has run; the names below are what the rest of mrdj calls.
"""

from mrdj.processes import last_export
from mrdj.telemetry.otel_settings import (
    SERVICE_NAME,
    VERSION,
    TelemetryStatus,
    endpoints,
    host_only,
    sdk_disabled,
    shown,
    silence_ms,
    status,
)
from mrdj.telemetry.process_state import runtime
from mrdj.telemetry.providers import bootstrap
from mrdj.telemetry.silence import silent_for
from mrdj.telemetry.tracing import background_span, delivery_span, traceparent, unrecorded

__all__ = [
    "SERVICE_NAME",
    "VERSION",
    "TelemetryStatus",
    "background_span",
    "bootstrap",
    "delivery_span",
    "endpoints",
    "host_only",
    "last_export",
    "runtime",
    "sdk_disabled",
    "shown",
    "silence_ms",
    "silent_for",
    "status",
    "traceparent",
    "unrecorded",
]

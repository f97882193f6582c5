"""mrdj's own measurements, recorded once and offered both ways: OTLP (pushed, when telemetry
is on) and Prometheus (scraped from GET /metrics).

Callers record unconditionally: the OpenTelemetry API hands out no-op instruments until
telemetry starts, and Prometheus' in-memory counters cost a few microseconds.
With PROMETHEUS_MULTIPROC_DIR set (one folder per host, emptied at deploy), /metrics
adds up every gunicorn and Celery process of that host.
"""

from __future__ import annotations

from opentelemetry import metrics as otel
from prometheus_client import Counter, Histogram

METER = otel.get_meter("mrdj")
# A delivery takes a few milliseconds to a minute; a job waiting out an outage, hours.
LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400,
)  # fmt: skip

_job_latency = METER.create_histogram(
    "mrdj.job.latency",
    unit="s",
    description="From acceptance to delivered or dead-lettered.",
    explicit_bucket_boundaries_advisory=LATENCY_BUCKETS,  # not the SDK's defaults, made for ms
)
_deliveries = METER.create_counter("mrdj.deliveries", unit="{try}", description="Upstream tries by outcome.")
_alerts_sent = METER.create_counter(
    "mrdj.alerts.sent", unit="{notification}", description="Alert notifications a webhook took."
)
_alert_sends_failed = METER.create_counter(
    "mrdj.alerts.send_failures",
    unit="{try}",
    description="Tries to send an alert notification that failed (retry: tried again later; gave_up: not).",
)

JOB_LATENCY = Histogram(
    "mrdj_job_latency_seconds",
    "Seconds from acceptance to delivered or dead-lettered.",
    ["queue", "outcome"],
    buckets=LATENCY_BUCKETS,
)
DELIVERIES = Counter(
    "mrdj_deliveries", "Upstream tries by outcome (delivered, retry, dead).", ["queue", "outcome"]
)
ALERTS_SENT = Counter("mrdj_alerts_sent", "Alert notifications a webhook took.", ["severity", "service"])
ALERT_SEND_FAILURES = Counter(
    "mrdj_alert_send_failures",
    "Tries to send an alert notification that failed (outcome retry: tried again later; gave_up: not).",
    ["service", "outcome"],
)


def delivery_tried(queue: str, outcome: str) -> None:
    _deliveries.add(1, {"queue": queue, "outcome": outcome})
    DELIVERIES.labels(queue, outcome).inc()


def job_finished(queue: str, outcome: str, seconds: float) -> None:
    _job_latency.record(seconds, {"queue": queue, "outcome": outcome})
    JOB_LATENCY.labels(queue, outcome).observe(seconds)


def alert_sent(severity: str, service: str) -> None:
    _alerts_sent.add(1, {"severity": severity or "none", "service": service})
    ALERTS_SENT.labels(severity or "none", service).inc()


def alert_send_failed(service: str, gave_up: bool) -> None:
    outcome = "gave_up" if gave_up else "retry"
    _alert_sends_failed.add(1, {"service": service, "outcome": outcome})
    ALERT_SEND_FAILURES.labels(service, outcome).inc()

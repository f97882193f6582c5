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
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400)

_job_latency = METER.create_histogram(
    "mrdj.job.latency", unit="s", description="From acceptance to delivered or dead-lettered."
)
_deliveries = METER.create_counter("mrdj.deliveries", unit="{try}", description="Upstream tries by outcome.")
_alerts_sent = METER.create_counter(
    "mrdj.alerts.sent", unit="{notification}", description="Alert notifications a webhook took."
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


def delivery_tried(queue: str, outcome: str) -> None:
    _deliveries.add(1, {"queue": queue, "outcome": outcome})
    DELIVERIES.labels(queue, outcome).inc()


def job_finished(queue: str, outcome: str, seconds: float) -> None:
    _job_latency.record(seconds, {"queue": queue, "outcome": outcome})
    JOB_LATENCY.labels(queue, outcome).observe(seconds)


def alert_sent(severity: str, service: str) -> None:
    _alerts_sent.add(1, {"severity": severity or "none", "service": service})
    ALERTS_SENT.labels(severity or "none", service).inc()

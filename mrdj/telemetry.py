"""Telemetry's state, as the dashboard and readiness show it.

Telemetry runs only when FLAG_TELEMETRY is on, OTEL_ENABLED is true and the OTLP
endpoints are set; status() says which of those is missing. The exporter itself
(issue 6) records its last successful export through record_export().
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mrdj.config import ConfigError, get_config
from mrdj.flags import is_enabled

_last_export: datetime | None = None


@dataclass(frozen=True)
class TelemetryStatus:
    state: str  # off, on, misconfigured
    reason: str
    last_export: datetime | None = None


def endpoints() -> dict[str, str]:
    config = get_config()
    base = config.get_str("OTEL_EXPORTER_OTLP_ENDPOINT").rstrip("/")
    return {
        "traces": config.get_str("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or (base and base + "/v1/traces"),
        "metrics": config.get_str("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") or (base and base + "/v1/metrics"),
    }


def status() -> TelemetryStatus:
    try:
        if not is_enabled("FLAG_TELEMETRY"):
            return TelemetryStatus("off", "FLAG_TELEMETRY is off")
        if not get_config().get_bool("OTEL_ENABLED", False):
            return TelemetryStatus("off", "OTEL_ENABLED is false")
    except ConfigError as error:
        return TelemetryStatus("misconfigured", str(error))
    missing = [name for name, url in endpoints().items() if not url]
    if missing:
        names = " and ".join(f"OTEL_EXPORTER_OTLP_{name.upper()}_ENDPOINT" for name in missing)
        return TelemetryStatus("misconfigured", f"{names} not set (nor OTEL_EXPORTER_OTLP_ENDPOINT)")
    where = ", ".join(f"{name} to {url}" for name, url in endpoints().items())
    return TelemetryStatus("on", f"exporting {where}", _last_export)


def record_export(when: datetime) -> None:
    global _last_export
    _last_export = when

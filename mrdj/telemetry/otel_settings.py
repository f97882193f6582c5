"""What telemetry is told: mrdj's switches and endpoints, and the standard OTEL_* variables.

The standard variables of the process environment work as the OpenTelemetry specification
says (OTEL_SDK_DISABLED, OTEL_TRACES_SAMPLER[_ARG], OTEL_RESOURCE_ATTRIBUTES,
OTEL_SERVICE_NAME, OTEL_EXPORTER_OTLP_<SIGNAL>_HEADERS, OTEL_BSP_SCHEDULE_DELAY,
OTEL_METRIC_EXPORT_INTERVAL); mrdj's own variables (DEPLOYMENT_ENVIRONMENT,
OTEL_TRACES_SAMPLE_PERCENT, ...) only fill in what those leave unset (docs/telemetry.md).
Every function reads when called, never at import.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import unquote, urlsplit

from django.conf import settings

from mrdj import processes
from mrdj.config import ConfigError, Source, get_config
from mrdj.declarations import variable
from mrdj.flags import is_enabled
from mrdj.telemetry import workarounds

log = logging.getLogger("mrdj.telemetry")
VERSION = "0.1.0"
SERVICE_NAME = "mr-dj-backend"


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
    return TelemetryStatus("on", f"exporting {where}", processes.last_export() if with_last_export else None)


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


def signal_headers(signal: str, generic: dict[str, str]) -> dict[str, str]:
    """OTEL_EXPORTER_OTLP_<SIGNAL>_HEADERS in the environment replaces the generic headers, as
    the specification says: the exporter then reads it itself."""
    return {} if os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_HEADERS", "").strip() else generic


def own_or_standard(own: str, standard: str) -> int:
    """mrdj's variable when set (environment or managed.env); else the standard one, when set
    in the environment (whole milliseconds); else mrdj's default."""
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
    return variable(name).minimum or 0


def sampler():
    """OTEL_TRACES_SAMPLER (and _ARG) when set in the environment, as the SDK reads them;
    otherwise mrdj's OTEL_TRACES_SAMPLE_PERCENT as parentbased_traceidratio (at 100:
    parentbased_always_on, the specification's default)."""
    from opentelemetry.sdk.trace import sampling

    config = get_config()
    if os.environ.get("OTEL_TRACES_SAMPLER", "").strip():
        if config.lookup("OTEL_TRACES_SAMPLE_PERCENT")[1] is not Source.DEFAULT:
            log.warning("OTEL_TRACES_SAMPLER is set: OTEL_TRACES_SAMPLE_PERCENT is not used")
        return workarounds.sampler_from_environment()
    ratio = config.value("OTEL_TRACES_SAMPLE_PERCENT") / 100
    root = sampling.ALWAYS_ON if ratio >= 1 else sampling.TraceIdRatioBased(ratio)
    return sampling.ParentBased(root)


def resource(role: str):
    """The SDK's resource (OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME, the detectors) with
    mrdj's attributes as defaults: they fill only what the standard variables left unset."""
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource

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
        "service.instance.id": processes.own_name(),
        "deployment.environment": environment,
        "deployment.environment.name": environment,
        "mrdj.process.role": role,
    }
    return Resource.create({**defaults, **given, "service.name": service_name})

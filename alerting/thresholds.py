"""The limits each queue is held to: its admin row, else the default row, else the variables."""

from __future__ import annotations

from dataclasses import dataclass

from alerting.models import ALL_QUEUES, THRESHOLD_PAIRS, THRESHOLD_VARIABLES, Threshold
from mrdj.config import ConfigError, get_config


# Defaults of the ALERT_QUEUE_* variables (documented in managed.env.example).
@dataclass(frozen=True)
class Limits:
    warning_backlog: int
    critical_backlog: int
    warning_retry_age_ms: int
    critical_retry_age_ms: int
    dead_letter_warning: int

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def from_variables() -> dict[str, int]:
    """The ALERT_QUEUE_* variables; refuses a warning above its critical, naming both."""
    config = get_config()
    values = {field: config.value(name) for field, name in THRESHOLD_VARIABLES.items()}
    for warning, critical in THRESHOLD_PAIRS:
        if values[warning] > values[critical]:
            raise ConfigError(
                f"{THRESHOLD_VARIABLES[warning]}={values[warning]} is above "
                f"{THRESHOLD_VARIABLES[critical]}={values[critical]}: warning must not exceed critical"
            )
    return values


def _overlay(base: dict[str, int], row: Threshold | None) -> dict[str, int]:
    if row is None:
        return dict(base)
    return {field: base[field] if getattr(row, field) is None else getattr(row, field) for field in base}


def inherited(queue: str, rows: dict[str, Threshold] | None = None) -> dict[str, int]:
    """What a row for queue falls back to where it leaves a field empty."""
    variables = from_variables()
    if queue == ALL_QUEUES:
        return variables
    if rows is None:
        rows = {row.queue: row for row in Threshold.objects.filter(queue=ALL_QUEUES)}
    return _overlay(variables, rows.get(ALL_QUEUES))


def limits_by_queue(queues: list[str]) -> dict[str, Limits]:
    """Every queue's effective limits, in one query."""
    rows = {row.queue: row for row in Threshold.objects.all()}
    return {queue: Limits(**_overlay(inherited(queue, rows), rows.get(queue))) for queue in queues}


def pair_errors(row: Threshold) -> dict[str, str]:
    """A warning above its critical, after what the row inherits for its empty fields: the
    message for the field the operator filled in (the admin's form shows it on that field)."""
    fallback = inherited(row.queue)
    errors = {}
    for warning, critical in THRESHOLD_PAIRS:
        low, high = getattr(row, warning), getattr(row, critical)
        low = fallback[warning] if low is None else low
        high = fallback[critical] if high is None else high
        if low > high:
            field = warning if getattr(row, warning) is not None else critical
            errors[field] = (
                f"warning ({low}) must not be above critical ({high}): "
                f"{Threshold._meta.get_field(warning).verbose_name} is the lower limit"
            )
    return errors

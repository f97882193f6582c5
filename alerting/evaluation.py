"""Figures to conditions: which queue is in trouble, of what kind, how badly.

A source returns a Condition for every (queue, kind) it watches, clear ones
included (severity None), so the lifecycle knows what has recovered. Other parts
may add sources by appending to SOURCES.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from alerting.models import ALL_QUEUES, SEVERITY_RANK, Kind, Severity
from alerting.thresholds import Limits, limits_by_queue
from integrations import handoff, operations, stalls
from mrdj import telemetry
from mrdj.health import check_redis


@dataclass(frozen=True)
class Condition:
    queue: str
    kind: str
    severity: str | None  # None: clear
    payload: dict[str, Any] = field(default_factory=dict)


def _level(value: int, warning: int, critical: int) -> str | None:
    """At or above a limit; a limit of 0 is switched off."""
    if critical and value >= critical:
        return Severity.CRITICAL
    if warning and value >= warning:
        return Severity.WARNING
    return None


def judge_queue(queue: str, figures: dict[str, Any], limits: Limits) -> list[Condition]:
    payload = {"figures": figures, "limits": limits.as_dict()}
    return [
        Condition(
            queue,
            Kind.BACKLOG,
            _level(figures["backlog"], limits.warning_backlog, limits.critical_backlog),
            payload,
        ),
        Condition(
            queue,
            Kind.RETRY_AGE,
            _level(figures["retry_age_ms"], limits.warning_retry_age_ms, limits.critical_retry_age_ms),
            payload,
        ),
        Condition(
            queue,
            Kind.DEAD_LETTER,
            _level(figures["dead_letter"], limits.dead_letter_warning, 0),
            payload,
        ),
    ]


def queue_conditions(figures: dict[str, dict[str, Any]]) -> list[Condition]:
    """Each queue's figures against its limits."""
    limits = limits_by_queue(list(figures))
    return [condition for queue in figures for condition in judge_queue(queue, figures[queue], limits[queue])]


def circuit_conditions(figures: dict[str, dict[str, Any]]) -> list[Condition]:
    """An upstream whose circuit is open: one alert for the queue instead of one per failing job."""
    conditions = []
    for queue, numbers in figures.items():
        down = numbers.get("circuit", "closed") != "closed"
        doing = (
            f"holding {numbers['backlog']} waiting jobs without counting tries against them, "
            "sending one probe per interval; the first success closes the circuit and the backlog drains"
        )
        payload = {"figures": numbers, "last_error": numbers.get("last_error", ""), "doing": doing}
        conditions.append(Condition(queue, Kind.CIRCUIT_OPEN, Severity.CRITICAL if down else None, payload))
    return conditions


def stall_conditions(figures: dict[str, dict[str, Any]]) -> list[Condition]:
    """Due jobs that nothing takes (stalls.py), per queue, and no worker at all over Redis."""
    found = {stall.queue: stall for stall in stalls.current_stalls()}
    conditions = []
    for queue in [ALL_QUEUES, *figures]:
        stall = found.get(queue)
        numbers = figures.get(queue) or totals(figures)
        payload = {"figures": numbers, "reason": stall.reason if stall else ""}
        conditions.append(Condition(queue, Kind.STALLED, Severity.CRITICAL if stall else None, payload))
    return conditions


def totals(figures: dict[str, dict[str, Any]]) -> dict[str, int]:
    """All queues together, for the figures of an alert that concerns them all."""
    return {
        "backlog": sum(queue["backlog"] for queue in figures.values()),
        "active": sum(queue["active"] for queue in figures.values()),
        "retry_age_ms": max((queue["retry_age_ms"] for queue in figures.values()), default=0),
        "dead_letter": sum(queue["dead_letter"] for queue in figures.values()),
    }


def broker_conditions(figures: dict[str, dict[str, Any]]) -> list[Condition]:
    """Redis unreachable while the queue runs over it: nothing moves, whatever the figures say."""
    if not handoff.uses_broker():
        return [Condition(ALL_QUEUES, Kind.BROKER_UNREACHABLE, None)]
    check = check_redis()
    severity = None if check.ok else Severity.CRITICAL
    payload = {"figures": totals(figures), "check": check.detail}
    return [Condition(ALL_QUEUES, Kind.BROKER_UNREACHABLE, severity, payload)]


def telemetry_conditions(figures: dict[str, dict[str, Any]]) -> list[Condition]:
    """Telemetry on, and no process has exported for OTEL_SILENCE_ALERT_MS (runbook 'OTEL stil')."""
    if telemetry.status().state != "on":
        return [Condition(ALL_QUEUES, Kind.TELEMETRY_SILENT, None)]
    silent = telemetry.silent_for()
    limit = timedelta(milliseconds=telemetry.silence_ms())
    severity = Severity.WARNING if silent is not None and silent >= limit else None
    payload = {
        "figures": totals(figures),
        "silent_for_ms": int(silent.total_seconds() * 1000) if silent else 0,
    }
    return [Condition(ALL_QUEUES, Kind.TELEMETRY_SILENT, severity, payload)]


# Each takes the figures of every queue (those of /metrics/queues, read once per evaluation).
SOURCES: list[Callable[[dict[str, dict[str, Any]]], list[Condition]]] = [
    queue_conditions,
    circuit_conditions,
    stall_conditions,
    broker_conditions,
    telemetry_conditions,
]


def current_conditions() -> list[Condition]:
    figures = operations.queue_figures()["queues"]
    return [condition for source in SOURCES for condition in source(figures)]


def peak(payload: dict[str, Any], condition: Condition) -> dict[str, Any]:
    """The worst the alert has been: its highest severity, and the figures of the worst moment
    at that severity (the dossier reports it, not the figures of the last evaluation)."""
    current = {"severity": condition.severity, "figures": condition.payload.get("figures", {})}
    before = payload.get("peak")
    if not before:
        return current

    def weight(moment: dict[str, Any]) -> tuple[int, int]:
        return SEVERITY_RANK.get(moment["severity"] or None, 0), moment["figures"].get("backlog") or 0

    return current if weight(current) >= weight(before) else before

"""The circuit breaker, the upstream's pause and the rate limiter, as changes to an UpstreamState.

Pure functions: the caller holds the row's lock and saves it, in the same
transaction as the claim or the results they belong to. States as in the usual
breaker: closed (jobs flow), open (the upstream is down: jobs wait and no try
counts against them), half-open (one probe is out; its answer closes or reopens).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from integrations.delivery import Outcome, QueueSettings
from integrations.models import Circuit, UpstreamState
from integrations.queues import Limits

# How soon to look again when every slot is taken: a try finishing frees one.
FULL_RECHECK_SECONDS = 0.05
RATE_HORIZON = timedelta(seconds=1)  # a claim books rate slots at most this far ahead
# Slots are this much further apart than 1/rate: up to 50 ms of delay between mrdj starting a
# try and the upstream seeing it cannot then squeeze rate + 1 tries into one second there.
RATE_MARGIN = 1.05


def spacing_seconds(rate_per_s: float) -> float:
    return RATE_MARGIN / rate_per_s


@dataclass(frozen=True)
class Gate:
    """What a claim may take now."""

    allowed: int
    probe: bool = False
    wait_seconds: float | None = None  # when allowed is 0: how soon something may change


def admit(state: UpstreamState, limits: Limits, active: int, want: int, now: datetime) -> Gate:
    """How many jobs a claim may take: the pause, the circuit, the in-flight and rate limits."""
    if state.paused_until and state.paused_until > now:
        return Gate(0, wait_seconds=(state.paused_until - now).total_seconds())
    probe = state.circuit != Circuit.CLOSED
    if probe:
        if state.probe_at and state.probe_at > now:
            return Gate(0, wait_seconds=(state.probe_at - now).total_seconds())
        want = 1
    allowed = min(want, limits.max_in_flight - active)
    if allowed <= 0:
        return Gate(0, wait_seconds=FULL_RECHECK_SECONDS)
    if limits.rate_per_s:
        free_from = max(state.rate_next_at or now, now)
        room = (now + RATE_HORIZON - free_from).total_seconds()
        if room <= 0:
            return Gate(0, wait_seconds=-room)
        allowed = min(allowed, math.ceil(room / spacing_seconds(limits.rate_per_s)))
    return Gate(allowed, probe)


def take(
    state: UpstreamState, gate: Gate, claimed: int, limits: Limits, now: datetime, settings: QueueSettings
) -> list[float]:
    """Book what a claim took; returns each try's delay in seconds (its rate slot).

    Slots are (a little more than) 1/rate apart, so no window of one second sees more than
    rate tries.
    """
    if gate.probe:
        state.circuit = Circuit.HALF_OPEN
        interval = state.probe_interval_ms or settings.probe_ms
        state.probe_at = now + timedelta(milliseconds=interval)  # a lost probe is replaced then
    if not limits.rate_per_s:
        return [0.0] * claimed
    free_from = max(state.rate_next_at or now, now)
    spacing = spacing_seconds(limits.rate_per_s)
    state.rate_next_at = free_from + timedelta(seconds=claimed * spacing)
    start = (free_from - now).total_seconds()
    return [start + n * spacing for n in range(claimed)]


def record(
    state: UpstreamState, outcome: Outcome, now: datetime, settings: QueueSettings, probe: bool
) -> tuple[bool, str | None]:
    """Learn from one try's answer. Returns whether the try counts against its job, and
    "opened" or "closed" when the circuit changed."""
    if not outcome.delivered:
        state.last_error, state.last_error_at = outcome.error[:500], now
    if outcome.upstream_down:
        state.failures += 1
        if state.circuit == Circuit.CLOSED:
            if state.failures < settings.breaker_failures:
                return True, None
            state.circuit, state.opened_at = Circuit.OPEN, now
            _next_probe(state, now, settings.probe_ms)
            return False, "opened"
        if probe:  # the probe failed: wait longer before the next one
            state.circuit = Circuit.OPEN
            interval = min((state.probe_interval_ms or settings.probe_ms) * 2, settings.probe_max_ms)
            _next_probe(state, now, interval)
        return False, None
    if outcome.status_code is None:
        return True, None  # mrdj's own problem (no upstream URL): says nothing about the upstream
    # The upstream answered: it is up, whatever it said.
    state.failures = 0
    event = None
    if state.circuit != Circuit.CLOSED:
        state.circuit, state.opened_at, state.probe_at, state.probe_interval_ms = (
            Circuit.CLOSED,
            None,
            None,
            0,
        )
        event = "closed"
    if outcome.pauses:
        until = now + timedelta(milliseconds=outcome.retry_after_ms)
        state.paused_until = max(state.paused_until or until, until)
        return False, event
    return True, event


def lift(state: UpstreamState, now: datetime) -> None:
    """An operator's flush: end the pause and probe at once; a refusal brings both back."""
    state.paused_until = None
    if state.circuit != Circuit.CLOSED:
        state.probe_at = now


def _next_probe(state: UpstreamState, now: datetime, interval_ms: int) -> None:
    state.probe_interval_ms = interval_ms
    state.probe_at = now + timedelta(milliseconds=interval_ms)

"""The dead-man's switch: an outside monitor (healthchecks.io or alike, HEARTBEAT_URL) pages
when mrdj stops saying it is well, so that mrdj, its beat or its database being down pages
someone although mrdj itself can no longer send anything.

Every HEARTBEAT_INTERVAL_MS, beat's alerting.deadman_ping task (or, while the queue runs
in-process and there is no beat, each web process's evaluator loop) judges what mrdj records:
the alert evaluation ran within HEARTBEAT_STALE_MS, and so did the reconciler (beat's
reconcile task over Redis; the in-process worker's heartbeat in-process). Well: a POST to
HEARTBEAT_URL. Not: a POST to <HEARTBEAT_URL>/fail whose plain-text body names what is wrong
(healthchecks.io keeps the first 100 kB as the ping's log: https://healthchecks.io/docs/attaching_logs/).
No ping at all is what the monitor pages on after its period and grace.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

from django.db import DatabaseError
from django.utils import timezone

from alerting import sender
from integrations import handoff
from mrdj import http, processes, pulses
from mrdj.config import get_config
from mrdj.times import human_delta

log = logging.getLogger(__name__)

# A duty this process has never seen run is judged from its start: no failure ping while a
# freshly deployed beat and worker have not had the time to run it once.
_started_at = timezone.now()
_next_ping = 0.0  # monotonic: when this process's evaluator loop may ping again
_lock = threading.Lock()


@dataclass(frozen=True)
class Report:
    lines: tuple[str, ...]  # one per duty, as the ping's log shows it
    problems: tuple[str, ...]  # the lines of the duties that are late

    @property
    def healthy(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class Ping:
    report: Report
    status: int | None  # the monitor's answer; None when it gave none
    error: str = ""


def on_evaluated(sender, now: datetime, **kwargs) -> None:
    """Signal receiver (alerting.signals.evaluated): the evaluation ran, on the real clock."""
    pulses.beat(pulses.EVALUATION)


def fail_url(url: str) -> str:
    """<url>/fail, before any query string (https://healthchecks.io/docs/signaling_failures/)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/fail"))


def _whole_seconds(delta: timedelta) -> str:
    return human_delta(timedelta(seconds=int(delta.total_seconds())))


def _judge(duty: str, last: datetime | None, hint: str, now: datetime, limit: timedelta) -> tuple[str, bool]:
    """The duty's line, and whether it is late."""
    settled = now - _started_at > limit  # up long enough to expect a run
    if last is None:
        return (
            (f"{duty}: no run recorded: {hint}", True) if settled else (f"{duty}: no run recorded yet", False)
        )
    line = f"{duty}: last ran {_whole_seconds(now - last)} ago"
    if now - last > limit and settled:
        return f"{line}, over HEARTBEAT_STALE_MS ({human_delta(limit)}): {hint}", True
    return line, False


def report(now: datetime | None = None) -> Report:
    """The duties the monitor vouches for, each judged against HEARTBEAT_STALE_MS."""
    now = now or timezone.now()
    limit = get_config().duration("HEARTBEAT_STALE_MS")
    judged = [
        _judge(
            pulses.EVALUATION,
            pulses.last(pulses.EVALUATION),
            "alerts cannot fire; look for errors in the workers' and web processes' logs",
            now,
            limit,
        )
    ]
    if handoff.uses_broker():
        reconciled = pulses.last(pulses.RECONCILER)
        judged.append(
            _judge(
                "reconciler",
                reconciled,
                "jobs are not handed to workers; are `celery -A mrdj beat` and a worker running?",
                now,
                limit,
            )
        )
    else:
        beaten = processes.last_seen("in-process")
        judged.append(
            _judge(
                "in-process worker",
                beaten,
                "jobs are not delivered; look for errors in the web process's log",
                now,
                limit,
            )
        )
    return Report(tuple(line for line, _ in judged), tuple(line for line, late in judged if late))


def ping(now: datetime | None = None) -> Ping | None:
    """Judge and tell the monitor; None when HEARTBEAT_URL is empty. Never raises for the
    monitor's sake: a failed ping is logged and the next interval pings again."""
    config = get_config()
    url = config.value("HEARTBEAT_URL")
    if not url:
        return None
    try:
        found = report(now)
    except DatabaseError as error:
        line = f"database: mrdj cannot read its records ({type(error).__name__})"
        found = Report((line,), (line,))
    body = "\n".join(found.problems or found.lines) + "\n"
    target = url if found.healthy else fail_url(url)
    if not found.healthy:
        log.error("dead-man's switch: sending the failure ping: %s", "; ".join(found.problems))
    try:
        answer = http.request(
            "POST",
            target,
            text=body,
            connect_timeout=config.value("ALERT_HTTP_CONNECT_TIMEOUT_MS") / 1000,
            read_timeout=config.value("ALERT_HTTP_READ_TIMEOUT_MS") / 1000,
        )
    except http.HttpError as error:  # its message never holds the URL, a secret
        log.warning("dead-man's switch: HEARTBEAT_URL did not answer: %s", error)
        return Ping(found, None, str(error))
    if not 200 <= answer.status < 300:
        log.warning("dead-man's switch: HEARTBEAT_URL answered %s", answer.status)
        return Ping(found, answer.status, f"answered {answer.status}")
    return Ping(found, answer.status)


def ping_if_due() -> bool:
    """From the evaluator loop: at most one ping per HEARTBEAT_INTERVAL_MS from this process,
    sent from the alert sender's threads so that a slow monitor never holds up an evaluation."""
    global _next_ping
    config = get_config()
    if not config.value("HEARTBEAT_URL"):
        return False
    with _lock:
        if time.monotonic() < _next_ping:
            return False
        _next_ping = time.monotonic() + config.value("HEARTBEAT_INTERVAL_MS") / 1000
    sender.in_background(ping)
    return True

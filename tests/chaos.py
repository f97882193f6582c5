"""Faults under a steady stream of intake: the parts shared by tests/test_faults.py and
bench/chaos.py (the stream, the faults, the tally)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import requests

from tests.processes import wait_until


@dataclass
class IntakeResults:
    statuses: Counter = field(default_factory=Counter)
    accepted: dict[str, float] = field(default_factory=dict)  # key: time.monotonic() when sent
    server_errors: list[str] = field(default_factory=list)  # status and body, 503 excepted
    unreachable: int = 0  # the request got no answer at all


class SteadyIntake(threading.Thread):
    """Sends one job per tick to POST /integrations/<queue>/jobs, each with its own
    Idempotency-Key, and records every answer."""

    def __init__(self, base_url: str, token: str, per_second: float, queue: str = "rentguy", prefix="chaos"):
        super().__init__(name="steady-intake", daemon=True)
        self.url = f"{base_url}/integrations/{queue}/jobs"
        self.token = token
        self.every = 1 / per_second
        self.prefix = prefix
        self.results = IntakeResults()
        self._stopping = threading.Event()
        self.sent = 0

    def run(self) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.token}"
        next_at = time.monotonic()
        while not self._stopping.is_set():
            key = f"{self.prefix}-{self.sent}"
            self._send(session, key)
            self.sent += 1
            next_at += self.every
            self._stopping.wait(max(0.0, next_at - time.monotonic()))
        session.close()

    def _send(self, session: requests.Session, key: str) -> None:
        body = {"payload": {"key": key, "name": "Bruiloft Jansen"}, "idempotency_key": key}
        sent_at = time.monotonic()
        try:
            answer = session.post(self.url, json=body, timeout=10)
        except requests.RequestException:
            self.results.unreachable += 1
            return
        self.results.statuses[answer.status_code] += 1
        if answer.status_code in (200, 202):
            self.results.accepted[key] = sent_at
        elif answer.status_code >= 500 and answer.status_code != 503:
            self.results.server_errors.append(f"{answer.status_code} {answer.text[:200]}")

    def stop(self) -> IntakeResults:
        self._stopping.set()
        self.join(30)
        return self.results


@dataclass(frozen=True)
class Tally:
    accepted: int
    delivered: int
    lost: int
    duplicates: int  # deliveries beyond the first of a key (at-least-once allows some)
    server_errors: int
    unavailable: int  # 503 answers (the database unreachable): the client retries later
    caught_up: float  # seconds from the end of the fault until every job accepted by then arrived
    worst_latency: float  # seconds from a job's intake to its first delivery, the longest

    def line(self) -> str:
        return (
            f"accepted {self.accepted}, delivered {self.delivered}, lost {self.lost}, "
            f"duplicates {self.duplicates}, 5xx {self.server_errors} (+{self.unavailable} 503), "
            f"caught up {self.caught_up:.1f} s after the fault, worst latency {self.worst_latency:.1f} s"
        )


def first_deliveries(receiver) -> dict[str, float]:
    """Each Idempotency-Key the upstream received, with when it first arrived."""
    first: dict[str, float] = {}
    for request, arrived in zip(list(receiver.received), list(receiver.arrivals), strict=False):
        first.setdefault(request.headers.get("Idempotency-Key"), arrived)
    return first


def tally(results: IntakeResults, receiver, fault_ended: float) -> Tally:
    first = first_deliveries(receiver)
    counts = Counter(request.headers.get("Idempotency-Key") for request in list(receiver.received))
    delivered = {key: sent for key, sent in results.accepted.items() if key in first}
    before_end = [first[key] for key, sent in delivered.items() if sent <= fault_ended]
    return Tally(
        accepted=len(results.accepted),
        delivered=len(delivered),
        lost=len(results.accepted) - len(delivered),
        duplicates=sum(counts[key] - 1 for key in delivered),
        server_errors=len(results.server_errors),
        unavailable=results.statuses[503],
        caught_up=max(max(before_end, default=fault_ended) - fault_ended, 0.0),
        worst_latency=max((first[key] - sent for key, sent in delivered.items()), default=0.0),
    )


def wait_delivered(results: IntakeResults, receiver, timeout: float) -> None:
    """Wait until every accepted job reached the upstream."""
    wait_until(
        lambda: results.accepted.keys() <= first_deliveries(receiver).keys(),
        timeout,
        interval=0.05,
        message=f"not every accepted job delivered within {timeout} s",
    )


def terminate_connections(database_url: str) -> int:
    """pg_terminate_backend of every connection to the database, as an operator or a
    failover would; how many were cut."""
    base, _, name = database_url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchall()
    return len(rows)


def group_rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (a Celery worker and its pool), in MB."""
    total, pids = 0, [pid]
    while pids:
        current = pids.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        total += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        pids.extend(int(child) for child in children)
    return total / 1024

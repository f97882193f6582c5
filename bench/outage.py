"""An upstream down for 30 minutes, then back: what the delivery engine sends it, what it
dead-letters, and how long the backlog takes to drain afterwards. Time is simulated.

    .venv/bin/python bench/outage.py [--jobs 2000] [--rounds 3] [--minutes 30] [--down 503|refused]

The engine (integrations.engine.Engine, 64 threads: the default QUEUE_WORKER_THREADS and
QUEUE_RENTGUY_MAX_IN_FLIGHT) runs in this process against PostgreSQL, one drain after
another as the Celery drain task runs it (exit_when_idle); every other setting at its
default. The upstream (bench/outage_upstream.py, its own process) answers 503 without
Retry-After while down, or with --down refused is not listening at all; once back it
answers 200 after --delay-ms (50).

The simulated clock: rather than wait between two drains, the benchmark moves every stored
moment the engine compares with "now" into the past by the time to the next event (the
next due job, or the breaker's next probe; at least --tick, 0.5 s), in one transaction:
next_attempt_at of every waiting job and the queue's UpstreamState times (no job is in
flight between drains). Simulated time = wall time since the outage began + those moves.

Per round (rounds alternate, medians printed): baseline, N jobs accepted with the upstream
up and drained (wall time to the last delivery); outage, N jobs accepted with it down, 30
simulated minutes, then back: the wait until the breaker's next probe is printed and
skipped, and the drain timed from that probe to the last delivery. Printed: jobs
dead-lettered (target 0), tries the upstream received (in total, before the circuit
opened, and per probe interval after: target one), the drain time as a ratio to the
baseline's. Once, for contrast, QUEUE_BREAKER_FAILURES=1000000 (the circuit never opens).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import outage_upstream
from bench.common import empty_queue_tables, free_port, setup_django

QUEUE = "rentguy"
THREADS = 64
MAX_DRAINS = 200  # a drain that keeps returning with work left is a failure, not a slow run


@dataclass
class Step:
    at: float  # simulated seconds since the outage began, when the drain started
    tries: int
    counted: int  # of which counted against their job's attempts
    circuit: str  # after the drain
    interval_ms: int  # the breaker's probe interval after the drain
    ended: str


@dataclass
class Outage:
    steps: list[Step] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    max_attempts: int = 0
    received: int | None = None  # counted by the upstream itself (503 mode)

    @property
    def tries(self) -> int:
        return sum(step.tries for step in self.steps)

    @property
    def opened(self) -> int | None:
        """Index of the drain after which the circuit was first open."""
        return next((n for n, step in enumerate(self.steps) if step.circuit != "closed"), None)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--down", choices=("503", "refused"), default="503")
    parser.add_argument("--delay-ms", type=int, default=50, help="the upstream's answer time once back")
    parser.add_argument("--tick", type=float, default=0.5, help="smallest step of the simulated clock (s)")
    parser.add_argument("--no-contrast", action="store_true", help="skip the old behaviour's run")
    args = parser.parse_args()

    setup_django(FLAG_RENTGUY_INTEGRATION="on", QUEUE_REDIS_ENABLED="false")
    bench = Bench(args)
    try:
        run(bench, args)
    finally:
        bench.close()


def run(bench: Bench, args) -> None:
    baselines, drains, ratios, waits = [], [], [], []
    for round_number in range(1, args.rounds + 1):
        baseline = bench.baseline()
        outage, probe_wait, drain = bench.outage()
        baselines.append(baseline)
        drains.append(drain)
        waits.append(probe_wait)
        ratios.append(drain / baseline)
        print(f"round {round_number}:")
        print(f"  baseline: {args.jobs} jobs drained with no outage in {baseline:.2f} s")
        report(outage, args)
        print(
            f"  upstream back: recovery to drained {probe_wait + drain:.1f} s = the breaker's next "
            f"probe {probe_wait:.1f} s later (simulated) + from that probe to drained {drain:.2f} s "
            f"(wall); ratio drain-after-outage / drain-without-outage {ratios[-1]:.2f}",
            flush=True,
        )
        for note in bench.notes:
            print(note, flush=True)
        bench.notes.clear()
    print(
        f"median: baseline drain {statistics.median(baselines):.2f} s, drain after the outage "
        f"{statistics.median(drains):.2f} s, ratio {statistics.median(ratios):.2f}; "
        f"wait for the first probe after recovery {statistics.median(waits):.1f} s (simulated)"
    )
    if not args.no_contrast:
        old = bench.outage(breaker_failures="1000000", recover=False)[0]
        print(
            f"old behaviour (QUEUE_BREAKER_FAILURES=1000000, the circuit never opens), same {args.jobs} jobs:"
        )
        report(old, args, old=True)


def report(outage: Outage, args, old: bool = False) -> None:
    minutes = f"{args.minutes:g} simulated minutes"
    dead = outage.statuses.get("dead", 0)
    counted = sum(step.counted for step in outage.steps)
    print(
        f"  over {minutes}: {dead} of {args.jobs} jobs dead-lettered"
        + ("" if old else " (target 0)")
        + f", {outage.tries} tries sent to the dead upstream ({counted} counted against jobs; "
        f"most attempts on one job {outage.max_attempts}); jobs now {outage.statuses}"
    )
    if outage.received is not None and outage.received != outage.tries:
        print(
            f"  !! the upstream received {outage.received} requests, the engine recorded {outage.tries} tries"
        )
    if old:
        last = max((step.at for step in outage.steps if step.tries), default=0.0)
        print(f"  drains run: {len(outage.steps)}; the last try at {last / 60:.1f} simulated minutes")
        return
    opened = outage.opened
    if opened is None:
        print("  !! the circuit never opened")
        return
    before = outage.steps[: opened + 1]
    print(
        f"  before the circuit opened: {sum(s.tries for s in before)} tries in {len(before)} drain(s) "
        f"({sum(s.counted for s in before)} counted against jobs)"
    )
    probes = outage.steps[opened + 1 :]
    rows, previous = [], outage.steps[opened]
    for step in probes:
        gap = step.at - previous.at
        rows.append(f"{gap:.0f} s: {step.tries}")
        previous = step
    per_interval = [step.tries for step in probes]
    verdict = "one per interval: met" if per_interval and set(per_interval) == {1} else "NOT one per interval"
    print(f"  after it opened: {len(probes)} probe intervals, tries per interval (interval length: tries):")
    print("    " + ", ".join(rows))
    print(f"  {sum(per_interval)} tries in {len(probes)} intervals ({verdict})")


class Bench:
    def __init__(self, args):
        from integrations.engine import Engine

        self.args = args
        self.engine = Engine(THREADS)
        self.port = free_port()  # the upstream's, whenever it listens
        self._stack = contextlib.ExitStack()
        self._upstream: outage_upstream.Upstream | None = None
        self.notes: list[str] = []  # printed with the round

    # --- the upstream

    def close(self) -> None:
        self._stack.close()

    def set_upstream(self, mode: str) -> outage_upstream.Upstream | None:
        """Bring the upstream "up" or "down". Answering 503, it is one process switching mode,
        so its connections live on; refusing, it is a process only while up."""
        if mode == "down" and self.args.down == "refused":
            if self._upstream is not None:
                self._stack.close()
                self._upstream = None
            return None
        if self._upstream is None:
            self._upstream = self._stack.enter_context(
                outage_upstream.running(self.port, mode, self.args.delay_ms)
            )
        self._upstream.set(mode)
        return self._upstream

    def point_at_upstream(self) -> None:
        from mrdj.config import get_config

        get_config().store.set("RENTGUY_API_URL", f"http://127.0.0.1:{self.port}/leads")

    # --- the database

    def reset(self, **managed: str | None) -> None:
        from integrations.models import UpstreamState
        from mrdj.config import get_config

        empty_queue_tables()
        UpstreamState.objects.all().delete()
        get_config().store.update({"QUEUE_BREAKER_FAILURES": None, **managed})
        self.point_at_upstream()

    def accept(self) -> None:
        from integrations import operations
        from integrations.models import Job
        from integrations.queues import QUEUES

        for start in range(0, self.args.jobs, 500):
            items = [
                ({"lead": n, "name": "Bruiloft Jansen", "guests": 120}, None)
                for n in range(start, min(start + 500, self.args.jobs))
            ]
            operations.enqueue_many(QUEUES[QUEUE], items)
        if Job.objects.filter(queue=QUEUE).count() != self.args.jobs:
            raise SystemExit("not every job was stored")

    def statuses(self) -> dict[str, int]:
        from django.db.models import Count

        from integrations.models import Job

        rows = Job.objects.filter(queue=QUEUE).values_list("status").annotate(n=Count("pk"))
        return dict(rows.values_list("status", "n"))

    def attempts(self) -> tuple[int, int]:
        """Tries recorded so far, and how many of them counted against their job."""
        from django.db.models import Count, Q

        from integrations.models import Attempt

        figures = Attempt.objects.aggregate(tries=Count("pk"), counted=Count("pk", filter=Q(counted=True)))
        return figures["tries"], figures["counted"]

    def state(self):
        from integrations.models import UpstreamState

        return UpstreamState.objects.filter(queue=QUEUE).first()

    def shift(self, seconds: float) -> None:
        """Advance the simulated clock: every stored moment compared with now moves back."""
        from django.db import transaction
        from django.db.models import F

        from integrations.models import WAITING, Job, UpstreamState

        delta = timedelta(seconds=seconds)
        with transaction.atomic():
            Job.objects.filter(queue=QUEUE, status__in=WAITING).update(
                next_attempt_at=F("next_attempt_at") - delta
            )
            UpstreamState.objects.filter(queue=QUEUE).update(
                **{
                    name: F(name) - delta
                    for name in ("probe_at", "paused_until", "rate_next_at", "opened_at", "last_error_at")
                }
            )

    def next_event(self) -> float | None:
        """Seconds until something can happen: the next probe while the circuit is open (or
        the end of a pause), else the next due job. None when nothing waits."""
        from django.utils import timezone

        from integrations.models import WAITING, Circuit, Job

        now = timezone.now()
        due = (
            Job.objects.filter(queue=QUEUE, status__in=WAITING)
            .order_by("next_attempt_at")
            .values_list("next_attempt_at", flat=True)
            .first()
        )
        if due is None:
            return None
        moments = [due]
        state = self.state()
        if state is not None:
            if state.circuit != Circuit.CLOSED and state.probe_at:
                moments.append(state.probe_at)
            if state.paused_until:
                moments.append(state.paused_until)
        return (max(moments) - now).total_seconds()

    # --- the engine

    def drain_once(self):
        from integrations.engine import enabled

        return self.engine.run(enabled([QUEUE]), exit_when_idle=True)

    def drain(self) -> tuple[float, list]:
        """Drain until every job is delivered; wall seconds, and each drain's Stats."""
        runs = []
        started = time.perf_counter()
        while True:
            runs.append(self.drain_once())
            statuses = self.statuses()
            if set(statuses) == {"done"}:
                return time.perf_counter() - started, runs
            if len(runs) >= MAX_DRAINS:
                raise SystemExit(f"not drained after {len(runs)} drains: {statuses}, {runs[-1]}")

    # --- the phases

    def baseline(self) -> float:
        self.reset()
        self.accept()
        self.set_upstream("up")
        seconds, runs = self.drain()
        self.check_drains(runs, "baseline")
        return seconds

    def outage(
        self, breaker_failures: str | None = None, recover: bool = True
    ) -> tuple[Outage, float, float]:
        self.reset(QUEUE_BREAKER_FAILURES=breaker_failures)
        self.accept()
        upstream = self.set_upstream("down")
        received = upstream.counts()[0] if upstream else 0
        outage = self.simulate()
        if upstream is not None:
            outage.received = upstream.counts()[0] - received
        outage.statuses = self.statuses()
        from django.db.models import Max

        from integrations.models import Job

        outage.max_attempts = Job.objects.aggregate(most=Max("attempts"))["most"] or 0
        if not recover:
            return outage, 0.0, 0.0
        from django.utils import timezone

        self.set_upstream("up")
        state = self.state()
        probe_wait = max((state.probe_at - timezone.now()).total_seconds(), 0.0) if state.probe_at else 0.0
        self.shift(probe_wait)
        seconds, runs = self.drain()
        self.check_drains(runs, "after the outage")
        return outage, probe_wait, seconds

    def simulate(self) -> Outage:
        outage = Outage()
        end = self.args.minutes * 60
        started, offset = time.monotonic(), 0.0
        tries, counted = self.attempts()
        while True:
            at = time.monotonic() - started + offset
            stats = self.drain_once()
            now_tries, now_counted = self.attempts()
            state = self.state()
            outage.steps.append(
                Step(
                    at,
                    now_tries - tries,
                    now_counted - counted,
                    state.circuit,
                    state.probe_interval_ms,
                    stats.ended,
                )
            )
            tries, counted = now_tries, now_counted
            wait = self.next_event()
            if wait is None:
                return outage  # nothing waits any more
            elapsed = time.monotonic() - started + offset
            if wait <= 0 and outage.steps[-1].tries:
                continue  # due already: drain again at once
            step = max(wait, self.args.tick)
            if elapsed + step >= end:
                self.shift(max(end - elapsed, 0.0))
                return outage
            self.shift(step)
            offset += step

    def check_drains(self, runs: list, phase: str) -> None:
        """A drain that ended with work left (rather than the queue idle) is worth a word."""
        for n, stats in enumerate(runs[:-1]):
            self.notes.append(
                f"  note ({phase}): drain {n + 1} of {len(runs)} ended {stats.ended!r}"
                + (f" (held {stats.held_seconds:.1f} s)" if stats.ended == "held" else "")
                + f" after {stats.tried} tries, with jobs still waiting"
            )


if __name__ == "__main__":
    main()

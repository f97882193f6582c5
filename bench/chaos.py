"""Three faults under a steady stream of intake, and what each costs.

    .venv/bin/python bench/chaos.py [--rate 50] [--before 10] [--after 10] [--faults database redis worker]

Needs PostgreSQL (BENCH_DATABASE_URL) and redis-server on the PATH. Runs mrdj as in
production: gunicorn 2 workers x 4 threads (the in-process worker off), `celery -A mrdj
worker --concurrency 4 --beat`, a Redis server of its own (so that it can be stopped), and
a local upstream that records every Idempotency-Key (tests/receivers.py). A client sends
--rate single-job intake requests per second, each with its own key, for the whole phase.

Phases, in this order, each on empty tables:
- baseline: no fault; --before + --after seconds of intake.
- database: --before s, then pg_terminate_backend of every connection to mrdj's database
  (web, worker, beat) three times, 5 s apart, then --after s.
- redis: --before s, then Redis stopped for 10 s and started again empty, then --after s.
- worker: --before s, then `kill -9` of the worker and its pool; it stays down until mrdj
  raises its 'stalled' alert (what pages the on-call engineer), then is started again, as
  systemd's Restart=always would; then --after s.

Printed per phase: requests accepted, delivered, lost (accepted, never delivered),
duplicates (deliveries beyond the first of a key: at-least-once), 5xx other than 503 (and
503s, which tell the client to retry), "caught up": seconds from the end of the fault
until every job accepted by then had reached the upstream, the worst latency from intake
to first delivery, each beside the baseline's (the same measures with no fault, at the
same point of its stream), and the worker's resident memory (main process and pool)
before the fault and after the phase.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import empty_queue_tables, gunicorn, setup_django
from tests.chaos import SteadyIntake, group_rss_mb, tally, terminate_connections, wait_delivered
from tests.processes import CeleryWorker, PrivateRedis, wait_until
from tests.receivers import Receiver

TOKEN = "bench-token"
FAULTS = ("database", "redis", "worker")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=50.0, help="intake requests per second")
    parser.add_argument("--before", type=float, default=10.0, help="seconds of intake before the fault")
    parser.add_argument("--after", type=float, default=10.0, help="seconds of intake after the fault")
    parser.add_argument("--faults", nargs="+", choices=FAULTS, default=list(FAULTS))
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="mrdj-chaos-"))
    redis_server = PrivateRedis(folder).start()
    with Receiver() as upstream:
        env = setup_django(
            FLAG_RENTGUY_INTEGRATION="on",
            QUEUE_REDIS_ENABLED="true",
            INTEGRATIONS_API_TOKEN=TOKEN,
            RENTGUY_API_URL=upstream.url + "/leads",
        )
        env["REDIS_URL"] = redis_server.url()
        forget_earlier_runs()
        bench = Chaos(args, env, folder, redis_server, upstream)
        try:
            bench.run()
        finally:
            bench.worker.stop()
            redis_server.stop()
    print(f"logs: {folder}")


def forget_earlier_runs() -> None:
    """An alert still open from a run before (resolution waits ALERT_RESOLVE_QUIET_MS) would
    hide the page this run measures; the bench database holds nothing else of value."""
    from alerting.models import Alert
    from incidents.models import Incident
    from mrdj.models import Process

    Incident.objects.all().delete()
    Alert.objects.all().delete()
    Process.objects.all().delete()


class Chaos:
    def __init__(self, args, env: dict[str, str], folder: Path, redis_server: PrivateRedis, upstream):
        self.args = args
        self.env = env
        self.folder = folder
        self.redis = redis_server
        self.upstream = upstream
        self.worker = self._new_worker()
        self.baseline = None  # the Tally of the phase without a fault

    def _new_worker(self) -> CeleryWorker:
        return CeleryWorker(self.env, self.folder / "worker.log", concurrency=4, beat=True)

    def run(self) -> None:
        self.worker.start()
        with gunicorn(self.env, workers=2, threads=4) as port:
            base_url = f"http://127.0.0.1:{port}"
            print(
                f"{'phase':<9} {'accepted':>8} {'delivered':>9} {'lost':>4} {'dupl':>4} {'5xx':>3} {'503':>3}"
                f"  {'caught up':>9} {'(baseline)':>10}  {'worst latency':>13} {'(baseline)':>10}"
                "  worker RSS before -> after"
            )
            for phase in ("baseline", *self.args.faults):
                self.phase(phase, base_url)

    def phase(self, name: str, base_url: str) -> None:
        empty_queue_tables()
        self.upstream.received.clear()
        self.upstream.arrivals.clear()
        intake = SteadyIntake(base_url, TOKEN, self.args.rate, prefix=f"{name}-{time.time():.0f}")
        intake.start()
        self.keep_streaming(intake, self.args.before)
        rss_before = group_rss_mb(self.worker.process.pid)
        note = getattr(self, f"fault_{name}", lambda: "")()
        fault_ended = time.monotonic()
        self.keep_streaming(intake, self.args.after)
        results = intake.stop()
        wait_delivered(results, self.upstream, timeout=300)
        figures = tally(results, self.upstream, fault_ended)
        if name == "baseline":
            self.baseline = figures
        rss_after = group_rss_mb(self.worker.process.pid)
        print(
            f"{name:<9} {figures.accepted:>8} {figures.delivered:>9} {figures.lost:>4} "
            f"{figures.duplicates:>4} {figures.server_errors:>3} {figures.unavailable:>3}"
            f"  {figures.caught_up:>7.2f} s {self.baseline.caught_up:>8.2f} s"
            f"  {figures.worst_latency:>11.2f} s {self.baseline.worst_latency:>8.2f} s"
            f"  {rss_before:>6.0f} MB -> {rss_after:.0f} MB" + (f"  [{note}]" if note else ""),
            flush=True,
        )
        for problem in results.server_errors[:3]:
            print(f"          5xx: {problem}")

    def keep_streaming(self, intake: SteadyIntake, seconds: float) -> None:
        sent = intake.sent
        wait_until(lambda: intake.sent >= sent + seconds * self.args.rate, seconds + 60, interval=0.05)

    # --- the faults; each returns a note for its line

    def fault_database(self) -> str:
        cut = []
        for _ in range(3):
            cut.append(terminate_connections(self.env["DATABASE_URL"]))
            time.sleep(5)  # the fault's own rhythm, not a wait for a condition
        from django.db import connection

        connection.close()
        return f"connections cut: {', '.join(map(str, cut))}"

    def fault_redis(self) -> str:
        self.redis.stop()
        time.sleep(10)  # the outage itself
        self.redis.start()
        return "Redis down 10 s, back empty"

    def fault_worker(self) -> str:
        from django.utils import timezone

        from alerting.models import Alert, Kind

        self.worker.kill()
        killed, since = time.monotonic(), timezone.now()
        stalled = Alert.objects.filter(kind=Kind.STALLED, state=Alert.State.FIRING, started_at__gte=since)
        alert = wait_until(stalled.first, 120, interval=0.2)
        paged = time.monotonic() - killed
        self.worker = self._new_worker().start()
        return f"paged {paged:.0f} s after the kill ({alert.payload.get('reason', '')[:45]}...), restarted"


if __name__ == "__main__":
    main()

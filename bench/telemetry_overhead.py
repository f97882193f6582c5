"""Median latency of POST /integrations/<queue>/jobs with telemetry off, on with a collector up,
and on with the collector down, as ratios to off, all measured in the same run.

    .venv/bin/python bench/telemetry_overhead.py [--seconds 2] [--rounds 15]

Production shape: gunicorn (1 worker, 4 threads) on PostgreSQL with the queue over
Redis, loaded by one closed-loop client with 4 keep-alive connections. The server spans
come from opentelemetry-instrumentation-django (its middleware, as listed in
settings.MIDDLEWARE), the query spans from mrdj's database hook, as in production. Each
configuration has its own gunicorn, its settings in its environment (telemetry is
installed at start-up); all of them run side by side:

- off: telemetry not configured (no endpoints): the baseline;
- up: on, exporting to a local collector that answers 200 at once (its own process);
- down: on, the endpoints pointing at a closed port (connection refused);
- switched off: configured, FLAG_TELEMETRY off (instrumented, nothing sampled), for information.

Each round loads every server in turn for a short burst, in a new order each round, so a
shared machine's drift (which moved the baseline by 15 % between runs minutes apart) falls
on all configurations alike; each figure is the median of a configuration's burst medians.
Target: up / off and down / off <= 1.20.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import load
from bench.common import ROOT, empty_queue_tables, free_port, gunicorn, setup_django

TOKEN = "bench-telemetry-token"
TARGET = 1.20
COLLECTOR = """
import http.server, sys
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def configurations(collector_port: int, closed_port: int) -> dict[str, dict[str, str]]:
    def on(port: int) -> dict[str, str]:
        return {
            "FLAG_TELEMETRY": "on",
            "OTEL_ENABLED": "true",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://127.0.0.1:{port}/v1/traces",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": f"http://127.0.0.1:{port}/v1/metrics",
        }

    return {
        "off": dict.fromkeys(on(0), "") | {"FLAG_TELEMETRY": "off", "OTEL_ENABLED": "false"},
        "up": on(collector_port),
        "down": on(closed_port),
        "switched off": {**on(collector_port), "FLAG_TELEMETRY": "off"},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one burst")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--configs", default="off,up,down,switched off", help="comma-separated subset")
    parser.add_argument("--sample-percent", default="100", help="OTEL_TRACES_SAMPLE_PERCENT of the 'on' runs")
    args = parser.parse_args()
    env = setup_django(
        QUEUE_REDIS_ENABLED="true", INTEGRATIONS_API_TOKEN=TOKEN, FLAG_RENTGUY_INTEGRATION="on"
    )
    import redis
    from django.conf import settings

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    collector = subprocess.Popen([sys.executable, "-c", COLLECTOR], stdout=subprocess.PIPE, cwd=ROOT)
    try:
        collector_port = int(collector.stdout.readline())
        wanted = args.configs.split(",")
        configs = {
            k: v for k, v in configurations(collector_port, free_port()).items() if k in wanted or k == "off"
        }
        sampled = {"OTEL_TRACES_SAMPLE_PERCENT": args.sample_percent}
        body = json.dumps(
            {"payload": {"lead": "Bruiloft Jansen", "date": "2027-06-12", "guests": 120}}
        ).encode()
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        empty_queue_tables()
        broker.flushdb()
        medians: dict[str, list[float]] = {name: [] for name in configs}
        with contextlib.ExitStack() as servers:
            ports = {
                name: servers.enter_context(gunicorn({**env, **values, **sampled}, workers=1, threads=4))
                for name, values in configs.items()
            }
            for port in ports.values():  # warm-up: imports, connections, first spans
                load.run(port, "POST", "/integrations/rentguy/jobs", body, headers, seconds=1, processes=1)
            order = list(configs)
            for round_number in range(1, args.rounds + 1):
                random.shuffle(order)
                for name in order:
                    _, latencies = load.run(
                        ports[name], "POST", "/integrations/rentguy/jobs", body, headers, args.seconds, 1
                    )
                    medians[name].append(statistics.median(latencies) * 1000)
                line = "  ".join(f"{name} {medians[name][-1]:5.2f}" for name in configs)
                print(f"round {round_number:2}: {line} (ms)", flush=True)
        base = statistics.median(medians["off"])
        print()
        for name, values in medians.items():
            ratio = statistics.median(values) / base
            target = f" (target <= {TARGET:.2f})" if name in ("up", "down") else ""
            print(f"{name:13} median {statistics.median(values):6.2f} ms   ratio to off {ratio:.3f}{target}")
    finally:
        collector.kill()
        collector.wait(10)
        broker.flushdb()


if __name__ == "__main__":
    main()

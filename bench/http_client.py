"""CPU and wall time of one POST through mrdj.http (urllib3) and through a pooled requests.Session
configured as mrdj would configure it, as a ratio requests / urllib3.

    .venv/bin/python bench/http_client.py [--requests 5000] [--rounds 7]

Both clients post the same small JSON body, one request after the other on a keep-alive
connection, to bench/upstream.py (an asyncio server in its own process that answers 200
at once, so nearly all the CPU measured here is the client's):

- urllib3: mrdj.http.post_json as the delivery path calls it: the baseline;
- requests: the same call through a requests.Session with trust_env off (no proxies or
  .netrc from the environment), allow_redirects off, a (connect, read) timeout, the same
  headers and an HTTPAdapter sized like mrdj.http's pool, errors mapped to HttpError.

Each round runs both clients in a new order, so a shared machine's drift falls on both
alike; each figure is the median over the rounds. No telemetry: the instrumentation of
either library adds its own cost on top. Decision rule: requests replaces urllib3 in
mrdj/http.py only if it costs at most 1.10 times the CPU per request.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests
import requests.adapters

from bench import upstream
from mrdj import http

BODY = {"lead": 1, "name": "Bruiloft Jansen", "date": "2027-06-12", "guests": 120}


def requests_client() -> Callable[[str, object], http.Response]:
    """post_json as mrdj/http.py would write it on requests."""
    session = requests.Session()
    session.trust_env = False  # no proxies, CA bundle or .netrc from the environment
    adapter = requests.adapters.HTTPAdapter(pool_connections=32, pool_maxsize=128, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)

    def post_json(url: str, body: object) -> http.Response:
        headers = {
            "User-Agent": http.USER_AGENT,
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        try:
            answer = session.post(
                url,
                data=json.dumps(body).encode(),
                headers=headers,
                timeout=(3.0, 10.0),
                allow_redirects=False,
            )
        except requests.Timeout:
            raise http.HttpTimeout("timed out") from None
        except requests.ConnectionError:
            raise http.HttpError("could not connect") from None
        except (requests.RequestException, ValueError) as error:
            raise http.HttpError(type(error).__name__) from None
        return http.Response(answer.status_code, answer.reason or "", answer.headers, answer.content)

    return post_json


def measure(post: Callable[[str, object], http.Response], url: str, total: int) -> tuple[float, float]:
    """(CPU ms per request, wall seconds) for total requests one after the other."""
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(total):
        if post(url, BODY).status != 200:
            raise SystemExit("the upstream did not answer 200")
    return (time.process_time() - cpu) * 1000 / total, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=5000, help="requests per client and round")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    clients = {"urllib3": http.post_json, "requests": requests_client()}
    cpu: dict[str, list[float]] = {name: [] for name in clients}
    wall: dict[str, list[float]] = {name: [] for name in clients}
    with upstream.running() as base_url:
        url = f"{base_url}/deliveries"
        for post in clients.values():  # warm-up: imports, the connection, caches
            measure(post, url, 200)
        order = list(clients)
        for round_number in range(1, args.rounds + 1):
            random.shuffle(order)
            for name in order:
                per_request, seconds = measure(clients[name], url, args.requests)
                cpu[name].append(per_request)
                wall[name].append(seconds)
            line = "  ".join(
                f"{name} {cpu[name][-1] * 1000:5.0f} us CPU {wall[name][-1]:5.2f} s" for name in clients
            )
            print(f"round {round_number:2}: {line}", flush=True)
    print()
    base_cpu, base_wall = statistics.median(cpu["urllib3"]), statistics.median(wall["urllib3"])
    for name in clients:
        per_request, seconds = statistics.median(cpu[name]), statistics.median(wall[name])
        print(
            f"{name:8} CPU {per_request * 1000:5.0f} us/request  wall {seconds:5.2f} s "
            f"({args.requests / seconds:6.0f} req/s)  ratio to urllib3: CPU {per_request / base_cpu:.2f} "
            f"wall {seconds / base_wall:.2f}" + (" (switch if CPU <= 1.10)" if name == "requests" else "")
        )


if __name__ == "__main__":
    main()

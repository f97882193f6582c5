"""A closed-loop HTTP load generator on 127.0.0.1: processes x connections, keep-alive.

The body is bytes sent with every request, or a picklable callable body(tag) -> bytes
called before each request with a tag unique to that request (within the run and across
runs), for bodies that must differ, such as jobs with their own idempotency keys.
"""

from __future__ import annotations

import http.client
import multiprocessing
import time
import uuid
from collections.abc import Callable

Body = bytes | Callable[[str], bytes]


def _client(
    port: int,
    method: str,
    path: str,
    body: Body,
    headers: dict,
    seconds: float,
    connections: int,
    out,
    prefix: str,
):
    import threading

    counts, latencies = [0] * connections, [[] for _ in range(connections)]
    stop_at = time.perf_counter() + seconds

    def loop(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while (now := time.perf_counter()) < stop_at:
            sent = body(f"{prefix}-{index}-{counts[index]}") if callable(body) else body
            conn.request(method, path, body=sent, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status >= 300 and response.status != 202:
                raise SystemExit(f"{path} answered {response.status}")
            counts[index] += 1
            latencies[index].append(time.perf_counter() - now)
        conn.close()

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put((sum(counts), [x for each in latencies for x in each]))


def run(
    port: int,
    method: str,
    path: str,
    body: Body = b"",
    headers: dict | None = None,
    seconds: float = 5.0,
    processes: int = 2,
    connections: int = 4,
) -> tuple[float, list[float]]:
    """Requests per second over the run, and every request's latency in seconds."""
    out = multiprocessing.Queue()
    run_id = uuid.uuid4().hex[:12]
    workers = [
        multiprocessing.Process(
            target=_client,
            args=(port, method, path, body, headers or {}, seconds, connections, out, f"{run_id}-{n}"),
        )
        for n in range(processes)
    ]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    results = [out.get(timeout=seconds + 120) for _ in workers]
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    return sum(count for count, _ in results) / elapsed, [x for _, each in results for x in each]

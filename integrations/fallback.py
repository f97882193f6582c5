"""The in-process worker: delivers jobs inside the web process while QUEUE_REDIS_ENABLED is off.

Same semantics as the Celery workers (the same claim, try and record), so jobs
move between the two modes without loss when the switch is flipped. It looks
for due jobs itself, so it needs neither the broker nor beat.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait

from django.db import close_old_connections, connections

from mrdj.config import get_config

log = logging.getLogger(__name__)


class InProcessWorker:
    def __init__(self, poll_seconds: float = 1.0, claims_every_seconds: float = 5.0):
        self.poll_seconds = poll_seconds
        self.claims_every_seconds = claims_every_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        with self._lock:
            if self.running:
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="mrdj-inprocess-queue", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        threads = get_config().get_int("QUEUE_INPROCESS_THREADS", 2, minimum=1)
        with ThreadPoolExecutor(threads, thread_name_prefix="mrdj-inprocess-job") as pool:
            next_claim_check = 0.0
            while not self._stop.is_set():
                try:
                    worked, next_claim_check = self._round(pool, threads, next_claim_check)
                except Exception:
                    log.exception("in-process queue round failed; trying again")
                    worked = False
                finally:
                    close_old_connections()
                if not worked:
                    self._wake.wait(self.poll_seconds)
                    self._wake.clear()
            _close_pool_connections(pool, threads)
        connections.close_all()

    def _round(self, pool: ThreadPoolExecutor, threads: int, next_claim_check: float) -> tuple[bool, float]:
        from integrations import dispatch, heartbeat, services

        if dispatch.uses_broker():
            return False, next_claim_check
        heartbeat.beat("in-process")
        now = time.monotonic()
        if now >= next_claim_check:
            services.release_expired_claims()
            next_claim_check = now + self.claims_every_seconds
        jobs = services.due_jobs(services.enabled_queues(), threads * 4)
        if not jobs:
            return False, next_claim_check
        done, _ = wait([pool.submit(_process, pk, queue) for pk, queue in jobs])
        # A round in which every job failed waits for the next poll instead of spinning on them.
        return any(future.result() for future in done), next_claim_check


def _close_pool_connections(pool: ThreadPoolExecutor, threads: int) -> None:
    """Close each pool thread's database connection on shutdown.

    The barrier holds every task until all have started, so each runs on its own thread.
    """
    barrier = threading.Barrier(threads)

    def close() -> None:
        connections.close_all()
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=5)

    wait([pool.submit(close) for _ in range(threads)])


def _process(job_id: int, queue: str) -> bool:
    from integrations import services

    try:
        services.process_job(job_id, queue)
    except Exception:
        log.exception(
            "in-process delivery of job %s failed; it stays claimed until its lease runs out", job_id
        )
        return False
    finally:
        close_old_connections()  # keeps the thread's connection within CONN_MAX_AGE
    return True


worker = InProcessWorker()


def start_in_web_process(**kwargs) -> None:
    """Started in every web process; it idles while the queue runs over Redis."""
    worker.start()

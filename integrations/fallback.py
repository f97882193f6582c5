"""The in-process worker: delivers jobs inside the web process while QUEUE_REDIS_ENABLED is off.

It runs the same engine as the Celery drain tasks (the same claims, limits, breaker
and bookkeeping), so jobs move between the two modes without loss when the switch
is flipped. It looks for due jobs itself, so it needs neither the broker nor beat.
"""

from __future__ import annotations

import logging
import threading
import time

from django.db import close_old_connections, connections

from integrations import engine, handoff, heartbeat, history
from integrations.batches import release_expired_claims

log = logging.getLogger(__name__)
ROUND_SECONDS = 60.0  # then the loop starts afresh (a round ends early only when stopped)


class InProcessWorker:
    def __init__(self, poll_seconds: float = 1.0, claims_every_seconds: float = 5.0):
        self.poll_seconds = poll_seconds
        self.claims_every_seconds = claims_every_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._next_claim_check = 0.0

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
        handoff.inprocess_wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wake(self) -> None:
        handoff.inprocess_wake.set()

    def _run(self) -> None:
        enabled = engine.enabled()

        def queues():
            return [] if handoff.uses_broker() else enabled()

        while not self._stop.is_set():
            try:
                if handoff.uses_broker():
                    handoff.inprocess_wake.wait(self.poll_seconds)
                    history.sample_if_due()  # the charts go on while the workers are away
                    continue
                engine.engine().run(
                    queues,
                    stop=self._stop,
                    wake=handoff.inprocess_wake,
                    until=time.monotonic() + ROUND_SECONDS,
                    on_round=self._upkeep,
                )
            except Exception:
                log.exception("in-process queue round failed; trying again")
                self._stop.wait(self.poll_seconds)
            finally:
                close_old_connections()
        connections.close_all()

    def _upkeep(self) -> None:
        """Between rounds: say we are alive, sample the charts' history, release the claims of
        dead workers, keep the connection within CONN_MAX_AGE."""
        heartbeat.beat("in-process")
        history.sample_if_due()
        now = time.monotonic()
        if now >= self._next_claim_check:
            self._next_claim_check = now + self.claims_every_seconds
            release_expired_claims()
            close_old_connections()


worker = InProcessWorker()


def start_in_web_process(**kwargs) -> None:
    """Started in every web process; it idles while the queue runs over Redis."""
    worker.start()

"""Evaluate at once when a queue changes, without evaluating once per job.

Queue events (a job accepted, finished or dead-lettered) only set a flag; one
thread per process evaluates, at most every ALERT_EVALUATE_MIN_INTERVAL_MS, so a
burst of a thousand jobs costs a handful of evaluations and the first crossing
of a threshold is seen within milliseconds. Started in web processes and in each
Celery worker process; elsewhere request() does nothing and beat's tick suffices.
While the queue runs in-process there is no beat, so this thread also ticks, and pings the
dead-man's switch (alerting.deadman) in beat's stead.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from django.db import close_old_connections, connections

from alerting import deadman
from mrdj.config import get_config

log = logging.getLogger(__name__)


class Evaluator:
    def __init__(self):
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._pid == os.getpid() and self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        with self._lock:
            if self.running:
                return
            self._stop.clear()
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="mrdj-alert-evaluator", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._pid == os.getpid():
            self._thread.join(timeout)
        self._thread = None

    def request(self) -> None:
        if self.running:
            self._wake.set()

    def _run(self) -> None:
        from alerting import lifecycle
        from integrations import handoff

        next_tick = 0.0
        while not self._stop.is_set():
            config = get_config()
            requested = self._wake.wait(max(next_tick - time.monotonic(), 0))
            self._wake.clear()
            if self._stop.is_set():
                break
            due = time.monotonic() >= next_tick
            if due:
                interval = config.value("ALERT_EVALUATE_INTERVAL_MS") / 1000
                next_tick = time.monotonic() + interval
            if not (requested or due):
                continue
            try:
                # Over Redis, beat's tick runs the deadlines; this process still evaluates on the
                # interval, so that a dead worker (and the beat inside it) pages without any intake.
                if due and not handoff.uses_broker():
                    lifecycle.tick()
                else:
                    lifecycle.evaluate()
            except Exception:
                log.exception("alert evaluation failed; trying again at the next event or tick")
            finally:
                close_old_connections()
            if due and not handoff.uses_broker():
                deadman.ping_if_due()  # after a failed tick too: the ping then says what is wrong
            self._stop.wait(config.value("ALERT_EVALUATE_MIN_INTERVAL_MS") / 1000)
        connections.close_all()


evaluator = Evaluator()


def start(**kwargs) -> None:
    """Signal receiver: web_process_started, Celery's worker_process_init."""
    evaluator.start()


def on_queue_event(**kwargs) -> None:
    """Signal receiver for the integration queues' events."""
    evaluator.request()

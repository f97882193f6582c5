"""One alert evaluator for the whole deployment, woken at once by any process's queue events.

Every web process and Celery worker process runs a candidate thread. The one holding the
lease (EvaluatorLease: renewed every RENEW_SECONDS, running out LEASE after its holder
died, when another candidate takes it over) evaluates the queues' figures: when a queue
event wakes it, at most every ALERT_EVALUATE_MIN_INTERVAL_MS, and every
ALERT_EVALUATE_INTERVAL_MS, so that a dead worker pages without any intake. While the queues
run in-process there is no beat, so it runs the whole tick then (deadlines, incidents) and
pings the dead-man's switch in beat's stead. So alerting costs the same queries with one
process or twenty.

The other candidates only announce: their queue events become one PostgreSQL NOTIFY (at most
one per ALERT_EVALUATE_MIN_INTERVAL_MS per process) that the holder LISTENs for. PostgreSQL
rather than Redis pub/sub: the database is there in both queue modes, also during a Redis
incident, when alerts matter most. On SQLite (one machine, development) another process's
events are seen at the next ALERT_EVALUATE_INTERVAL_MS.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import timedelta

import psycopg
from django.db import close_old_connections, connection, connections
from django.db.models import Q
from django.utils import timezone

from alerting import deadman, lifecycle, sender
from alerting.models import EvaluatorLease
from integrations import handoff
from mrdj import processes, telemetry
from mrdj.config import get_config

log = logging.getLogger(__name__)

DUTY = "alert evaluation"
CHANNEL = "mrdj_alert_evaluation"
LEASE = timedelta(seconds=6)
RENEW_SECONDS = 2.0  # also how often a candidate tries to take a lease that ran out
RECYCLE_SECONDS = 60.0  # how often the thread lets Django retire its connection (CONN_MAX_AGE)


def ensure_lease() -> bool:
    """The lease's row, created by whichever candidate comes first."""
    EvaluatorLease.objects.get_or_create(name=DUTY)
    return True


def take_lease(holder: str) -> bool:
    """Take the lease if it is free or ran out, or renew it if this holder has it: one UPDATE."""
    now = timezone.now()
    free = Q(holder=holder) | Q(held_until__isnull=True) | Q(held_until__lte=now)
    return bool(EvaluatorLease.objects.filter(free, name=DUTY).update(holder=holder, held_until=now + LEASE))


def release_lease(holder: str) -> None:
    """On a clean stop: the next candidate need not wait for the lease to run out."""
    EvaluatorLease.objects.filter(name=DUTY, holder=holder).update(held_until=None)


def announce() -> None:
    """Tell the holder, wherever it runs, that a queue changed (PostgreSQL only)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [CHANNEL])


class _Listener(threading.Thread):
    """The holder's own connection, LISTENing for the other processes' announcements."""

    def __init__(self, wake: threading.Event):
        super().__init__(name="mrdj-alert-listener", daemon=True)
        self.wake = wake
        self.stopped = threading.Event()
        self.listening = threading.Event()
        self.reconnects = 0

    def run(self) -> None:
        params = connections["default"].get_connection_params()
        while not self.stopped.is_set():
            try:
                with psycopg.connect(**params, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    if self.reconnects:
                        self.wake.set()  # what was announced while it was not listening
                    self.listening.set()
                    while not self.stopped.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self.wake.set()
            except psycopg.Error as error:
                log.warning("alert evaluator: listening for queue events failed (%s); again in 1 s", error)
            self.listening.clear()
            self.reconnects += 1
            self.stopped.wait(1.0)


class Evaluator:
    def __init__(self):
        self._wake = threading.Event()
        self._pending = threading.Event()  # a queue event of this process, not yet evaluated or announced
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: _Listener | None = None
        self._pid = 0
        self._lock = threading.Lock()
        self.holding = False
        self._lease_row = False
        self._failing: set[str] = set()  # what failed and has not worked since (logged once)
        self.evaluations = 0  # by this process since it started

    @property
    def running(self) -> bool:
        return self._pid == os.getpid() and self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        with self._lock:
            if self.running:
                return
            self._stop.clear()
            self._pid = os.getpid()
            self.holding = self._lease_row = False
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
            self._pending.set()
            self._wake.set()

    def _run(self) -> None:
        holder = processes.own_name()
        next_tick = next_lease = next_recycle = 0.0
        try:
            while not self._stop.is_set():
                if time.monotonic() >= next_lease:
                    next_lease = time.monotonic() + RENEW_SECONDS
                    if time.monotonic() >= next_recycle:  # CONN_MAX_AGE, without a check per query
                        next_recycle = time.monotonic() + RECYCLE_SECONDS
                        close_old_connections()
                    if self._hold(holder):
                        next_tick = min(next_tick, time.monotonic())  # a new holder evaluates at once
                wait_until = min(next_lease, next_tick) if self.holding else next_lease
                woken = self._wake.wait(max(wait_until - time.monotonic(), 0))
                self._wake.clear()
                if self._stop.is_set():
                    break
                if self.holding and (woken or time.monotonic() >= next_tick):
                    next_tick = self._evaluate(next_tick)
                elif self._pending.is_set():
                    self._announce()
                else:
                    continue
                self._stop.wait(get_config().value("ALERT_EVALUATE_MIN_INTERVAL_MS") / 1000)
        finally:
            self._listen(False)
            if self.holding:
                self._quietly(release_lease, holder)
            self.holding = False
            connections.close_all()

    def _hold(self, holder: str) -> bool:
        """Take or renew the lease; True when this process just became the holder."""
        was = self.holding
        self._lease_row = self._lease_row or bool(self._quietly(ensure_lease))  # once it worked
        self.holding = self._lease_row and bool(self._quietly(take_lease, holder))
        self._listen(self.holding)
        if self.holding and not was and self._listener is not None:
            self._listener.listening.wait(2.0)  # before the first evaluation: no event falls between
        if self.holding != was:
            log.info("alert evaluator: %s the lease (%s)", "took" if self.holding else "lost", holder)
        return self.holding and not was

    def _evaluate(self, next_tick: float) -> float:
        """Evaluate now; the tick too when due. Returns when the next tick is due."""
        self._pending.clear()
        self.evaluations += 1
        config = get_config()
        due = time.monotonic() >= next_tick
        if due:
            next_tick = time.monotonic() + config.value("ALERT_EVALUATE_INTERVAL_MS") / 1000
        # Over Redis, beat's tick runs the deadlines and the incidents' upkeep.
        runs_tick = due and not handoff.uses_broker()
        if runs_tick:
            with telemetry.background_span("alerting.tick"):  # as beat's tick task is traced
                self._quietly(lifecycle.tick)
                self._quietly(sender.resend_due)
            deadman.ping_if_due()  # after a failed tick too: the ping then says what is wrong
        else:
            self._quietly(lifecycle.evaluate)
        return next_tick

    def _announce(self) -> None:
        self._pending.clear()
        self._quietly(announce)

    def _listen(self, on: bool) -> None:
        listening = self._listener is not None and self._listener.is_alive()
        if on and not listening and connection.vendor == "postgresql":
            self._listener = _Listener(self._wake)
            self._listener.start()
        elif not on and self._listener is not None:
            self._listener.stopped.set()
            self._listener = None

    def _quietly(self, work, *args):
        """work(*args), or None when it failed: logged once until it works again, since a
        database that is down would otherwise log a traceback every 2 s per process."""
        name = work.__name__
        try:
            result = work(*args)
        except Exception:
            if name not in self._failing:
                self._failing.add(name)
                log.exception("alert evaluator: %s failed; trying again at the next event or tick", name)
            close_old_connections()  # a broken connection is replaced before the next query
            return None
        if name in self._failing:
            self._failing.discard(name)
            log.warning("alert evaluator: %s works again", name)
        return result


evaluator = Evaluator()


def start(**kwargs) -> None:
    """Signal receiver: web_process_started, Celery's worker_process_init."""
    evaluator.start()


def on_queue_event(**kwargs) -> None:
    """Signal receiver for the integration queues' events."""
    evaluator.request()


def wake_holder() -> None:
    """Beat's tick: have the figures evaluated now, wherever the holder runs."""
    if evaluator.running:
        evaluator.request()
    else:
        announce()

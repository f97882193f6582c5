"""Grafana annotations: what happened to mrdj, marked on the graphs where its effects show.

Alerts firing, escalating and resolving, DR activations, and the operator actions that
move jobs or change how mrdj runs (flush, replay, flags, configuration, queue mode, job
cancel and edit) become annotations tagged "mrdj" through Grafana's HTTP API
(POST /api/annotations). An alert's annotation becomes a region when it resolves
(PATCH /api/annotations/:id with its end), so the graphs show how long it lasted.

Never in anyone's way: nothing leaves before the transaction commits, and then from one
background thread per process, apart from the alert webhooks' pool, with short timeouts
and a few tries. A Grafana that is down or slow delays only other annotations; each one
given up is logged once, without the token. Annotations still waiting when their process
dies are lost: a mark on a graph, nothing more.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial, wraps
from typing import Any
from urllib.parse import urlsplit

from django.db import connections, transaction

from alerting.content import NotificationContent
from alerting.models import Alert, Notification
from integrations.queues import QUEUES
from mrdj import http
from mrdj.config import get_config
from mrdj.models import AuditEvent

log = logging.getLogger(__name__)
Event = Notification.Event

ALERT_EVENTS = (Event.FIRING, Event.ESCALATED, Event.UNACKNOWLEDGED, Event.RESOLVED, Event.DR)
OPERATOR_ACTIONS = {
    "queue.flush": "Queue flushed",
    "deadletter.replay": "Dead-letter replayed",
    "flag.change": "Flag changed",
    "config.change": "Configuration changed",
    "queue.mode": "Queue mode switched",
    "job.cancel": "Jobs cancelled",
    "job.edit": "Job edited and replayed",
}
ALL_QUEUES = "all queues"
PATH = "/api/annotations"
CONNECT_TIMEOUT_S = 2.0
READ_TIMEOUT_S = 3.0
RETRY_DELAYS_S = (1.0, 5.0)  # before the second and the third (last) try
WAITING_LIMIT = 500  # annotations one process holds while Grafana does not answer
# A command such as `manage.py queues flush` exits right after its action: its annotation
# gets this long to leave, so a Grafana that does not answer delays the exit no more.
EXIT_WAIT_S = 2.0


@dataclass(frozen=True)
class Grafana:
    url: str
    token: str

    @classmethod
    def configured(cls) -> Grafana | None:
        """None while GRAFANA_URL is empty: nothing is queued at all then."""
        config = get_config()
        url = config.value("GRAFANA_URL").rstrip("/")
        return cls(url, config.value("GRAFANA_API_TOKEN")) if url else None

    @property
    def host(self) -> str:
        """What a log line may name: never the token, nor credentials inside the URL."""
        return urlsplit(self.url).hostname or "?"


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


# --- Sending, in the background


class Outbox:
    """One thread per process sends queued work in order; started on first use, and again in
    a forked child (whose copy of the parent's thread does not run)."""

    def __init__(self, limit: int = WAITING_LIMIT):
        self._limit = limit
        self._queue: queue.Queue[Callable[[], None]] = queue.Queue(limit)
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def put(self, work: Callable[[], None]) -> None:
        self._start()
        try:
            self._queue.put_nowait(work)
        except queue.Full:
            log.warning("Grafana annotation dropped: %s are waiting already", self._limit)

    def wait(self, timeout: float = 30.0) -> bool:
        """True once everything queued was sent or given up (for tests and orderly exits)."""
        deadline = time.monotonic() + timeout
        done = self._queue.all_tasks_done
        with done:
            while self._queue.unfinished_tasks:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                done.wait(left)
        return True

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid() and self._thread is not None and self._thread.is_alive():
                return
            if self._pid != os.getpid():
                self._queue = queue.Queue(self._limit)  # the parent's waiting work is the parent's
            if self._thread is None:
                atexit.register(lambda: self.wait(EXIT_WAIT_S))
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="mrdj-grafana", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            work = self._queue.get()
            try:
                work()
            except Exception:
                log.exception("Grafana annotation failed")
            finally:
                connections.close_all()  # this thread's connections only
                self._queue.task_done()


outbox = Outbox()


def send(grafana: Grafana, method: str, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """Grafana's JSON answer once it took the request; None when it never did (logged once)."""
    headers = {"Authorization": f"Bearer {grafana.token}"} if grafana.token else {}
    problem, tries = "", 0
    for delay in (0.0, *RETRY_DELAYS_S):
        time.sleep(delay)
        tries += 1
        try:
            answer = http.request(
                method,
                grafana.url + path,
                body,
                headers=headers,
                connect_timeout=CONNECT_TIMEOUT_S,
                read_timeout=READ_TIMEOUT_S,
            )
        except http.HttpError as error:
            problem = str(error)
            continue
        if 200 <= answer.status < 300:
            return _json_object(answer.body)
        problem = f"HTTP {answer.status}"
        if answer.status < 500 and answer.status != 429:
            break  # refused (a wrong token, an annotation deleted meanwhile): asking again changes nothing
    log.warning(
        "Grafana annotation not sent (%s %s to %s, %s %s): %s",
        method,
        path,
        grafana.host,
        tries,
        "try" if tries == 1 else "tries",
        problem,
    )
    return None


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def post(grafana: Grafana, annotation: dict[str, Any], alert_id: int | None = None) -> None:
    """Add an annotation; with alert_id, remember it on the alert (the first one only), so its
    resolution closes it as a region."""
    answer = send(grafana, "POST", PATH, annotation)
    annotation_id = (answer or {}).get("id")
    if alert_id is not None and isinstance(annotation_id, int) and annotation_id > 0:
        Alert.objects.filter(pk=alert_id, grafana_annotation_id__isnull=True).update(
            grafana_annotation_id=annotation_id
        )


def close_region(grafana: Grafana, alert_id: int, region: dict[str, Any]) -> None:
    """End the alert's annotation at its resolution; without one (Grafana was down when it
    fired), add the whole region from start to resolution. Read when sent, not when queued:
    the firing annotation queued before it has stored its id by then."""
    annotation_id = Alert.objects.filter(pk=alert_id).values_list("grafana_annotation_id", flat=True).first()
    if annotation_id:
        send(grafana, "PATCH", f"{PATH}/{annotation_id}", {"timeEnd": region["timeEnd"]})
    else:
        send(grafana, "POST", PATH, region)


# --- What becomes an annotation


def _harmless(receiver: Callable[..., None]) -> Callable[..., None]:
    """A signal receiver whose failure is logged, never raised into the alert or the action."""

    @wraps(receiver)
    def guarded(*args, **kwargs) -> None:
        try:
            receiver(*args, **kwargs)
        except Exception:
            log.exception("Grafana annotation not queued")

    return guarded


def _after_commit(work: Callable[[], None]) -> None:
    transaction.on_commit(lambda: outbox.put(work))


def _tags(queues: list[str], level: str, what: str) -> list[str]:
    return ["mrdj", *queues, level, what]


@_harmless
def on_notification(sender, instance: Notification, created: bool, **kwargs) -> None:
    """post_save of Notification: an alert fired, escalated or resolved, or the DR plan's trigger."""
    if not created or kwargs.get("raw") or instance.event not in ALERT_EVENTS:
        return
    grafana = Grafana.configured()
    if grafana is None:
        return
    content = NotificationContent.from_json(instance.content)
    queues = [name for name in (content.queue or ALL_QUEUES).split(", ") if name]
    annotation = {
        "time": epoch_ms(instance.created_at),
        "tags": _tags(queues, str(instance.severity or "none"), str(instance.event)),
        "text": _alert_text(instance),
    }
    alert = instance.alert
    if instance.event == Event.RESOLVED and alert is not None:
        region = {**annotation, "time": epoch_ms(alert.started_at), "timeEnd": annotation["time"]}
        _after_commit(partial(close_region, grafana, alert.pk, region))
    else:
        remembered = alert.pk if alert is not None and instance.event == Event.FIRING else None
        _after_commit(partial(post, grafana, annotation, remembered))


def _alert_text(notification: Notification) -> str:
    content = NotificationContent.from_json(notification.content)
    text = content.title or notification.message
    if content.escalation:
        text += f". {content.escalation}"
    if notification.silenced_by_id:
        text += " (silenced: nobody was paged)"
    if notification.alert_id:
        text += f" [alert {notification.alert_id}]"
    return text


@_harmless
def on_audit_event(sender, instance: AuditEvent, created: bool, **kwargs) -> None:
    """post_save of AuditEvent: an operator's flush, replay, flag or configuration change..."""
    if not created or kwargs.get("raw") or instance.action not in OPERATOR_ACTIONS:
        return
    grafana = Grafana.configured()
    if grafana is None:
        return
    annotation = {
        "time": epoch_ms(instance.created_at),
        "tags": _tags([_queue_of(instance)], "operator", instance.action),
        "text": f"{OPERATOR_ACTIONS[instance.action]}: {_action_detail(instance)} by {instance.actor}",
    }
    _after_commit(partial(post, grafana, annotation))


def _queue_of(event: AuditEvent) -> str:
    if event.action in ("queue.flush", "deadletter.replay", "job.cancel", "job.edit"):
        name = event.target.split(" ")[0]  # job.edit's target: "<queue> job <id>"
        return name if name in QUEUES else ALL_QUEUES
    if event.action == "flag.change":
        return next((name for name, queue in QUEUES.items() if queue.flag == event.target), ALL_QUEUES)
    return ALL_QUEUES


def _action_detail(event: AuditEvent) -> str:
    """What changed, in a few words. Never a value of the configuration, nor a job's payload:
    annotations are read by everyone who sees the dashboard."""
    before, after = event.before or {}, event.after or {}
    if event.action in ("queue.flush", "deadletter.replay") and "jobs" in after:
        return f"{event.target}, {after['jobs']} jobs"
    if event.action == "job.cancel" and "cancelled" in after:
        return f"{event.target}, {after['cancelled']} jobs"
    if event.action == "flag.change":
        return f"{event.target} {before.get('value', '?')} → {after.get('value', '?')}"
    if event.action == "queue.mode":
        return f"{event.before} → {event.after}"
    if event.action == "config.change" and "version" in after:
        return f"{event.target} (version {after['version']})"
    return event.target

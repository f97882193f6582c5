"""Jira tickets for alerts: one per alert, never two, even when Jira timed out after creating it.

Each issue carries the alert's label (mrdj-alert-<key>); before creating one, mrdj
looks for an issue with that label, as Alertmanager's Jira receiver does. REST API
v2: POST /rest/api/2/issue, comments and transitions on /rest/api/2/issue/<key>/...
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote, urlencode

from django.db.models import Q
from django.utils import timezone

from alerting.models import Alert
from mrdj import http
from mrdj.config import get_config
from mrdj.times import human_delta

log = logging.getLogger(__name__)


class JiraError(Exception):
    """Jira did not do what was asked; the next tick tries again."""


@dataclass(frozen=True)
class JiraSettings:
    base_url: str
    project: str
    user: str
    token: str
    issue_type: str
    resolve_transition: str
    warning_delay_ms: int
    retry_ms: int

    @classmethod
    def read(cls) -> JiraSettings:
        config = get_config()
        return cls(
            base_url=config.value("ALERT_JIRA_ENDPOINT").rstrip("/"),
            project=config.value("ALERT_JIRA_PROJECT"),
            user=config.value("ALERT_JIRA_USER"),
            token=config.value("ALERT_JIRA_TOKEN"),
            issue_type=config.value("ALERT_JIRA_ISSUE_TYPE"),
            resolve_transition=config.value("ALERT_JIRA_RESOLVE_TRANSITION"),
            warning_delay_ms=config.value("ALERT_JIRA_WARNING_DELAY_MS"),
            retry_ms=config.value("ALERT_JIRA_RETRY_MS"),
        )

    @property
    def enabled(self) -> bool:
        return bool(self.base_url)


class JiraClient:
    def __init__(self, settings: JiraSettings):
        self.settings = settings
        credentials = f"{settings.user}:{settings.token}".encode()
        self.headers = {"Authorization": "Basic " + base64.b64encode(credentials).decode()}

    def _call(self, method: str, path: str, body=None, ok=(200, 201, 204)) -> http.Response:
        config = get_config()
        try:
            response = http.request(
                method,
                self.settings.base_url + path,
                body,
                headers=self.headers,
                connect_timeout=config.value("ALERT_HTTP_CONNECT_TIMEOUT_MS") / 1000,
                read_timeout=config.value("ALERT_JIRA_READ_TIMEOUT_MS") / 1000,
            )
        except http.HttpError as error:
            raise JiraError(f"{method} {path.split('?')[0]}: {error}") from None
        if response.status not in ok:
            detail = response.body[:200].decode("utf-8", "replace")
            raise JiraError(f"{method} {path.split('?')[0]} answered {response.status}: {detail}")
        return response

    def find(self, label: str) -> str | None:
        """The key of the issue labelled label, if one exists.

        Jira Cloud searches on /search/jql (the old /search answers 410 there since 2025);
        Data Center and Server only know /search.
        """
        query = urlencode({"jql": f'labels = "{label}"', "fields": "key", "maxResults": 1})
        try:
            response = self._call("GET", f"/rest/api/2/search/jql?{query}")
        except JiraError as error:
            if " answered 404" not in str(error):
                raise
            response = self._call("GET", f"/rest/api/2/search?{query}")
        issues = json.loads(response.body or b"{}").get("issues") or []
        return issues[0]["key"] if issues else None

    def create(self, fields: dict) -> str:
        response = self._call("POST", "/rest/api/2/issue", {"fields": fields}, ok=(200, 201))
        return json.loads(response.body)["key"]

    def comment(self, key: str, text: str) -> None:
        self._call("POST", f"/rest/api/2/issue/{quote(key)}/comment", {"body": text}, ok=(200, 201))

    def status(self, key: str) -> tuple[str, bool]:
        """The issue's status name, and whether Jira counts it as done (resolved)."""
        response = self._call("GET", f"/rest/api/2/issue/{quote(key)}?fields=status,resolution")
        fields = json.loads(response.body or b"{}").get("fields") or {}
        status = fields.get("status") or {}
        category = (status.get("statusCategory") or {}).get("key", "")
        return status.get("name", "?"), category == "done" or bool(fields.get("resolution"))

    def transition(self, key: str, name: str) -> None:
        response = self._call("GET", f"/rest/api/2/issue/{quote(key)}/transitions")
        transitions = json.loads(response.body).get("transitions", [])
        match = next((t for t in transitions if t.get("name", "").lower() == name.lower()), None)
        if match is None:
            names = ", ".join(t.get("name", "?") for t in transitions)
            raise JiraError(f"issue {key} has no transition {name!r} (it offers: {names})")
        self._call("POST", f"/rest/api/2/issue/{quote(key)}/transitions", {"transition": {"id": match["id"]}})


def expected_resolution(alert: Alert) -> datetime:
    config = get_config()
    if alert.severity == "critical":
        target = config.value("ALERT_RESOLUTION_TARGET_CRITICAL_MS")
    else:
        target = config.value("ALERT_RESOLUTION_TARGET_WARNING_MS")
    return alert.started_at + timedelta(milliseconds=target)


def first_responder(alert: Alert) -> str:
    if alert.acknowledged_by_name:
        return f"{alert.acknowledged_by_name} (acknowledged {alert.acknowledged_at:%Y-%m-%d %H:%M %Z})"
    oncall = get_config().value("ALERT_ONCALL_PRIMARY")
    return f"{oncall} (primary on-call, not yet acknowledged)" if oncall else "not yet acknowledged"


def issue_fields(alert: Alert, settings: JiraSettings) -> dict:
    queue = alert.queue or "all queues"
    description = "\n".join(
        [
            f"mrdj alert {alert.key}: {alert.severity} {alert.get_kind_display()} on queue {queue}.",
            "",
            f"*Queue*: {queue}",
            f"*Severity*: {alert.severity}",
            f"*Started*: {alert.started_at:%Y-%m-%d %H:%M:%S %Z}",
            f"*First responder*: {first_responder(alert)}",
            f"*Expected resolution*: {expected_resolution(alert):%Y-%m-%d %H:%M %Z}",
            "",
            "*Alert payload*:",
            "{code:json}",
            json.dumps(alert.payload, indent=2, sort_keys=True),
            "{code}",
        ]
    )
    return {
        "project": {"key": settings.project},
        "issuetype": {"name": settings.issue_type},
        "summary": f"[mrdj] {alert.severity}: {alert.get_kind_display()} on {queue}"[:250],
        "description": description,
        "labels": ["mrdj", alert.label],
    }


def due(now: datetime, settings: JiraSettings) -> list[int]:
    """Alerts with Jira work to do: a ticket to open, or a resolution to report."""
    if not settings.enabled:
        return []
    warning_cutoff = now - timedelta(milliseconds=settings.warning_delay_ms)
    wants_ticket = Q(state=Alert.State.FIRING, jira_key="") & (
        Q(critical_since__isnull=False) | Q(started_at__lte=warning_cutoff)
    )
    wants_resolution = Q(state=Alert.State.RESOLVED, jira_resolved_at__isnull=True) & ~Q(jira_key="")
    free = Q(jira_busy_until__isnull=True) | Q(jira_busy_until__lte=now)
    return list(Alert.objects.filter((wants_ticket | wants_resolution) & free).values_list("pk", flat=True))


def sync(alert_id: int, now: datetime | None = None) -> Alert | None:
    """Open the alert's ticket or report its resolution; one process at a time per alert."""
    now = now or timezone.now()
    settings = JiraSettings.read()
    if not settings.enabled:
        return None
    # The claim outlasts the longest sync (three calls, each up to its timeouts), on the real
    # clock, so no other process can start on the same alert meanwhile.
    config = get_config()
    one_call_ms = config.value("ALERT_HTTP_CONNECT_TIMEOUT_MS") + config.value("ALERT_JIRA_READ_TIMEOUT_MS")
    real_now = timezone.now()
    busy = max(now, real_now) + timedelta(milliseconds=max(settings.retry_ms, 3 * one_call_ms + 5000))
    free = Q(jira_busy_until__isnull=True) | Q(jira_busy_until__lte=max(now, real_now))
    if not Alert.objects.filter(free, pk=alert_id).update(jira_busy_until=busy):
        return None
    alert = Alert.objects.get(pk=alert_id)
    client = JiraClient(settings)
    try:
        if alert.firing and not alert.jira_key:
            alert.jira_key = client.find(alert.label) or client.create(issue_fields(alert, settings))
            alert.jira_created_at = now
            log.info("alert %s has Jira issue %s", alert.pk, alert.jira_key)
        elif not alert.firing and alert.jira_key and alert.jira_resolved_at is None:
            lasted = human_delta((alert.resolved_at or now) - alert.started_at)
            client.comment(
                alert.jira_key,
                f"Resolved by mrdj at {alert.resolved_at or now:%Y-%m-%d %H:%M:%S %Z}: the condition stayed "
                f"clear for the quiet period. The alert lasted {lasted}. Record the root cause here.",
            )
            if settings.resolve_transition:
                client.transition(alert.jira_key, settings.resolve_transition)
            alert.jira_resolved_at = now
        alert.jira_error = ""
        alert.jira_busy_until = None
    except JiraError as error:
        alert.jira_error = str(error)[:300]  # busy until the retry time: the next tick tries again
        log.warning("Jira for alert %s: %s; trying again later", alert.pk, error)
    alert.save(
        update_fields=["jira_key", "jira_created_at", "jira_resolved_at", "jira_error", "jira_busy_until"]
    )
    return alert

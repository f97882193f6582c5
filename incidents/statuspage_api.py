"""Atlassian Statuspage's REST API, as far as mrdj uses it: what a status update tells the page,
and how Statuspage's answer is judged.

- Create an incident: POST {STATUSPAGE_API_URL}/pages/{page_id}/incidents, answering 201 with the
  incident (its "id") (https://developer.statuspage.io/#operation/postPagesPageIdIncidents).
- Update it: PATCH {STATUSPAGE_API_URL}/pages/{page_id}/incidents/{incident_id}
  (https://developer.statuspage.io/#operation/patchPagesPageIdIncidentsIncidentId).
- Both take {"incident": {"name", "status", "body", "component_ids": [...], "components":
  {"<component id>": "<component status>"}}}; the key goes in `Authorization: OAuth <api key>`
  (https://developer.statuspage.io/#section/Authentication). Over the rate limit (one request
  a second per key) Statuspage answers 420 or 429.

The API key is a secret: it goes in that header only, and is cut out of any answer quoted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import quote

from alerting.models import Severity
from incidents.incident_variables import status_page_components
from incidents.models import Incident
from incidents.outbound import excerpt, timeouts
from mrdj import http
from mrdj.config import get_config

RESOLVED = "resolved"
OPERATIONAL = "operational"
# How much of the page's components an incident's queues take down, by the incident's severity.
COMPONENT_STATUS = {Severity.CRITICAL: "major_outage", Severity.WARNING: "degraded_performance"}
NOT_CONFIGURED = "the status page is not configured (STATUSPAGE_PAGE_ID and STATUSPAGE_API_KEY)"


@dataclass(frozen=True)
class StatusPage:
    api_url: str
    page_id: str
    api_key: str = field(repr=False)  # a secret: never in a repr, a log or a traceback
    components: dict[str, list[str]]  # queue: its component ids

    @classmethod
    def read(cls) -> StatusPage:
        config = get_config()
        return cls(
            config.value("STATUSPAGE_API_URL").rstrip("/"),
            config.value("STATUSPAGE_PAGE_ID").strip(),
            config.value("STATUSPAGE_API_KEY").strip(),
            status_page_components(config.value("STATUSPAGE_COMPONENTS")),
        )

    @property
    def configured(self) -> bool:
        return bool(self.page_id and self.api_key)

    def url(self, statuspage_id: str = "") -> str:
        incidents = f"{self.api_url}/pages/{quote(self.page_id, safe='')}/incidents"
        return f"{incidents}/{quote(statuspage_id, safe='')}" if statuspage_id else incidents


def page_status(incident: Incident) -> str:
    """Statuspage's incident status for the incident as it is now: open is investigating until
    a root cause is recorded (identified), mitigated is monitoring."""
    if incident.state == Incident.State.RESOLVED:
        return RESOLVED
    if incident.state == Incident.State.MITIGATED:
        return "monitoring"
    return "identified" if incident.root_cause else "investigating"


def component_statuses(incident: Incident, status: str, page: StatusPage) -> dict[str, str]:
    """The components of the incident's queues ("" is every queue), with their status."""
    queues = page.components if "" in incident.queues else incident.queues
    ids = [component for queue in queues for component in page.components.get(queue, [])]
    level = OPERATIONAL if status == RESOLVED else COMPONENT_STATUS.get(incident.severity, "major_outage")
    return dict.fromkeys(ids, level)


def payload(name: str, status: str, body: str, components: dict[str, str]) -> dict:
    """The request's body; without components, the page's components stay as they are."""
    incident = {"name": name, "status": status, "body": body} if name else {"status": status, "body": body}
    if components:
        incident["component_ids"] = list(components)
        incident["components"] = dict(components)
    return {"incident": incident}


@dataclass(frozen=True)
class Outcome:
    """What one request came to: the Statuspage incident it created or updated, or an error
    (with again: whether trying again may help)."""

    response_code: int | None
    statuspage_id: str = ""
    error: str = ""
    again: bool = False


def send(page: StatusPage, statuspage_id: str, body: dict) -> Outcome:
    """Create the Statuspage incident (no statuspage_id yet) or update it."""
    connect, read = timeouts()
    try:
        answer = http.request(
            "PATCH" if statuspage_id else "POST",
            page.url(statuspage_id),
            body,
            headers={"Authorization": f"OAuth {page.api_key}"},
            connect_timeout=connect,
            read_timeout=read,
        )
    except http.HttpError as error:  # its message never holds the URL
        return Outcome(None, error=f"no answer: {error}", again=True)
    return judge(answer, statuspage_id, page.api_key)


def judge(answer: http.Response, statuspage_id: str, api_key: str) -> Outcome:
    """Accepted: the incident's id (created, or the one updated). Otherwise the answer's first
    characters, never the key; 420, 429 and 5xx are worth another try, anything else is not
    (the key, the page or the request is wrong)."""
    quoted = excerpt(answer.body)
    if api_key:
        quoted = quoted.replace(api_key, "<api key>")
    if 200 <= answer.status < 300:
        try:
            data = json.loads(answer.body)
        except ValueError:
            data = None
        found = data.get("id") if isinstance(data, dict) else None
        if isinstance(found, str) and found:
            return Outcome(answer.status, statuspage_id=found)
        if statuspage_id:
            return Outcome(answer.status, statuspage_id=statuspage_id)
        # Perhaps created all the same: trying again could put it on the page twice.
        return Outcome(answer.status, error=f"answered {answer.status} without the incident's id: {quoted}")
    again = answer.status in (420, 429) or answer.status >= 500
    return Outcome(
        answer.status, error=f"answered {answer.status}" + (f": {quoted}" if quoted else ""), again=again
    )

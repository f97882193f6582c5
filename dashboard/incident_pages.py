"""What the Incidents tab shows, assembled from the incidents app; views only render it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.paginator import Paginator
from django.utils import timezone

from incidents import checklist, deadlines, dr_bridge, incident_actions, statuspage, timeline
from incidents.models import Incident, Role
from incidents.timing import Timing
from integrations.queues import QUEUES
from mrdj.times import human_delta


def _roles(incident: Incident, user: Any) -> list[dict[str, Any]]:
    held = {role.name: role for role in incident.roles.all()}
    return [
        {
            "name": name.value,
            "label": name.label,
            "role": held.get(name.value),
            "mine": name.value in held and held[name.value].held_by(user),
        }
        for name in Role.Name
    ]


def _deadlines(incident: Incident, roles: list[dict[str, Any]], timing: Timing) -> list[deadlines.Deadline]:
    return deadlines.deadlines(incident, {row["name"] for row in roles if row["role"]}, timing)


def _with_deadlines(incident: Incident, user: Any, timing: Timing) -> dict[str, Any]:
    roles = _roles(incident, user)
    return {"incident": incident, "roles": roles, "deadlines": _deadlines(incident, roles, timing)}


def list_page(user: Any, page: str | None, open_page: str | None = None) -> dict[str, Any]:
    timing = Timing.read()
    open_incidents = Paginator(incident_actions.active(), 20).get_page(open_page)
    active = [_with_deadlines(incident, user, timing) for incident in open_incidents]
    resolved = Incident.objects.filter(state=Incident.State.RESOLVED).order_by("-resolved_at", "-pk")
    return {
        "active": active,
        "open_incidents": open_incidents,
        "resolved": Paginator(resolved, 20).get_page(page),
        "queues": list(QUEUES),
        "severities": ["warning", "critical"],
    }


def detail_page(incident: Incident, user: Any, now: datetime | None = None) -> dict[str, Any]:
    now = now or timezone.now()
    timing = Timing.read()
    states = checklist.states(incident, now, timing)
    page = _with_deadlines(incident, user, timing)
    return {
        **page,
        "checklist": states,
        "missing": checklist.missing(states),
        "is_commander": any(row["mine"] for row in page["roles"] if row["name"] == Role.Name.COMMANDER),
        "timeline": list(reversed(timeline.build(incident))),
        "tickets": list(incident.tickets.all()),
        "cadence": human_delta(timing.cadence),
        "dr_bridge": dr_bridge.status(incident),
        "status_page": statuspage.page_state(incident),
    }

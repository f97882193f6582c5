"""What the Incidents tab shows, assembled from the incidents app; views only render it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.paginator import Paginator
from django.utils import timezone

from incidents import checklist, deadlines, services, timeline
from incidents.models import Incident, Role
from incidents.timing import Timing
from integrations.queues import QUEUES


def _roles(incident: Incident, user: Any) -> list[dict[str, Any]]:
    held = {role.name: role for role in incident.roles.all()}
    return [
        {
            "name": name.value,
            "label": name.label,
            "role": held.get(name.value),
            "mine": _holds(held.get(name.value), user),
        }
        for name in Role.Name
    ]


def _holds(role: Role | None, user: Any) -> bool:
    return role is not None and role.user_id is not None and role.user_id == user.pk


def _deadlines(incident: Incident, timing: Timing) -> list[deadlines.Deadline]:
    held = set(incident.roles.values_list("name", flat=True))
    return deadlines.deadlines(incident, held, timing)


def list_page(user: Any, page: str | None) -> dict[str, Any]:
    timing = Timing.read()
    active = [
        {"incident": incident, "deadlines": _deadlines(incident, timing), "roles": _roles(incident, user)}
        for incident in services.active()
    ]
    resolved = Incident.objects.filter(state=Incident.State.RESOLVED).order_by("-resolved_at", "-pk")
    return {
        "active": active,
        "resolved": Paginator(resolved, 20).get_page(page),
        "queues": list(QUEUES),
        "severities": ["warning", "critical"],
    }


def detail_page(incident: Incident, user: Any, now: datetime | None = None) -> dict[str, Any]:
    now = now or timezone.now()
    timing = Timing.read()
    states = checklist.states(incident, now, timing)
    roles = _roles(incident, user)
    is_commander = any(row["mine"] for row in roles if row["name"] == Role.Name.COMMANDER)
    return {
        "incident": incident,
        "roles": roles,
        "deadlines": _deadlines(incident, timing),
        "checklist": states,
        "missing": checklist.missing(states),
        "is_commander": is_commander,
        "timeline": list(reversed(timeline.build(incident))),
        "alerts": list(incident.alerts.all()),
        "tickets": list(incident.tickets.all()),
        "cadence": timing.cadence,
    }

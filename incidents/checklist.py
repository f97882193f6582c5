"""The post-alert checklist of playbook section 7, on one incident.

mrdj ticks what it can verify itself (the alerts have normalised; the Jira tickets are resolved
with the root cause on them); people tick the rest. Step 5 is resolving the incident, which
only its Incident Commander can do, and only once every item here holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Max

from alerting.content import human_delta
from alerting.models import Notification
from incidents.models import Incident
from incidents.timing import Timing


@dataclass(frozen=True)
class Item:
    key: str
    step: int
    label: str
    automatic: bool = False
    needs_date: bool = False


ITEMS = (
    Item("logs", 1, "Logs collected (queue worker, backend API, Redis) and uploaded to the incident folder"),
    Item("timeline", 2, "Timeline, decisions and remaining risks documented"),
    Item("normalised", 3, "Alerts normalised: no new alert events for the quiet period", automatic=True),
    Item("tickets", 3, "Jira tickets resolved, with the root cause recorded", automatic=True),
    Item("status_page", 4, "Status page and customer communication given their final update"),
    Item("postmortem", 5, "Post-mortem date set", needs_date=True),
)
BY_KEY = {item.key: item for item in ITEMS}


@dataclass(frozen=True)
class State:
    item: Item
    done: bool
    detail: str  # why not yet, or what was recorded
    by: str = ""
    at: datetime | None = None
    value: str = ""


def states(incident: Incident, now: datetime, timing: Timing) -> list[State]:
    found = []
    for item in ITEMS:
        if item.key == "normalised":
            found.append(State(item, *_normalised(incident, now, timing)))
        elif item.key == "tickets":
            found.append(State(item, *_tickets(incident)))
        else:
            ticked = incident.checklist.get(item.key)
            if ticked:
                at = datetime.fromisoformat(ticked["at"])
                detail = f"post-mortem on {ticked['value']}" if item.needs_date else "done"
                found.append(State(item, True, detail, ticked["by"], at, ticked.get("value", "")))
            else:
                found.append(State(item, False, "to be ticked by a person"))
    return found


def missing(found: list[State]) -> list[str]:
    """What stands between the incident and resolved, in words for the operator."""
    return [
        f"step {state.item.step}: {state.item.label} ({state.detail})" for state in found if not state.done
    ]


def _normalised(incident: Incident, now: datetime, timing: Timing) -> tuple[bool, str]:
    alerts = list(incident.alerts.all())
    firing = [alert.pk for alert in alerts if alert.firing]
    if firing:
        return False, f"alert {', '.join(map(str, firing))} still firing"
    if not alerts:
        return True, "the incident has no alerts"
    last = max(max(alert.started_at, alert.critical_since or alert.started_at) for alert in alerts)
    told = (
        Notification.objects.filter(alert__in=alerts)
        .exclude(event=Notification.Event.RESOLVED)
        .aggregate(last=Max("created_at"))["last"]
    )
    last = max(last, told or last)
    quiet = now - last
    if quiet < timing.normalised:
        return (
            False,
            f"last alert event {human_delta(quiet)} ago; holds after {human_delta(timing.normalised)}",
        )
    return True, f"no new alert event for {human_delta(quiet)}"


def _tickets(incident: Incident) -> tuple[bool, str]:
    problems = []
    if not incident.root_cause.strip():
        problems.append("record the root cause")
    keys = set(incident.alerts.exclude(jira_key="").values_list("jira_key", flat=True))
    tickets = {ticket.key: ticket for ticket in incident.tickets.all()}
    for key in sorted(keys):
        ticket = tickets.get(key)
        if ticket is None or ticket.checked_at is None:
            problems.append(f"{key} not checked in Jira yet")
        elif ticket.error:
            problems.append(f"{key}: {ticket.error}")
        elif not ticket.done:
            problems.append(f"{key} is {ticket.status or 'open'} in Jira")
        elif incident.root_cause and ticket.root_cause_posted != incident.root_cause:
            problems.append(f"root cause not yet on {key}")
    if problems:
        return False, "; ".join(problems)
    return (
        True,
        f"{', '.join(sorted(keys))} resolved in Jira" if keys else "root cause recorded; no Jira ticket",
    )

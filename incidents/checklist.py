"""The post-alert checklist of playbook section 7, on one incident.

mrdj ticks what it can verify itself (the alerts have normalised; the Jira tickets are resolved
with the root cause on them); people tick the rest. Resolving the incident comes after: only its
Incident Commander can do that, and only once every item here holds.

Items are numbered by their place in ITEMS (1..n), never by hand, so two never share a number.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from django.db.models import Max, Q, QuerySet

from alerting.models import Alert, Notification
from incidents.models import Incident
from incidents.timing import Timing
from mrdj.times import human_delta


@dataclass(frozen=True)
class Item:
    key: str
    label: str
    automatic: bool = False
    needs_date: bool = False
    step: int = 0  # its number on the checklist: set from its place in ITEMS


_IN_ORDER = (
    Item("logs", "Logs collected (queue worker, backend API, Redis) and uploaded to the incident folder"),
    Item("timeline", "Timeline, decisions and remaining risks documented"),
    Item("normalised", "Alerts normalised: no new alert events for the quiet period", automatic=True),
    Item("tickets", "Jira tickets resolved, with the root cause recorded", automatic=True),
    Item("status_page", "Status page and customer communication given their final update"),
    Item("postmortem", "Post-mortem date set", needs_date=True),
)
ITEMS = tuple(replace(item, step=number) for number, item in enumerate(_IN_ORDER, start=1))
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


def concerned_alerts(incident: Incident) -> QuerySet[Alert]:
    """The alerts that say whether the incident's trouble goes on: its own, and every alert on one
    of its queues, joined or not (an alert joins only at the next tick). An alert about every
    queue (Redis, telemetry) concerns any incident; an incident about every queue, or about none
    named, is concerned by every alert."""
    queues = [queue for queue in incident.queues if queue]
    if not queues or "" in incident.queues:
        return Alert.objects.all()
    return Alert.objects.filter(Q(incident_link__incident=incident) | Q(queue__in=queues) | Q(queue=""))


def _firing(alert: Alert, incident: Incident) -> str:
    link = getattr(alert, "incident_link", None)
    if link is not None and link.incident_id == incident.pk:
        return f"alert {alert.pk}"
    return (
        f"alert {alert.pk} ({alert.get_kind_display()} on {alert.queue or 'all queues'}, "
        "not in this incident)"
    )


def _normalised(incident: Incident, now: datetime, timing: Timing) -> tuple[bool, str]:
    """Never while an alert of the incident, or of its queues, fires; then once no alert event
    (firing, escalation, dead-letter, unacknowledged) came for timing.normalised."""
    concerned = concerned_alerts(incident)
    firing = list(concerned.filter(state=Alert.State.FIRING).select_related("incident_link").order_by("pk"))
    if firing:
        return False, f"{', '.join(_firing(alert, incident) for alert in firing)} still firing"
    # Its own alerts; with none (opened by hand), whatever fired on its queues.
    alerts = incident.alerts.all() if incident.alerts.exists() else concerned
    events = alerts.aggregate(started=Max("started_at"), critical=Max("critical_since"))
    told = (
        Notification.objects.filter(alert__in=alerts)
        .exclude(event__in=(Notification.Event.RESOLVED, Notification.Event.ACKNOWLEDGED))
        .aggregate(last=Max("created_at"))["last"]
    )
    moments = [moment for moment in (events["started"], events["critical"], told) if moment is not None]
    if not moments:
        return True, "no alert of the incident or its queues has fired"
    quiet = now - max(moments)
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

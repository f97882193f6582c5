"""The playbook's deadlines on an open incident, and the reminders sent when one passes.

Section 4: a critical incident needs an Incident Commander within 10 minutes. Section 5: during
a DR incident a status update goes out at least every 15 minutes. Section 4 again: the Product
Owner is brought in once customer impact passes 30 minutes. A reminder repeats once per interval
while what it asks for is still missing (the Product Owner prompt once); each is claimed with
a conditional UPDATE, so two processes send it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction

from alerting import content, notify
from alerting.content import NotificationContent
from alerting.models import ALL_QUEUES, Notification, Severity, Silence
from incidents.models import Entry, Incident, Role
from incidents.timing import Timing
from mrdj.times import human_delta


@dataclass(frozen=True)
class Deadline:
    name: str  # commander, update, product_owner
    due_at: datetime
    missing: str  # what is missing, for the dashboard
    field: str  # the Incident field recording the last reminder


def deadlines(incident: Incident, held: set[str], timing: Timing) -> list[Deadline]:
    """The deadlines still running; held: the names of the roles someone holds."""
    if incident.state != Incident.State.OPEN:
        return []
    found = []
    if incident.severity == Severity.CRITICAL and Role.Name.COMMANDER not in held:
        found.append(
            _next(
                "commander",
                incident.critical_at or incident.opened_at,
                timing.commander,
                incident.commander_reminded_at,
                "an Incident Commander",
                "commander_reminded_at",
            )
        )
    if incident.dr_activated_at:
        base = max(incident.dr_activated_at, incident.last_update_at or incident.dr_activated_at)
        found.append(
            _next(
                "update",
                base,
                timing.cadence,
                incident.update_reminded_at,
                "a status update",
                "update_reminded_at",
            )
        )
    if Role.Name.PRODUCT_OWNER not in held and incident.owner_prompted_at is None:
        found.append(
            Deadline(
                "product_owner",
                incident.opened_at + timing.owner_after,
                "the Product Owner (customer impact)",
                "owner_prompted_at",
            )
        )
    return sorted(found, key=lambda deadline: deadline.due_at)


def _next(name: str, base: datetime, every: timedelta, reminded: datetime | None, missing: str, field: str):
    due = base + every
    if reminded is not None and reminded >= base:
        due = max(due, reminded + every)
    return Deadline(name, due, missing, field)


def remind(incident: Incident, held: set[str], now: datetime, timing: Timing) -> list[Notification]:
    sent = []
    for deadline in deadlines(incident, held, timing):
        if now < deadline.due_at:
            continue
        before = getattr(incident, deadline.field)
        # Claim, notification and entry commit together: a crash in between leaves the
        # reminder unclaimed, to be sent by the next tick.
        with transaction.atomic():
            if not Incident.objects.filter(pk=incident.pk, **{deadline.field: before}).update(
                **{deadline.field: now}
            ):
                continue  # another process sent it
            headline, line = _wording(incident, deadline, now, timing)
            notification = send(incident, "reminder", headline, line, now, Severity.CRITICAL)
            incident.add_entry(Entry.Kind.REMINDER, f"{headline}. {line}", now, notification=notification)
        setattr(incident, deadline.field, now)
        sent.append(notification)
    return sent


def _wording(incident: Incident, deadline: Deadline, now: datetime, timing: Timing) -> tuple[str, str]:
    if deadline.name == "commander":
        since = human_delta(now - (incident.critical_at or incident.opened_at))
        return (
            f"No Incident Commander {since} after going critical",
            f"{timing.commander_handle}: claim the Incident Commander role on the incident page "
            "(playbook section 4: within 10 minutes of a critical).",
        )
    if deadline.name == "update":
        last = incident.last_update_at or incident.dr_activated_at
        lead = incident.roles.filter(name=Role.Name.COMMUNICATIONS).first()
        who = lead.holder if lead else f"Communications Lead ({timing.comms_handle})"
        return (
            f"No status update for {human_delta(now - last)} during the DR incident",
            f"{who}: post a status update on the incident page "
            f"(the cadence is at least every {human_delta(timing.cadence)}).",
        )
    return (
        f"Customer impact has lasted {human_delta(now - incident.opened_at)}",
        f"Incident Commander: bring in the Product Owner ({timing.owner_handle}) and record them "
        "on the incident page (playbook section 4: customer impact over 30 minutes).",
    )


def incident_url(incident: Incident) -> str:
    return f"{content.dashboard_url()}incidents/{incident.pk}/"


def message(incident: Incident, kind: str, headline: str, line: str, severity: str) -> NotificationContent:
    """The content of a reminder or status update, in the shape every transport renders."""
    queues = ", ".join(queue or "all queues" for queue in incident.queues) or "-"
    text = f"{incident.reference}: {headline}"
    return NotificationContent(
        type=kind,
        event=Notification.Event.INCIDENT,
        incident_id=incident.pk,
        queue=queues,
        kind=kind,
        severity=severity,
        title=f"[{severity.upper()}] {text}",
        message=text,
        backlog="-",
        retry_age="-",
        facts=(
            ("Incident", f"{incident.reference}: {incident.title}"),
            ("Severity", incident.severity),
            ("State", incident.state),
            ("Queues", queues),
        ),
        runbook=line,
        started_at=incident.opened_at.isoformat(),
        dashboard_url=incident_url(incident),
    )


def send(
    incident: Incident, kind: str, headline: str, line: str, now: datetime, severity: str
) -> Notification:
    """To the route of severity (reminders: critical); held back only by a silence of everything."""
    return notify.notify(
        alert=None,
        event=Notification.Event.INCIDENT,
        severity=severity,
        content=message(incident, kind, headline, line, severity),
        now=now,
        silence=Silence.covering(ALL_QUEUES, now),
    )

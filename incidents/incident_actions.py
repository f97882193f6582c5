"""What people do to an incident: open one by hand, take a role, write a note or a status update,
tick the checklist, record the root cause, mark it mitigated, resolve it.

Each action is audited (at the moment it took, so the timeline keeps its order) and written as
an entry of the incident. Functions take now, so tests move time instead of waiting for it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from alerting.models import Severity
from incidents import checklist, deadlines, dossier
from incidents.models import Entry, Incident, Role
from incidents.timing import Timing
from integrations.queues import QUEUES
from mrdj import audit
from mrdj.text import one_line_problem, text_problem
from mrdj.times import shown

log = logging.getLogger(__name__)


class IncidentError(Exception):
    """The action cannot be done; problems says why, each naming the field or item concerned."""

    def __init__(self, *problems: str):
        super().__init__("; ".join(problems))
        self.problems = list(problems)


def active() -> QuerySet[Incident]:
    """Open and mitigated incidents, oldest first (a query: page it, count it)."""
    return Incident.objects.exclude(state=Incident.State.RESOLVED).order_by("opened_at", "pk")


def banner() -> tuple[int, Incident | None]:
    """How many incidents are open, and the newest: what every dashboard page shows."""
    open_incidents = active()
    return open_incidents.count(), open_incidents.order_by("-opened_at", "-pk").first()


def _record(
    incident: Incident, action: str, actor: Any, now: datetime, text: str, kind: str, **after
) -> Entry:
    who = audit.actor_fields(actor)["actor"]
    audit.record(f"incident.{action}", actor=actor, target=incident.reference, after=after or None, at=now)
    return incident.add_entry(kind, text, now, actor=who)


def _still_active(incident: Incident) -> None:
    if not incident.active:
        raise IncidentError(f"{incident.reference} is resolved: it no longer changes")


def open_incident(
    title: str, severity: str, queues: list[str], actor: Any, now: datetime | None = None
) -> Incident:
    now = now or timezone.now()
    title = title.strip()
    problems = []
    if not title:
        problems.append("title: say what is wrong")
    elif one_line_problem(title):
        problems.append(f"title: {one_line_problem(title)}")
    elif len(title) > 200:
        problems.append(f"title: at most 200 characters (it has {len(title)})")
    if severity not in Severity.values:
        problems.append(f"severity: {severity!r} is not one of {', '.join(Severity.values)}")
    unknown = [queue for queue in queues if queue and queue not in QUEUES]
    if unknown:
        problems.append(f"queues: unknown queue {', '.join(map(repr, unknown))} (known: {', '.join(QUEUES)})")
    if problems:
        raise IncidentError(*problems)
    who = audit.actor_fields(actor)["actor"]
    with transaction.atomic():
        incident = Incident.objects.create(
            title=title,
            severity=severity,
            queues=sorted(set(queues)),
            opened_at=now,
            opened_by=who,
            critical_at=now if severity == Severity.CRITICAL else None,
        )
        _record(
            incident, "open", actor, now, f"Opened by hand by {who}: {title}", Entry.Kind.OPENED, title=title
        )
    return incident


def claim_role(
    incident: Incident, name: str, actor: Any, now: datetime | None = None, take_over: bool = False
) -> Role:
    """Take a vacant role; taking over someone else's needs take_over (a handover, audited)."""
    now = now or timezone.now()
    _still_active(incident)
    if name not in Role.Name.values:
        raise IncidentError(f"role: {name!r} is not one of {', '.join(Role.Name.values)}")
    fields = audit.actor_fields(actor)
    label = Role.Name(name).label
    with transaction.atomic():
        current = Role.objects.select_for_update().filter(incident=incident, name=name).first()
        if current is not None and current.holder == fields["actor"]:
            return current
        if current is not None and not take_over:
            since = shown(current.since)
            raise IncidentError(f"role: {current.holder} is {label} since {since}; take over explicitly")
        try:
            with transaction.atomic():
                role, _ = Role.objects.update_or_create(
                    incident=incident,
                    name=name,
                    defaults={"user": fields["user"], "holder": fields["actor"], "since": now},
                )
        except IntegrityError:
            raise IncidentError(f"role: someone took {label} a moment ago") from None
        text = (
            f"{fields['actor']} is {label}"
            + (f", taking over from {current.holder}" if current else "")
            + "."
        )
        _record(incident, "role", actor, now, text, Entry.Kind.ROLE, role=name, holder=fields["actor"])
    return role


def add_note(
    incident: Incident, text: str, actor: Any, now: datetime | None = None, update: bool = False
) -> Entry:
    """A note stays on the incident; a status update also goes to the severity's route and
    restarts the update cadence (playbook section 5)."""
    now = now or timezone.now()
    _still_active(incident)
    text = text.strip()
    if not text:
        raise IncidentError("text: write something")
    if len(text) > 4000:
        raise IncidentError(f"text: at most 4000 characters (it has {len(text)})")
    if text_problem(text):
        raise IncidentError(f"text: {text_problem(text)}")
    kind = Entry.Kind.UPDATE if update else Entry.Kind.NOTE
    with transaction.atomic():  # recorded, audited and sent, or none of it
        entry = _record(incident, "update" if update else "note", actor, now, text, kind)
        if update:
            Incident.objects.filter(pk=incident.pk).update(last_update_at=now)
            headline = f"status update by {entry.actor}"
            entry.notification = deadlines.send(incident, "update", headline, text, now, incident.severity)
            entry.save(update_fields=["notification"])
    if update:
        incident.last_update_at = now
    return entry


def tick(
    incident: Incident, key: str, actor: Any, now: datetime | None = None, value: str = "", done: bool = True
) -> None:
    """Tick (or untick) one of the checklist's items that people answer for."""
    now = now or timezone.now()
    _still_active(incident)
    item = checklist.BY_KEY.get(key)
    if item is None:
        raise IncidentError(f"item: {key!r} is not a checklist item ({', '.join(checklist.BY_KEY)})")
    if item.automatic:
        raise IncidentError(f"item: {item.label!r} is verified by mrdj itself and cannot be ticked by hand")
    if one_line_problem(value):
        raise IncidentError(f"value: {one_line_problem(value)}")
    if done and item.needs_date:
        try:
            value = date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            raise IncidentError(f"date: give the post-mortem date as YYYY-MM-DD (got {value!r})") from None
    who = audit.actor_fields(actor)["actor"]
    with transaction.atomic():
        locked = Incident.objects.select_for_update().get(pk=incident.pk)
        if done:
            locked.checklist[key] = {"by": who, "at": now.isoformat(), "value": value}
        else:
            locked.checklist.pop(key, None)
        locked.save(update_fields=["checklist"])
        incident.checklist = locked.checklist
        verb = "Ticked" if done else "Unticked"
        suffix = f" ({value})" if done and value else ""
        _record(
            incident,
            "checklist",
            actor,
            now,
            f"{verb} step {item.step}: {item.label}{suffix}.",
            Entry.Kind.CHECKLIST,
            item=key,
            done=done,
            value=value,
        )


def set_root_cause(incident: Incident, text: str, actor: Any, now: datetime | None = None) -> None:
    """Kept on the incident and commented on each of its Jira tickets by the next check."""
    now = now or timezone.now()
    _still_active(incident)
    text = text.strip()
    if not text:
        raise IncidentError("root cause: describe it")
    if text_problem(text):
        raise IncidentError(f"root cause: {text_problem(text)}")
    with transaction.atomic():
        Incident.objects.filter(pk=incident.pk).update(root_cause=text)
        incident.tickets.update(checked_at=None)  # ask Jira again now, and post it
        _record(incident, "root_cause", actor, now, text, Entry.Kind.ROOT_CAUSE)
    incident.root_cause = text


def mitigate(incident: Incident, actor: Any, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    who = audit.actor_fields(actor)["actor"]
    with transaction.atomic():
        if not Incident.objects.filter(pk=incident.pk, state=Incident.State.OPEN).update(
            state=Incident.State.MITIGATED, mitigated_at=now
        ):
            return False
        _record(incident, "mitigate", actor, now, f"Marked mitigated by {who}.", Entry.Kind.STATE)
    incident.state, incident.mitigated_at = Incident.State.MITIGATED, now
    return True


def commander(incident: Incident) -> Role | None:
    return incident.roles.filter(name=Role.Name.COMMANDER).first()


@dataclass(frozen=True)
class Written:
    """Where the dossier went on resolution; error says why it did not."""

    paths: list[str] = field(default_factory=list)
    error: str = ""


def resolve(incident: Incident, actor: Any, now: datetime | None = None) -> Written:
    """Playbook 7.5: only its Incident Commander, only with the checklist complete.

    The incident's row is locked meanwhile, so an alert cannot join between the check and
    the resolution. With INCIDENT_DOSSIER_DIR set, the dossier is written there; a failed
    write does not undo the resolution (incident_export writes it again).
    """
    now = now or timezone.now()
    timing = Timing.read()
    fields = audit.actor_fields(actor)
    with transaction.atomic():
        locked = Incident.objects.select_for_update().get(pk=incident.pk)
        _still_active(locked)
        problems = []
        lead = commander(locked)
        if lead is None:
            problems.append(
                "Incident Commander: nobody holds the role; only the Incident Commander can resolve"
            )
        elif not lead.held_by(actor):
            problems.append(f"Incident Commander: only {lead.holder} can resolve {locked.reference}")
        problems += checklist.missing(checklist.states(locked, now, timing))
        if problems:
            raise IncidentError(*problems)
        locked.state, locked.resolved_at, locked.resolved_by = Incident.State.RESOLVED, now, fields["actor"]
        locked.save(update_fields=["state", "resolved_at", "resolved_by"])
        _record(
            locked,
            "resolve",
            actor,
            now,
            f"Resolved by {fields['actor']}, Incident Commander.",
            Entry.Kind.STATE,
        )
    incident.state, incident.resolved_at, incident.resolved_by = locked.state, now, fields["actor"]
    if not timing.dossier_dir:
        return Written()
    try:
        return Written(dossier.write(locked, now))
    except OSError as error:
        log.error("dossier of %s not written to %s: %s", locked.reference, timing.dossier_dir, error)
        return Written(error=f"{timing.dossier_dir}: {error.strerror or error}")

"""Incidents follow the alerts by themselves, on every tick of the alert evaluation.

A firing alert on a queue an open incident concerns joins it; a critical alert no incident
takes opens one, and so does the DR trigger. The first acknowledgement makes its author
first responder; an incident whose alerts have all resolved is mitigated. Linking works
level-triggered (what is firing and unlinked now), so a crash between two steps loses
nothing: the next tick finishes the job.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from alerting.models import Alert, DrActivation, Severity
from incidents import deadlines, dr_bridge, statuspage, tickets
from incidents.models import Entry, Incident, IncidentAlert, Lease, Role
from incidents.timing import Timing

log = logging.getLogger(__name__)
LEASE = timedelta(seconds=30)


def on_ticked(sender, now: datetime, **kwargs) -> None:
    sync(now)


def on_acknowledged(sender, alert: Alert, now: datetime, **kwargs) -> None:
    link = IncidentAlert.objects.filter(alert=alert).select_related("incident").first()
    if link is not None:
        fill_first_responder(link.incident)


def sync(now: datetime | None = None) -> None:
    now = now or timezone.now()
    unlinked = list(
        Alert.objects.filter(state=Alert.State.FIRING, incident_link__isnull=True).order_by(
            "started_at", "pk"
        )
    )
    dr = DrActivation.objects.filter(open=True, incident__isnull=True).first()
    active = Incident.objects.exclude(state=Incident.State.RESOLVED)
    # A warning that no incident takes stays unlinked while it fires: no lease for it each time.
    linkable = [alert for alert in unlinked if alert.severity == Severity.CRITICAL] or (
        unlinked if unlinked and active.exists() else []
    )
    if linkable or dr:
        with _link_lease() as held:
            if held:
                for alert in linkable:
                    _link(alert, now)
                if dr is not None:
                    _link_dr(dr, now)
    timing = Timing.read()  # after linking: a broken INCIDENT_* value never stops incidents opening
    for incident in Incident.objects.exclude(state=Incident.State.RESOLVED):
        follow(incident, now, timing)
    dr_bridge.send_due(now)  # first tries whose process died, and tries again after a failure
    statuspage.send_due(now)  # the same for status page posts


@contextmanager
def _link_lease() -> Iterator[bool]:
    """One process links at a time; on the real clock, since tests move `now`."""
    Lease.objects.get_or_create(name="link")
    real_now = timezone.now()
    free = Q(held_until__isnull=True) | Q(held_until__lte=real_now)
    held = bool(Lease.objects.filter(free, name="link").update(held_until=real_now + LEASE))
    try:
        yield held
    finally:
        if held:
            Lease.objects.filter(name="link").update(held_until=None)


def follow(incident: Incident, now: datetime, timing: Timing) -> None:
    """Everything an active incident needs on each evaluation."""
    fill_first_responder(incident)
    _follow_alerts(incident, now)
    held = set(incident.roles.values_list("name", flat=True))
    deadlines.remind(incident, held, now, timing)
    tickets.follow(incident, now, timing)


# --- Linking


def _matching(alert: Alert) -> Incident | None:
    """The oldest active incident on the alert's queue; an alert about every queue (Redis, telemetry)
    concerns any incident, and an incident about every queue takes any alert."""
    for incident in Incident.objects.exclude(state=Incident.State.RESOLVED).order_by("opened_at", "pk"):
        if not alert.queue or alert.queue in incident.queues or "" in incident.queues:
            return incident
    return None


def _describe(alert: Alert) -> str:
    return f"alert {alert.pk} ({alert.severity} {alert.get_kind_display()} on {alert.queue or 'all queues'})"


def _link(alert: Alert, now: datetime) -> None:
    incident = _matching(alert)
    if incident is not None and join(incident, alert, now):
        return
    if alert.severity == Severity.CRITICAL:
        _open_for(alert, now)


def _concerned(alerts: list[Alert]) -> list[str]:
    """The queues of the alerts; "" (every queue) only when none names a queue, so an alert
    about everything (telemetry, Redis) joining never makes an incident take every alert."""
    return sorted({alert.queue for alert in alerts if alert.queue}) or [""]


def _open_for(alert: Alert, now: datetime) -> None:
    started = alert.critical_since or now
    try:
        with transaction.atomic():
            incident = Incident.objects.create(
                title=f"Critical {alert.get_kind_display()} on {alert.queue or 'all queues'}",
                severity=Severity.CRITICAL,
                queues=_concerned([alert]),
                opened_at=started,
                opened_by="mrdj",
                critical_at=started,
            )
            IncidentAlert.objects.create(incident=incident, alert=alert, joined_at=started)
            incident.add_entry(
                Entry.Kind.OPENED, f"Opened by mrdj: {_describe(alert)} went critical.", started
            )
    except IntegrityError:
        return  # linked by another process meanwhile
    log.warning("incident %s opened: %s", incident.reference, incident.title)


def join(incident: Incident, alert: Alert, now: datetime) -> bool:
    """False when the alert is linked already, or the incident was resolved meanwhile (its row is
    locked, so a resolve and a join never cross)."""
    try:
        with transaction.atomic():
            active = Incident.objects.select_for_update().exclude(state=Incident.State.RESOLVED)
            if not active.filter(pk=incident.pk).exists():
                return False
            IncidentAlert.objects.create(incident=incident, alert=alert, joined_at=now)
            incident.add_entry(Entry.Kind.JOINED, f"{_describe(alert)} joined.", now)
            if alert.queue and alert.queue not in incident.queues:
                incident.queues = sorted({*incident.queues, alert.queue})
                Incident.objects.filter(pk=incident.pk).update(queues=incident.queues)
            if alert.severity == Severity.CRITICAL:
                _reopen(incident, alert, now)
            elif incident.state == Incident.State.MITIGATED:
                incident.add_entry(
                    Entry.Kind.STATE, "Stays mitigated: a warning does not reopen it (a critical would).", now
                )
    except IntegrityError:
        return False
    return True


def _reopen(incident: Incident, alert: Alert, now: datetime) -> None:
    """A mitigated incident opens again for a critical alert of its queues: a warning (a few
    dead-letter jobs after the fix) must not page the war room again."""
    if Incident.objects.filter(pk=incident.pk, state=Incident.State.MITIGATED).update(
        state=Incident.State.OPEN, mitigated_at=None
    ):
        incident.state, incident.mitigated_at = Incident.State.OPEN, None
        incident.add_entry(Entry.Kind.STATE, f"Open again: {_describe(alert)} fires.", now)


def _link_dr(activation: DrActivation, now: datetime) -> None:
    alerts = list(activation.alerts.all())
    link = (
        IncidentAlert.objects.filter(alert__in=alerts)
        .exclude(incident__state=Incident.State.RESOLVED)
        .order_by("incident__opened_at", "incident_id")
        .first()
    )
    incident = link.incident if link else None
    fields = {
        "dr_activation": activation,
        "dr_activated_at": activation.triggered_at,
        "dr_reason": activation.reason,
        "severity": Severity.CRITICAL,
    }
    try:
        with transaction.atomic():
            if incident is None:
                incident = Incident.objects.create(
                    title=f"DR plan activated: {activation.reason}"[:200],
                    queues=_concerned(alerts),
                    opened_at=activation.triggered_at,
                    opened_by="mrdj",
                    critical_at=activation.triggered_at,
                    **fields,
                )
                incident.add_entry(
                    Entry.Kind.OPENED, "Opened by mrdj: the DR trigger fired.", activation.triggered_at
                )
            else:
                fields["critical_at"] = incident.critical_at or activation.triggered_at
                Incident.objects.filter(pk=incident.pk).update(**fields)
            incident.add_entry(
                Entry.Kind.DR,
                f"DR plan activated: {activation.reason}. Update cadence starts now.",
                activation.triggered_at,
            )
            dr_bridge.on_dr_activated(incident, activation.triggered_at)
    except IntegrityError:
        return  # another process linked it
    for alert in alerts:
        if alert.firing:
            join(incident, alert, now)


# --- Following


def fill_first_responder(incident: Incident) -> None:
    """Whoever acknowledged one of its alerts first, unless someone holds the role already."""
    if incident.roles.filter(name=Role.Name.FIRST_RESPONDER).exists():
        return
    first = incident.alerts.filter(acknowledged_at__isnull=False).order_by("acknowledged_at").first()
    if first is None:
        return
    try:
        with transaction.atomic():
            Role.objects.create(
                incident=incident,
                name=Role.Name.FIRST_RESPONDER,
                user=first.acknowledged_by,
                holder=first.acknowledged_by_name,
                since=first.acknowledged_at,
            )
            incident.add_entry(
                Entry.Kind.ROLE,
                f"{first.acknowledged_by_name} is first responder: acknowledged alert {first.pk}.",
                first.acknowledged_at,
                actor=first.acknowledged_by_name,
            )
    except IntegrityError:
        pass


def _follow_alerts(incident: Incident, now: datetime) -> None:
    alerts = list(incident.alerts.all())
    firing = [alert for alert in alerts if alert.firing]
    critical = [alert for alert in firing if alert.severity == Severity.CRITICAL]
    if critical and incident.severity != Severity.CRITICAL:
        at = min(alert.critical_since or now for alert in critical)
        with transaction.atomic():  # the change and its timeline entry, or neither
            if (
                Incident.objects.filter(pk=incident.pk)
                .exclude(severity=Severity.CRITICAL)
                .update(severity=Severity.CRITICAL, critical_at=at)
            ):
                incident.severity, incident.critical_at = Severity.CRITICAL, at
                incident.add_entry(Entry.Kind.STATE, f"Critical: {_describe(critical[0])}.", at)
    if incident.state == Incident.State.MITIGATED and incident.mitigated_at:
        # A joined warning went critical after the mitigation (one already critical then was
        # known to whoever mitigated it).
        later = [alert for alert in critical if (alert.critical_since or now) > incident.mitigated_at]
        if later:
            with transaction.atomic():
                _reopen(incident, later[0], now)
    if alerts and not firing and incident.state == Incident.State.OPEN:
        at = max(alert.resolved_at or now for alert in alerts)
        with transaction.atomic():
            if Incident.objects.filter(pk=incident.pk, state=Incident.State.OPEN).update(
                state=Incident.State.MITIGATED, mitigated_at=at
            ):
                incident.state, incident.mitigated_at = Incident.State.MITIGATED, at
                incident.add_entry(
                    Entry.Kind.STATE, "Mitigated: every alert of the incident has resolved.", at
                )

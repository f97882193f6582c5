"""The incident's Jira tickets: whether Jira has them resolved, and the root cause on each.

Asked once the incident's alerts have all resolved (before that the tickets are open by
design), at most every INCIDENT_JIRA_CHECK_MS, from a background thread: a slow Jira never
holds up an evaluation.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db.models import Q

from alerting import jira, sender
from incidents.models import Incident, Ticket
from incidents.timing import Timing

log = logging.getLogger(__name__)


def follow(incident: Incident, now: datetime, timing: Timing) -> None:
    for key in incident.alerts.exclude(jira_key="").values_list("jira_key", flat=True):
        Ticket.objects.get_or_create(incident=incident, key=key)
    if incident.state != Incident.State.MITIGATED:
        return
    unfinished = Q(done=False) | ~Q(root_cause_posted=incident.root_cause)
    stale = Q(checked_at__isnull=True) | Q(checked_at__lte=now - timing.jira_check)
    for ticket in incident.tickets.filter(unfinished & stale):
        # Claimed by moving checked_at: one process asks Jira per interval.
        if Ticket.objects.filter(pk=ticket.pk, checked_at=ticket.checked_at).update(checked_at=now):
            sender.in_background(check, ticket.pk, now)


def check(ticket_id: int, now: datetime) -> Ticket:
    """Ask Jira for the ticket's status; comment the incident's root cause when it is new.

    Saves checked_at too: a root cause recorded meanwhile reset it, and what this check
    found (with or without that root cause) is what the next check starts from."""
    ticket = Ticket.objects.select_related("incident").get(pk=ticket_id)
    ticket.checked_at = now
    settings = jira.JiraSettings.read()
    if not settings.enabled:
        ticket.error = "Jira is not configured (ALERT_JIRA_ENDPOINT is empty): cannot verify the ticket"
        ticket.save(update_fields=["error", "checked_at"])
        return ticket
    client = jira.JiraClient(settings)
    incident = ticket.incident
    try:
        if incident.root_cause and ticket.root_cause_posted != incident.root_cause:
            client.comment(
                ticket.key, f"Root cause, recorded in mrdj for {incident.reference}:\n{incident.root_cause}"
            )
            ticket.root_cause_posted = incident.root_cause
        ticket.status, ticket.done = client.status(ticket.key)
        ticket.error = ""
    except jira.JiraError as error:
        ticket.error = str(error)[:300]
        log.warning("Jira ticket %s of %s: %s", ticket.key, incident.reference, error)
    ticket.save(update_fields=["status", "done", "root_cause_posted", "error", "checked_at"])
    return ticket

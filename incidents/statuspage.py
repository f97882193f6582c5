"""Publishing status updates on the status page (Atlassian Statuspage; statuspage_api says how).

A status update can also be published (a checkbox, off by default): the incident's first
publication creates the status-page incident, later ones update it, and resolving offers the
final update (resolved, components operational). Publishing never holds up the incident: a
post is written with the update and leaves from the alert sender's threads after commit. A
420, a 429, a 5xx or no answer is tried again with the alert deliveries' backoff by the next
tick that finds it due; any other answer is final until someone presses Retry
publishing. An incident's posts go in order, one at a time: an update waits for the one
before it, so the page never goes back to an older status. Each result is an entry on the
incident's timeline.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from alerting import sender
from incidents import statuspage_api
from incidents.incident_actions import IncidentError
from incidents.models import Entry, Incident, StatusPagePost
from incidents.outbound import lease, next_try, unclaimed
from incidents.statuspage_api import NOT_CONFIGURED, StatusPage
from mrdj import audit
from mrdj.text import text_problem
from mrdj.times import shown

log = logging.getLogger(__name__)
FINAL_TEXT = "This incident has been resolved."
TEXT_LIMIT = 4000


def configured() -> bool:
    return StatusPage.read().configured


def final_text(text: str) -> str:
    """The final update's text, checked before the incident is resolved (FINAL_TEXT if empty)."""
    text = text.strip() or FINAL_TEXT
    if len(text) > TEXT_LIMIT:
        raise IncidentError(f"final update: at most {TEXT_LIMIT} characters (it has {len(text)})")
    if text_problem(text):
        raise IncidentError(f"final update: {text_problem(text)}")
    return text


# --- Asking for it


def publish(incident: Incident, text: str, actor: Any, now: datetime | None = None) -> str:
    """Publish text with the incident's status as it is now (resolved: the final update). A
    sentence for the operator; the mrdj action it goes with stands whatever happens here."""
    now = now or timezone.now()
    page = StatusPage.read()
    if not page.configured:
        return f"Not published: {NOT_CONFIGURED}."
    status = statuspage_api.page_status(incident)
    who = audit.actor_fields(actor)["actor"]
    with transaction.atomic():
        post = StatusPagePost.objects.create(
            incident=incident,
            requested_at=now,
            requested_by=who,
            status=status,
            body=text,
            components=statuspage_api.component_statuses(incident, status, page),
            next_attempt_at=now,
        )
        audit.record(
            "incident.status_page", actor=actor, target=incident.reference, after={"status": status}, at=now
        )
        transaction.on_commit(lambda: sender.in_background(send, post.pk, now))
    what = "the final update" if status == statuspage_api.RESOLVED else f"it ({status})"
    return f"Publishing {what} on the status page: Statuspage's answer shows on the timeline."


def _waiting(incident: Incident):
    """Posts not published since the last one Statuspage accepted: what Retry sends again."""
    published = incident.status_page_posts.filter(published_at__isnull=False).order_by("-pk").first()
    waiting = incident.status_page_posts.filter(published_at__isnull=True)
    return waiting.filter(pk__gt=published.pk) if published else waiting


def retry(incident: Incident, actor: Any, now: datetime | None = None) -> str:
    """The Retry publishing button: what failed is sent again, in order, from its first try."""
    now = now or timezone.now()
    if not configured():
        raise IncidentError(f"Retry publishing: {NOT_CONFIGURED}; set them on the Configuration tab")
    who = audit.actor_fields(actor)["actor"]
    with transaction.atomic():
        again = (
            _waiting(incident).filter(unclaimed(now)).update(next_attempt_at=now, attempts=0, tried_at=None)
        )
        if not again:
            raise IncidentError(
                f"Retry publishing: nothing of {incident.reference} is waiting to be published"
            )
        audit.record("incident.status_page_retry", actor=actor, target=incident.reference, at=now)
        plural = "s" if again > 1 else ""
        incident.add_entry(
            Entry.Kind.STATUS_PAGE, f"Retry publishing: {again} update{plural} sent again.", now, who
        )
        first = _waiting(incident).order_by("pk").values_list("pk", flat=True).first()
        transaction.on_commit(lambda: sender.in_background(send, first, now))
    return f"Publishing again on the status page ({again} update{plural}): the answer shows on the timeline."


# --- Sending it


def _due(now: datetime) -> Q:
    return Q(published_at__isnull=True, next_attempt_at__lte=now) & unclaimed(now)


def _unfinished_before() -> Exists:
    """An earlier post of the same incident still being tried: this one waits for it."""
    return Exists(
        StatusPagePost.objects.filter(
            incident=OuterRef("incident"),
            pk__lt=OuterRef("pk"),
            published_at__isnull=True,
            next_attempt_at__isnull=False,
        )
    )


def send_due(now: datetime) -> None:
    """On every tick: hand the posts due a try to the sender's threads, each incident's
    first (the rest follow it)."""
    due = StatusPagePost.objects.filter(_due(now)).exclude(_unfinished_before())
    for pk in due.values_list("pk", flat=True):
        sender.in_background(send, pk, now)


def send(post_id: int, now: datetime | None = None) -> StatusPagePost | None:
    """Try the post when it is due, its turn, and no other process is trying it; then the
    incident's next ones that are due, in order. The first post tried, or None."""
    now = now or timezone.now()
    post = first = _try(post_id, now)
    while post is not None and post.next_attempt_at is None:  # done with: the next one's turn
        now = max(now, timezone.now())  # it may have been asked for while this one was out
        following = (
            StatusPagePost.objects.filter(_due(now), incident_id=post.incident_id, pk__gt=post.pk)
            .order_by("pk")
            .values_list("pk", flat=True)
            .first()
        )
        post = _try(following, now) if following else None
    return first


def _try(post_id: int, now: datetime) -> StatusPagePost | None:
    claimed = (
        StatusPagePost.objects.filter(_due(now), pk=post_id)
        .exclude(_unfinished_before())
        .update(claimed_until=lease(now))
    )
    if not claimed:
        return None
    post = StatusPagePost.objects.select_related("incident").get(pk=post_id)
    post.attempts += 1
    page = StatusPage.read()
    if not page.configured:
        return _record(post, now, statuspage_api.Outcome(None, error=NOT_CONFIGURED))
    created = (
        StatusPagePost.objects.filter(incident_id=post.incident_id, published_at__isnull=False)
        .exclude(statuspage_id="")
        .order_by("-pk")
        .values_list("statuspage_id", flat=True)
        .first()
    )
    name = "" if created else post.incident.title
    body = statuspage_api.payload(name, post.status, post.body, post.components)
    return _record(post, now, statuspage_api.send(page, created or "", body))


def _record(post: StatusPagePost, now: datetime, outcome: statuspage_api.Outcome) -> StatusPagePost:
    post.tried_at, post.response_code, post.claimed_until = now, outcome.response_code, None
    post.error = outcome.error[:300]
    incident = post.incident
    if not outcome.error:
        post.published_at, post.next_attempt_at = now, None
        post.statuspage_id = outcome.statuspage_id
        text = _published_text(post)
        log.info("%s: %s", incident.reference, text)
    else:
        post.next_attempt_at = next_try(post.attempts, outcome.again, now)
        then = (
            f"next try {shown(post.next_attempt_at)}"
            if post.next_attempt_at
            else "given up: Retry publishing sends it again"
        )
        text = f"Status page not updated ({post.status}, try {post.attempts}): {post.error}; {then}."
        log.warning("%s: %s", incident.reference, text)
    with transaction.atomic():
        post.save(
            update_fields=[
                "attempts",
                "tried_at",
                "response_code",
                "error",
                "claimed_until",
                "published_at",
                "next_attempt_at",
                "statuspage_id",
            ]
        )
        incident.add_entry(Entry.Kind.STATUS_PAGE, text, now)
    return post


def _published_text(post: StatusPagePost) -> str:
    first = not StatusPagePost.objects.filter(
        incident_id=post.incident_id, published_at__isnull=False, pk__lt=post.pk
    ).exists()
    verb = "created" if first else "updated"
    text = f"Published on the status page: Statuspage incident {post.statuspage_id} {verb} ({post.status})"
    if post.status == statuspage_api.RESOLVED and post.components:
        text += ", its components operational"
    return text + f", answered {post.response_code}."


# --- On the incident page


def page_state(incident: Incident) -> dict[str, Any]:
    """Whether to offer publishing, one line saying where publishing stands ("" when there is
    nothing to say), and whether Retry publishing has something to send."""
    page_configured = configured()
    waiting = _waiting(incident).order_by("pk").first()
    last = incident.status_page_posts.order_by("-pk").first()
    being_sent = waiting is not None and waiting.claimed_until and waiting.claimed_until > timezone.now()
    return {
        "configured": page_configured,
        "status": _status_line(page_configured, waiting, last),
        "retryable": page_configured and waiting is not None and not being_sent,
    }


def _status_line(page_configured: bool, waiting: StatusPagePost | None, last: StatusPagePost | None) -> str:
    if waiting is not None:
        if not waiting.tried_at or waiting.claimed_until:
            return f"publishing ({waiting.status})"
        if waiting.next_attempt_at:
            return f"not published yet ({waiting.error}); next try {shown(waiting.next_attempt_at)}"
        return f"not published ({waiting.error}): press Retry publishing to send it again"
    if last is not None:
        return (
            f"published {shown(last.published_at)} ({last.status}), Statuspage incident {last.statuspage_id}"
        )
    return "nothing published yet" if page_configured else ""

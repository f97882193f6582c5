"""A queue's jobs (filtered, searched, dead-letter grouped by cause) and one job's tries;
replay or cancel one job, a selection, or every dead-letter job with one cause; correct a
payload and send it again."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from dashboard import chart_marks, job_pages
from dashboard.views import action, answer, render_page
from integrations import history, job_edits, operations
from integrations.models import Job, Status
from integrations.queues import QUEUES
from mrdj.api import BadRequest, ascii_digits, json_error, parse_json
from mrdj.auth import staff_only, token_or_staff


def _queue(name: str):
    if name not in QUEUES:
        raise Http404(f"unknown queue {name[:40]!r}")
    return QUEUES[name]


@require_GET
@staff_only
def jobs(request: HttpRequest, queue: str) -> HttpResponse:
    target = _queue(queue)
    try:
        filters = job_pages.read_filters(request.GET)
    except BadRequest as problem:
        messages.error(request, str(problem))
        filters = job_pages.Filters()
    return render_page(
        request,
        "jobs.html",
        "queues",
        queue=target,
        filters=filters,
        states=job_pages.STATES,
        causes=job_pages.dead_letter_causes(target.name),
        **job_pages.jobs_page(target.name, filters),
    )


@require_GET
@token_or_staff("METRICS_API_TOKEN", "OPS_API_TOKEN")
def history_json(request: HttpRequest, queue: str) -> JsonResponse:
    """The chart series of one queue, with the marks on their time axis."""
    if queue not in QUEUES:
        return json_error(f"unknown queue {queue[:40]!r}: one of {', '.join(QUEUES)}", 404)
    span = request.GET.get("range", "1h")
    if span not in history.RANGES:
        return json_error(f"range: {span[:20]!r} is not one of {', '.join(history.RANGES)}", 400)
    now = timezone.now()
    found = history.series(queue, span, now)
    found["marks"] = chart_marks.marks(queue, now - history.RANGES[span][1])
    response = JsonResponse(found)
    response["Cache-Control"] = "no-store"
    return response


@require_GET
@staff_only
def job(request: HttpRequest, job_id: int) -> HttpResponse:
    found = get_object_or_404(Job, pk=job_id)
    return render_page(request, "job.html", "queues", **job_pages.job_detail(found))


@action("integrations.replay_job")
def replay_job(request: HttpRequest, job_id: int) -> HttpResponse:
    found = get_object_or_404(Job, pk=job_id)
    back = reverse("dashboard:job", args=[found.pk])
    if found.status != Status.DEAD:
        return answer(request, f"job {found.pk} is {found.status}: only dead-letter jobs are replayed",
                      messages.WARNING, back=back)  # fmt: skip
    operations.replay(QUEUES[found.queue], request.user, [found.pk])
    return answer(request, f"Job {found.pk} is back in the queue; it is sent at the next try.", back=back)


@action("integrations.cancel_job")
def cancel_job(request: HttpRequest, job_id: int) -> HttpResponse:
    found = get_object_or_404(Job, pk=job_id)
    cancelled = job_edits.cancel(found.queue, request.user, [found.pk])
    back = reverse("dashboard:job", args=[found.pk])
    if not cancelled:
        return answer(request, f"job {found.pk} is {found.get_status_display()}: it cannot be cancelled",
                      messages.WARNING, back=back)  # fmt: skip
    return answer(request, f"Job {found.pk} is cancelled: it is kept, and never sent.", back=back)


@action("integrations.cancel_job")
def edit_job(request: HttpRequest, job_id: int) -> HttpResponse:
    """The edited payload replaces the job's (the original is kept) and the job is sent again."""
    found = get_object_or_404(Job, pk=job_id)
    back = reverse("dashboard:job", args=[found.pk])
    try:
        payload = parse_json(request.POST.get("payload", "").encode())
        job_edits.edit_and_replay(found.pk, payload, request.user)
    except (BadRequest, job_edits.Refused) as problem:
        text = str(problem).replace("body", "payload", 1)
        return answer(request, f"Not saved: {text}", messages.ERROR, back=back)
    return answer(request, f"Job {found.pk} has the new payload and is back in the queue.", back=back)


@require_POST
@staff_only
def selected(request: HttpRequest, queue: str) -> HttpResponse:
    """Replay or cancel the jobs ticked on the Jobs page, each with its own permission."""
    target = _queue(queue)
    cancelling = request.POST.get("do") == "cancel"
    permission = "integrations.cancel_job" if cancelling else "integrations.replay_job"
    if not request.user.has_perm(permission):
        raise PermissionDenied(f"this needs the permission {permission}")
    back = request.POST.get("next", "") or reverse("dashboard:jobs", args=[target.name])
    ids = [int(value) for value in request.POST.getlist("ids") if ascii_digits(value)]
    if not ids:
        return answer(request, "No job is selected.", messages.WARNING, back=back)
    if cancelling:
        done = job_edits.cancel(target.name, request.user, ids)
        text = f"Cancelled {done} of {len(ids)} selected job(s)"
    else:
        done = operations.replay(target, request.user, ids)
        text = f"Replayed {done} of {len(ids)} selected job(s)"
    skipped = " (the others are in flight, delivered or not dead-letter)" if done < len(ids) else ""
    return answer(request, f"{text}{skipped}.", back=back)


@action("integrations.replay_job")
def replay_cause(request: HttpRequest, queue: str) -> HttpResponse:
    target = _queue(queue)
    cause = request.POST.get("cause", "")
    moved = operations.replay(target, request.user, job_pages.dead_ids(target.name, cause))
    back = reverse("dashboard:jobs", args=[target.name])
    return answer(
        request, f"Replayed {moved} dead-letter job(s) of {queue} that failed with {cause!r}.", back=back
    )

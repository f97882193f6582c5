"""A queue's jobs (filtered, searched, dead-letter grouped by cause) and one job's tries;
replay of one job or of every dead-letter job with one cause."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.http import require_GET

from dashboard import job_pages
from dashboard.views import action, answer, render_page
from integrations import services as queue_services
from integrations.models import Job, Status
from integrations.queues import QUEUES
from mrdj.api import BadRequest
from mrdj.auth import staff_only


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
    queue_services.replay(QUEUES[found.queue], request.user, [found.pk])
    return answer(request, f"Job {found.pk} is back in the queue; it is sent at the next try.", back=back)


@action("integrations.replay_job")
def replay_cause(request: HttpRequest, queue: str) -> HttpResponse:
    target = _queue(queue)
    cause = request.POST.get("cause", "")
    moved = queue_services.replay(target, request.user, job_pages.dead_ids(target.name, cause))
    back = reverse("dashboard:jobs", args=[target.name])
    return answer(
        request, f"Replayed {moved} dead-letter job(s) of {queue} that failed with {cause!r}.", back=back
    )

"""The ops dashboard: pages for staff, and POST actions that each call one service function."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from alerting import alert_actions
from alerting.models import Alert, Delivery, Silence
from dashboard import page_data
from incidents import incident_actions
from integrations import operations
from integrations.queues import QUEUES
from mrdj.api import BadRequest, moment
from mrdj.auth import staff_only
from mrdj.config import ConfigError, describe_invalid
from mrdj.diffs import diff_lines
from mrdj.flags import describe_flags, set_flag
from mrdj.models import AuditEvent
from mrdj.times import zone_name


def action(permission: str) -> Callable:
    """A state-changing action: staff, POST (Django's CSRF check applies), and permission."""

    def decorator(view: Callable) -> Callable:
        @require_POST
        @staff_only
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs):
            if not request.user.has_perm(permission):
                raise PermissionDenied(f"this needs the permission {permission}")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def answer(
    request: HttpRequest,
    message: str,
    level: int = messages.SUCCESS,
    fallback: str = "dashboard:queues",
    back: str = "",
):
    """Answer fetch() with JSON, a plain form post with a message and a redirect back."""
    if "application/json" in request.headers.get("Accept", ""):
        status = 200 if level < messages.ERROR else 400
        return JsonResponse({"message": message, "level": messages.DEFAULT_TAGS[level]}, status=status)
    messages.add_message(request, level, message)
    back = back or request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, {request.get_host()}, request.is_secure()):
        back = reverse(fallback)
    return redirect(back)


def render_page(request: HttpRequest, template: str, tab: str, **context) -> HttpResponse:
    """Every page carries the banner of the incidents still open: their count and the newest."""
    open_count, newest_open = incident_actions.banner()
    banners = {"open_count": open_count, "newest_open": newest_open, "invalid_config": describe_invalid()}
    zone = {"zone": zone_name(), "time_zone": settings.TIME_ZONE}
    return render(request, f"dashboard/{template}", {"tab": tab, **banners, **zone, **context})


# --- Pages


@require_GET
@staff_only
def queues(request: HttpRequest) -> HttpResponse:
    return render_page(request, "queues.html", "queues", **page_data.queue_cards(), refresh_ms=5000)


@require_GET
@staff_only
def queues_json(request: HttpRequest) -> JsonResponse:
    """What the queue cards refresh themselves from."""
    response = JsonResponse(page_data.queue_cards())
    response["Cache-Control"] = "no-store"
    return response


@require_GET
@staff_only
def flags(request: HttpRequest) -> HttpResponse:
    try:
        states = describe_flags()
    except ConfigError as error:
        messages.error(request, str(error))
        states = []
    return render_page(request, "flags.html", "flags", flags=states)


@require_GET
@staff_only
def alerts(request: HttpRequest) -> HttpResponse:
    default_end = timezone.localtime() + timezone.timedelta(hours=1)
    return render_page(
        request,
        "alerts.html",
        "alerts",
        **page_data.alerts_page(request.GET.get("silences")),
        default_end=default_end.strftime("%Y-%m-%dT%H:%M"),
    )


@require_GET
@staff_only
def health(request: HttpRequest) -> HttpResponse:
    return render_page(request, "health.html", "health", **page_data.health())


@require_GET
@staff_only
def readiness(request: HttpRequest) -> HttpResponse:
    checks = page_data.readiness()
    return render_page(
        request,
        "readiness.html",
        "readiness",
        checks=checks,
        manual=page_data.MANUAL_STEPS,
        ready=all(check.ok for check in checks),
    )


@require_GET
@staff_only
def audit(request: HttpRequest) -> HttpResponse:
    kind = request.GET.get("action", "")
    events = AuditEvent.objects.select_related("user")
    if kind:
        events = events.filter(action=kind)
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    rows = [(event, diff_lines(event.before, event.after)) for event in page]
    kinds = AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct()
    return render_page(request, "audit.html", "audit", page=page, rows=rows, kinds=list(kinds), kind=kind)


# --- Actions


def _bulk(request: HttpRequest, queue: str, run: Callable, done: str) -> HttpResponse:
    target = QUEUES.get(queue)
    if target is None:
        return answer(request, f"unknown queue {queue!r}", messages.ERROR)
    moved = run(target, request.user)
    return answer(request, f"{queue}: {moved} {done}")


@action("integrations.flush_job")
def flush(request: HttpRequest, queue: str) -> HttpResponse:
    return _bulk(request, queue, operations.flush, "job(s) waiting to retry flushed: they are tried now.")


@action("integrations.replay_job")
def replay(request: HttpRequest, queue: str) -> HttpResponse:
    return _bulk(request, queue, operations.replay, "dead-letter job(s) replayed.")


@action("mrdj.change_flags")
def mode(request: HttpRequest) -> HttpResponse:
    wanted = request.POST.get("mode", "")
    if wanted not in ("celery", "in-process"):
        return answer(request, "mode must be celery or in-process", messages.ERROR)
    try:
        operations.switch_mode(wanted == "celery", request.user, force="force" in request.POST)
    except ConfigError as error:
        return answer(request, str(error), messages.ERROR)
    return answer(request, f"Jobs now run {'on Celery over Redis' if wanted == 'celery' else 'in-process'}.")


@action("mrdj.change_flags")
def flag(request: HttpRequest, name: str) -> HttpResponse:
    value = request.POST.get("value", "")
    try:
        set_flag(name, value, actor=request.user)
    except ConfigError as error:  # FlagError included: unknown or forced flag, invalid value
        return answer(request, str(error), messages.ERROR, "dashboard:flags")
    return answer(request, f"{name} is now {value}.", fallback="dashboard:flags")


@action("alerting.acknowledge_alert")
def acknowledge(request: HttpRequest, alert_id: int) -> HttpResponse:
    alert = get_object_or_404(Alert, pk=alert_id)
    if not alert.firing:
        return answer(
            request,
            f"alert {alert_id} is resolved; nothing to acknowledge",
            messages.WARNING,
            "dashboard:alerts",
        )
    if alert_actions.acknowledge(alert, request.user):
        return answer(request, f"You are first responder for alert {alert_id}.", fallback="dashboard:alerts")
    who = alert.acknowledged_by_name
    return answer(
        request, f"alert {alert_id} was already acknowledged by {who}.", messages.WARNING, "dashboard:alerts"
    )


def _local_moment(raw: str) -> datetime | None:
    try:
        return moment(raw, "ends_at")
    except BadRequest:
        return None


@action("alerting.add_silence")
def silence(request: HttpRequest) -> HttpResponse:
    queue = request.POST.get("queue", "")
    if queue and queue not in QUEUES:
        return answer(request, f"unknown queue {queue!r}", messages.ERROR, "dashboard:alerts")
    ends_at = _local_moment(request.POST.get("ends_at", ""))
    if ends_at is None:
        return answer(request, "until: give a date and time", messages.ERROR, "dashboard:alerts")
    try:
        created = alert_actions.create_silence(queue, ends_at, request.POST.get("reason", ""), request.user)
    except ValidationError as error:
        problems = "; ".join(f"{field}: {' '.join(text)}" for field, text in error.message_dict.items())
        return answer(request, problems, messages.ERROR, "dashboard:alerts")
    return answer(request, f"Silenced: {created}.", fallback="dashboard:alerts")


@action("alerting.add_silence")
def expire_silence(request: HttpRequest, silence_id: int) -> HttpResponse:
    found = get_object_or_404(Silence, pk=silence_id)
    if alert_actions.expire_silence(found, request.user):
        return answer(request, f"Ended: {found}.", fallback="dashboard:alerts")
    return answer(request, "That silence had already ended.", messages.WARNING, "dashboard:alerts")


@action("alerting.send_test_alert")
def test_alert(request: HttpRequest) -> HttpResponse:
    try:
        deliveries = alert_actions.send_test_alert(request.user)
    except ConfigError as error:
        return answer(request, str(error), messages.ERROR, "dashboard:alerts")
    if not deliveries:
        return answer(
            request, "ALERT_WEBHOOK_URLS is empty: nothing to test.", messages.ERROR, "dashboard:alerts"
        )
    failed = [d for d in deliveries if d.status != Delivery.Status.SENT]
    summary = "; ".join(f"{d.target}: {d.response_code or d.error}" for d in deliveries)
    level = messages.ERROR if failed else messages.SUCCESS
    return answer(
        request,
        f"Test alert: {len(deliveries) - len(failed)} of {len(deliveries)} took it ({summary}).",
        level,
        "dashboard:alerts",
    )

"""The Incidents tab: pages for staff, and POST actions that each call one incidents service."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.http import require_GET

from dashboard import incident_pages
from dashboard.views import action, answer, render_page
from incidents import dr_bridge, incident_actions, statuspage
from incidents.incident_actions import IncidentError
from incidents.models import Incident
from mrdj.auth import staff_only

CHANGE = "incidents.change_incident"


@require_GET
@staff_only
def incidents(request: HttpRequest) -> HttpResponse:
    return render_page(
        request,
        "incidents.html",
        "incidents",
        **incident_pages.list_page(request.user, request.GET.get("page"), request.GET.get("open")),
    )


@require_GET
@staff_only
def incident(request: HttpRequest, incident_id: int) -> HttpResponse:
    found = get_object_or_404(Incident, pk=incident_id)
    return render_page(
        request, "incident.html", "incidents", **incident_pages.detail_page(found, request.user)
    )


def incident_action(permission: str = CHANGE) -> Callable:
    """An action on one incident: the incident, or 404; an IncidentError becomes its message."""

    def decorator(view: Callable) -> Callable:
        @action(permission)
        @wraps(view)
        def wrapper(request: HttpRequest, incident_id: int) -> HttpResponse:
            found = get_object_or_404(Incident, pk=incident_id)
            back = reverse("dashboard:incident", args=[found.pk])
            try:
                text = view(request, found)
            except IncidentError as error:
                return answer(request, "; ".join(error.problems), messages.ERROR, back=back)
            return answer(request, text, back=back)

        return wrapper

    return decorator


@action("incidents.add_incident")
def open_incident(request: HttpRequest) -> HttpResponse:
    try:
        created = incident_actions.open_incident(
            request.POST.get("title", ""),
            request.POST.get("severity", ""),
            request.POST.getlist("queues"),
            request.user,
        )
    except IncidentError as error:
        return answer(request, "; ".join(error.problems), messages.ERROR, back=reverse("dashboard:incidents"))
    return answer(
        request, f"{created.reference} opened.", back=reverse("dashboard:incident", args=[created.pk])
    )


@incident_action()
def claim(request: HttpRequest, incident: Incident) -> str:
    role = incident_actions.claim_role(
        incident, request.POST.get("role", ""), request.user, take_over=request.POST.get("take_over") == "1"
    )
    return f"You are {role.get_name_display()} of {incident.reference}."


@incident_action()
def note(request: HttpRequest, incident: Incident) -> str:
    update = request.POST.get("kind") == "update"
    publish = request.POST.get("publish") == "1"
    if publish and not update:
        raise IncidentError("status page: only a status update is published there; choose status update")
    entry = incident_actions.add_note(incident, request.POST.get("text", ""), request.user, update=update)
    if not update:
        return "Note added."
    published = f" {statuspage.publish(incident, entry.text, request.user)}" if publish else ""
    return f"Status update posted and sent.{published}"


@incident_action()
def check(request: HttpRequest, incident: Incident) -> str:
    done = request.POST.get("done", "1") == "1"
    incident_actions.tick(
        incident, request.POST.get("item", ""), request.user, value=request.POST.get("value", ""), done=done
    )
    return "Checklist updated."


@incident_action()
def root_cause(request: HttpRequest, incident: Incident) -> str:
    incident_actions.set_root_cause(incident, request.POST.get("root_cause", ""), request.user)
    return "Root cause recorded; it goes on every Jira ticket of the incident."


@incident_action()
def mitigate(request: HttpRequest, incident: Incident) -> str:
    if incident_actions.mitigate(incident, request.user):
        return f"{incident.reference} is mitigated."
    raise IncidentError(f"{incident.reference} is {incident.state}: only an open incident can be mitigated")


@incident_action()
def resolve(request: HttpRequest, incident: Incident) -> str:
    publish = request.POST.get("publish_final") == "1"
    final_text = statuspage.final_text(request.POST.get("final_text", "")) if publish else ""
    written = incident_actions.resolve(incident, request.user)
    published = f" {statuspage.publish(incident, final_text, request.user)}" if publish else ""
    if written.error:
        return (
            f"{incident.reference} is resolved, but its dossier could not be written ({written.error}): "
            f"run python manage.py incident_export {incident.pk} once that is fixed.{published}"
        )
    where = f" Dossier written to {', '.join(written.paths)}." if written.paths else ""
    return f"{incident.reference} is resolved.{where}{published}"


@incident_action()
def create_dr_bridge(request: HttpRequest, incident: Incident) -> str:
    return dr_bridge.request_by_hand(incident, request.user)


@incident_action()
def retry_status_page(request: HttpRequest, incident: Incident) -> str:
    return statuspage.retry(incident, request.user)

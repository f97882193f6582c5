from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET

from incidents import dossier
from incidents.models import Incident
from mrdj.auth import staff_only

FORMATS = {"markdown": "md", "md": "md", "json": "json"}


@require_GET
@staff_only
def export(request: HttpRequest, incident_id: int) -> HttpResponse:
    """The dossier: Markdown by default, JSON with ?format=json."""
    wanted = request.GET.get("format", "markdown")
    if wanted not in FORMATS:
        return JsonResponse({"error": f"format: {wanted!r} is not one of markdown, json"}, status=400)
    incident = get_object_or_404(Incident, pk=incident_id)
    data = dossier.as_data(incident)
    if FORMATS[wanted] == "json":
        response = HttpResponse(dossier.as_json(data), content_type="application/json")
    else:
        response = HttpResponse(dossier.as_markdown(data), content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="{incident.reference}.{FORMATS[wanted]}"'
    return response

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from mrdj.api import BadRequest, json_error, parse_json, read_body
from mrdj.auth import matching_token, unauthorized
from mrdj.config import get_config
from mrdj.flags import flag_required
from personalization import signatures, visitor_events

MAX_EVENT_BYTES = 64 * 1024


@csrf_exempt
@require_POST
@flag_required("FLAG_PERSONALIZATION")
def webhook(request: HttpRequest) -> JsonResponse:
    """Events from the website. The signature is checked on the raw bytes, before parsing."""
    secret = get_config().value("PERSONALIZATION_WEBHOOK_SECRET")
    if not secret:
        return json_error("PERSONALIZATION_WEBHOOK_SECRET is not set: no event can be verified", 503)
    try:
        body = read_body(request, MAX_EVENT_BYTES)
        signatures.verify(
            secret,
            request.headers.get("X-MRDJ-Timestamp", ""),
            request.headers.get("X-MRDJ-Signature", ""),
            body,
        )
        event = visitor_events.parse_event(parse_json(body))
    except signatures.SignatureError as problem:
        return json_error(str(problem), 401)
    except (BadRequest, visitor_events.InvalidEvent) as problem:
        return json_error(str(problem), getattr(problem, "status", 400))
    created = visitor_events.record(event)
    return JsonResponse(
        {"event_id": event.event_id, "stored": created, "duplicate": not created},
        status=201 if created else 200,
    )


@csrf_exempt  # GET only (a bearer token): other methods get 405, not the CSRF check's 403
@require_GET
@flag_required("FLAG_PERSONALIZATION")
def visitor_profile(request: HttpRequest, visitor_id: str) -> JsonResponse:
    if not matching_token(request, "PERSONALIZATION_API_TOKEN"):
        return unauthorized()
    if not visitor_events.valid_identifier(visitor_id):
        return json_error(
            "the visitor id must be 1-100 letters, digits or . _ : - (starting with a letter or digit)", 400
        )
    found = visitor_events.profile(visitor_id)
    if found is None:
        return json_error(f"no events for visitor {visitor_id!r}", 404)
    return JsonResponse(found)

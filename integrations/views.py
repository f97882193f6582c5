from __future__ import annotations

import json
from collections.abc import Callable

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from integrations import services
from integrations.queues import QUEUES, Queue
from mrdj.auth import matching_token, token_or_staff, unauthorized
from mrdj.flags import is_enabled

MAX_BODY_BYTES = 256 * 1024
MAX_KEY_LENGTH = 200
MAX_REPLAY_IDS = 10_000


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def _error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _unknown_queue(name: str) -> JsonResponse:
    return _error(f"unknown queue {name!r}; the queues are {', '.join(QUEUES)}", 404)


def _read_json(request: HttpRequest, allow_empty: bool = False):
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BadRequest(f"body is larger than {MAX_BODY_BYTES} bytes", 413)
    body = request.body
    if len(body) > MAX_BODY_BYTES:
        raise BadRequest(f"body is larger than {MAX_BODY_BYTES} bytes", 413)
    if allow_empty and not body.strip():
        return {}
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise BadRequest(f"body is not valid JSON: {error}") from None


def _job_request(request: HttpRequest) -> tuple[dict, str | None]:
    data = _read_json(request)
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object with a 'payload' object")
    if "payload" not in data:
        raise BadRequest("'payload' is missing: send {\"payload\": {...}}")
    if not isinstance(data["payload"], dict):
        raise BadRequest(f"'payload' must be a JSON object, not {type(data['payload']).__name__}")
    key = data.get("idempotency_key")
    if key is not None:
        if not isinstance(key, str) or not key.strip():
            raise BadRequest("'idempotency_key' must be a non-empty string")
        if len(key) > MAX_KEY_LENGTH or not key.isprintable():
            raise BadRequest(f"'idempotency_key' must be printable and at most {MAX_KEY_LENGTH} characters")
    return data["payload"], key


@csrf_exempt
@require_POST
def intake(request: HttpRequest, queue: str) -> JsonResponse:
    if not matching_token(request, "INTEGRATIONS_API_TOKEN"):
        return unauthorized()
    target = QUEUES.get(queue)
    if target is None:
        return _unknown_queue(queue)
    if not is_enabled(target.flag):
        return _error(f"queue {queue} is switched off ({target.flag} is off); no job was accepted", 503)
    try:
        payload, key = _job_request(request)
    except BadRequest as error:
        return _error(str(error), error.status)
    job, created = services.enqueue(target, payload, key)
    return JsonResponse(
        {"id": job.pk, "queue": job.queue, "status": job.status}, status=202 if created else 200
    )


@require_GET
@token_or_staff("METRICS_API_TOKEN", "OPS_API_TOKEN")
def queue_metrics(request: HttpRequest) -> JsonResponse:
    response = JsonResponse(services.queue_figures())
    response["Cache-Control"] = "no-store"
    return response


def _operator_action(queue: str, action: str, run: Callable[[Queue], int]) -> JsonResponse:
    """Run a bulk action on a known queue and say how many jobs it moved."""
    target = QUEUES.get(queue)
    if target is None:
        return _unknown_queue(queue)
    try:
        moved = run(target)
    except BadRequest as error:
        return _error(str(error), error.status)
    return JsonResponse({"queue": queue, "action": action, "moved": moved})


@require_POST
@token_or_staff("OPS_API_TOKEN", permission="integrations.flush_job")
def flush(request: HttpRequest, queue: str) -> JsonResponse:
    return _operator_action(queue, "flush", lambda target: services.flush(target, request.actor))


def _replay_ids(request: HttpRequest) -> list[int] | None:
    """None for every dead job of the queue; ids from a JSON body or a form's ids fields."""
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        given = request.POST.getlist("ids")
        if not given:
            return None
        if not all(value.isdigit() for value in given):
            raise BadRequest("'ids' must be job ids (positive whole numbers)")
        ids = [int(value) for value in given]
    else:
        data = _read_json(request, allow_empty=True)
        if not isinstance(data, dict):
            raise BadRequest('body must be empty or a JSON object {"ids": [...]}')
        if "ids" not in data:
            return None
        ids = data["ids"]
    if not isinstance(ids, list) or not all(type(i) is int and i > 0 for i in ids):
        raise BadRequest("'ids' must be a list of job ids (positive whole numbers)")
    if len(ids) > MAX_REPLAY_IDS:
        raise BadRequest(f"'ids' may hold at most {MAX_REPLAY_IDS} ids; replay the rest in another request")
    return ids


@require_POST
@token_or_staff("OPS_API_TOKEN", permission="integrations.replay_job")
def replay(request: HttpRequest, queue: str) -> JsonResponse:
    return _operator_action(
        queue, "replay", lambda target: services.replay(target, request.actor, _replay_ids(request))
    )

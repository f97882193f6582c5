from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.multipartparser import MultiPartParserError
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

from integrations import export, operations
from integrations.models import Circuit
from integrations.queues import QUEUES, Queue
from mrdj import metrics
from mrdj.api import BadRequest, ascii_digits, json_error, moment, parse_json, read_body, read_json
from mrdj.auth import matching_token, token_or_staff, unauthorized
from mrdj.flags import flag_required, is_enabled

MAX_BODY_BYTES = 256 * 1024  # one job
MAX_BULK_JOBS = 500
MAX_BULK_BODY_BYTES = 4 * 1024 * 1024  # up to MAX_BULK_JOBS jobs
MAX_KEY_LENGTH = 200
MAX_REPLAY_IDS = 10_000


def _unknown_queue(name: str) -> JsonResponse:
    return json_error(f"unknown queue {name!r}; the queues are {', '.join(QUEUES)}", 404)


def _read_json(request: HttpRequest, allow_empty: bool = False):
    return read_json(request, MAX_BODY_BYTES, allow_empty)


def _job_item(data: Any, where: str = "") -> tuple[dict, str | None]:
    """One job: {"payload": {...}, "idempotency_key": "..."}; where names it in a bulk body."""
    if not isinstance(data, dict):
        raise BadRequest(f"{where}must be a JSON object with a 'payload' object")
    if "payload" not in data:
        raise BadRequest(f"{where}'payload' is missing: send {{\"payload\": {{...}}}}")
    if not isinstance(data["payload"], dict):
        raise BadRequest(f"{where}'payload' must be a JSON object, not {type(data['payload']).__name__}")
    key = data.get("idempotency_key")
    if key is not None:
        if not isinstance(key, str) or not key.strip():
            raise BadRequest(f"{where}'idempotency_key' must be a non-empty string")
        if len(key) > MAX_KEY_LENGTH or not (key.isascii() and key.isprintable()):
            raise BadRequest(
                f"{where}'idempotency_key' must be printable ASCII (it travels upstream as the "
                f"Idempotency-Key header) and at most {MAX_KEY_LENGTH} characters"
            )
    return data["payload"], key


def _bulk_items(jobs: Any) -> list[tuple[dict, str | None]]:
    """Every item checked before anything is stored: one bad item refuses the whole request."""
    if not isinstance(jobs, list) or not jobs:
        raise BadRequest("'jobs' must be a non-empty list of {\"payload\": {...}} objects")
    if len(jobs) > MAX_BULK_JOBS:
        raise BadRequest(f"'jobs' holds {len(jobs)} jobs; at most {MAX_BULK_JOBS} per request")
    return [_job_item(item, f"jobs[{index}]: ") for index, item in enumerate(jobs)]


@csrf_exempt
@require_POST
def intake(request: HttpRequest, queue: str) -> JsonResponse:
    """One job ({"payload": ...}) or many ({"jobs": [...]}, stored together or not at all)."""
    if not matching_token(request, "INTEGRATIONS_API_TOKEN"):
        return unauthorized()
    target = QUEUES.get(queue)
    if target is None:
        return _unknown_queue(queue)
    if not is_enabled(target.flag):
        return json_error(f"queue {queue} is switched off ({target.flag} is off); no job was accepted", 503)
    try:
        body = read_body(request, MAX_BULK_BODY_BYTES)
        data = parse_json(body)
        if isinstance(data, dict) and "jobs" in data and "payload" not in data:
            items = _bulk_items(data["jobs"])
        elif len(body) > MAX_BODY_BYTES:
            raise BadRequest(f"body is larger than {MAX_BODY_BYTES} bytes", 413)
        else:
            items = [_job_item(data, "body ")]
    except BadRequest as error:
        return json_error(str(error), error.status)
    results = operations.enqueue_many(target, items)
    if "jobs" not in data:
        ((job, created),) = results
        return JsonResponse(
            {"id": job.pk, "queue": job.queue, "status": job.status}, status=202 if created else 200
        )
    jobs = [{"id": job.pk, "status": job.status, "created": created} for job, created in results]
    return JsonResponse({"queue": target.name, "jobs": jobs}, status=202)


@require_GET
@token_or_staff("METRICS_API_TOKEN", "OPS_API_TOKEN")
def queue_metrics(request: HttpRequest) -> JsonResponse:
    response = JsonResponse(operations.queue_figures())
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
        return json_error(str(error), error.status)
    return JsonResponse({"queue": queue, "action": action, "moved": moved})


@require_POST
@token_or_staff("OPS_API_TOKEN", permission="integrations.flush_job")
def flush(request: HttpRequest, queue: str) -> JsonResponse:
    return _operator_action(queue, "flush", lambda target: operations.flush(target, request.actor))


def _replay_ids(request: HttpRequest) -> list[int] | None:
    """None for every dead job of the queue; ids from a JSON body or a form's ids fields."""
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        try:
            given = request.POST.getlist("ids")
        except MultiPartParserError as error:
            raise BadRequest(f"body is not a valid form: {error}") from None
        if not given:
            return None
        if not all(ascii_digits(value) for value in given):
            raise BadRequest("'ids' must be job ids (positive whole numbers)")
        ids = [int(value) for value in given]
    else:
        data = _read_json(request, allow_empty=True)
        if not isinstance(data, dict):
            raise BadRequest('body must be empty or a JSON object {"ids": [...]}')
        if "ids" not in data:
            return None
        ids = data["ids"]
    if not isinstance(ids, list) or not all(_whole(i) and i > 0 for i in ids):
        raise BadRequest("'ids' must be a list of job ids (positive whole numbers)")
    ids = [int(i) for i in ids]
    if len(ids) > MAX_REPLAY_IDS:
        raise BadRequest(f"'ids' may hold at most {MAX_REPLAY_IDS} ids; replay the rest in another request")
    return ids


def _whole(value: Any) -> bool:
    """JSON has one number type: 7 and 7.0 are the same whole number (not true, 7.5)."""
    return type(value) is int or (type(value) is float and value.is_integer())


@require_POST
@token_or_staff("OPS_API_TOKEN", permission="integrations.replay_job")
def replay(request: HttpRequest, queue: str) -> JsonResponse:
    return _operator_action(
        queue, "replay", lambda target: operations.replay(target, request.actor, _replay_ids(request))
    )


def _export_request(request: HttpRequest) -> tuple[str, export.Filters]:
    form = request.GET.get("format", "json")
    if form not in export.WRITERS:
        raise BadRequest(f"'format' must be one of {', '.join(export.WRITERS)}, not {form[:20]!r}")
    statuses = tuple(s.strip() for s in request.GET.get("status", "").split(",") if s.strip())
    unknown = [s for s in statuses if s not in export.STATUSES]
    if unknown:
        raise BadRequest(f"'status' {unknown[0][:20]!r} is not one of {', '.join(export.STATUSES)}")
    filters = export.Filters(
        moment(request.GET.get("since", ""), "since"), moment(request.GET.get("until", ""), "until"), statuses
    )
    if filters.since and filters.until and filters.since >= filters.until:
        raise BadRequest("'since' must be before 'until'")
    return form, filters


@require_GET
@flag_required("FLAG_SEVENSA_INTEGRATION")
@token_or_staff("OPS_API_TOKEN", permission="integrations.view_job")
def sevensa_export(request: HttpRequest) -> HttpResponse:
    """The Sevensa jobs, filtered by since/until (acceptance time) and status, streamed."""
    try:
        form, filters = _export_request(request)
    except BadRequest as problem:
        return json_error(str(problem), problem.status)
    queue = QUEUES["sevensa"].name
    response = StreamingHttpResponse(
        export.WRITERS[form](export.rows(queue, filters)), content_type=export.FORMATS[form]
    )
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="{queue}-jobs-{stamp}.{form}"'
    response["Cache-Control"] = "no-store"
    return response


class _QueueCollector:
    """The queue figures for Prometheus, read from the database at each scrape."""

    def collect(self):
        figures = operations.queue_figures()["queues"]
        families = {
            "backlog": GaugeMetricFamily(
                "mrdj_queue_backlog", "Jobs waiting, retries included.", labels=["queue"]
            ),
            "active": GaugeMetricFamily("mrdj_queue_active", "Jobs in flight.", labels=["queue"]),
            "retry_age_ms": GaugeMetricFamily(
                "mrdj_queue_retry_age_seconds", "Age of the oldest job waiting to retry.", labels=["queue"]
            ),
            "dead_letter": GaugeMetricFamily("mrdj_queue_dead_letter", "Dead-letter jobs.", labels=["queue"]),
            "oldest_pending_age_ms": GaugeMetricFamily(
                "mrdj_queue_oldest_pending_age_seconds", "Age of the oldest waiting job.", labels=["queue"]
            ),
            "enabled": GaugeMetricFamily(
                "mrdj_queue_enabled", "1 while the queue's flag is on.", labels=["queue"]
            ),
        }
        circuit = GaugeMetricFamily(
            "mrdj_queue_circuit",
            "1 for the upstream circuit breaker's current state (closed, open, half_open).",
            labels=["queue", "state"],
        )
        for queue, numbers in figures.items():
            for field, family in families.items():
                # enabled is None for a flag with an invalid value: counted as not enabled.
                value = numbers[field] / 1000 if field.endswith("_ms") else float(numbers[field] or 0)
                family.add_metric([queue], value)
            for state in Circuit.values:
                circuit.add_metric([queue, state], float(numbers["circuit"] == state))
        yield from families.values()
        yield circuit


def _registry() -> CollectorRegistry:
    """This process's counters, or with PROMETHEUS_MULTIPROC_DIR those of every process on the host."""
    registry = CollectorRegistry()
    registry.register(_QueueCollector())
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        for collector in (metrics.JOB_LATENCY, metrics.DELIVERIES, metrics.ALERTS_SENT):
            registry.register(collector)
    return registry


@require_GET
@token_or_staff("METRICS_API_TOKEN", "OPS_API_TOKEN")
def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    """GET /metrics: the same figures in the Prometheus text format, for those who scrape."""
    response = HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response

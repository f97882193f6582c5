from __future__ import annotations

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from mrdj.health import degradations, service_checks


@csrf_exempt  # a read-only view: any other method gets 405, not the CSRF check's 403
@require_safe
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers: no authentication, so nothing secret in the body."""
    checks = service_checks()
    failed = [check.name for check in checks if not check.ok]
    degraded = [] if failed else degradations()
    body = {
        "status": "error" if failed else "degraded" if degraded else "ok",
        "failed": failed,
        "checks": {check.name: {"ok": check.ok, "detail": check.detail} for check in checks},
    }
    if degraded:
        body["degraded"] = degraded
    return JsonResponse(body, status=503 if failed else 200)


DATABASE_RETRY_AFTER_SECONDS = 5


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500. A database that cannot be reached is no bug of the request: 503 with
    Retry-After and a reason, so that clients and load balancers retry (the broken
    connection is replaced at the end of the request). Anything else: Django's 500."""
    error = sys.exc_info()[1]
    if isinstance(error, OperationalError | InterfaceError):
        response = JsonResponse(
            {"error": "the database cannot be reached right now; nothing was stored, try again shortly"},
            status=503,
        )
        response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
        return response
    return defaults.server_error(request)


# Pages for people; everything else is a machine path and answers JSON.
HTML_PREFIXES = ("/dashboard/", "/admin/", "/accounts/")


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: programs calling a wrong path (or /alerts/-1/ack) get JSON like every other
    answer of the machine API; people get Django's page."""
    if request.path.startswith(HTML_PREFIXES):
        return defaults.page_not_found(request, exception)
    return JsonResponse({"error": f"no endpoint at {request.path[:200]!r}"}, status=404)

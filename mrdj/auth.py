"""Who may call what: staff pages, and machine endpoints (a bearer token, or a logged-in staff user)."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from mrdj.config import get_config


def bearer_token(request: HttpRequest) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def matching_token(request: HttpRequest, *variables: str) -> str | None:
    """The variable whose (non-empty) value the request carries as its bearer token."""
    given = bearer_token(request).encode()
    if not given:
        return None
    config = get_config()
    found = None
    for name in variables:  # every token is compared, each in constant time
        expected = config.value(name).encode()
        if expected and hmac.compare_digest(given, expected) and found is None:
            found = name
    return found


def token_actor(variable: str) -> str:
    """How an audit record names a token: OPS_API_TOKEN acts as 'token:ops'."""
    return "token:" + variable.removesuffix("_API_TOKEN").removesuffix("_TOKEN").lower()


def unauthorized(message: str = "a valid bearer token is required") -> JsonResponse:
    response = JsonResponse({"error": message}, status=401)
    response["WWW-Authenticate"] = 'Bearer realm="mrdj"'
    return response


def _csrf_failure(request: HttpRequest):
    """Run Django's CSRF check for a session request on a token-capable view."""
    return CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {})


def token_or_staff(*variables: str, permission: str | None = None) -> Callable:
    """Admit a bearer token from one of variables, or a staff session (with CSRF on POST).

    A staff user also needs permission when one is named; tokens stand for ops tooling
    and carry every permission of the endpoint.
    """

    def decorator(view: Callable) -> Callable:
        @csrf_exempt
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs):
            variable = matching_token(request, *variables)
            if variable:
                request.actor = token_actor(variable)
                return view(request, *args, **kwargs)
            if bearer_token(request):
                return unauthorized()
            user = request.user
            if not (user.is_authenticated and user.is_staff):
                return unauthorized("log in as staff or send a valid bearer token")
            if permission and not user.has_perm(permission):
                return JsonResponse({"error": f"permission {permission} is required"}, status=403)
            failure = _csrf_failure(request)
            if failure is not None:
                return failure
            request.actor = user
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def staff_only(view: Callable) -> Callable:
    """A page for staff: anonymous users go to the login page, logged-in non-staff get 403."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse(settings.LOGIN_URL))
        if not request.user.is_staff:
            raise PermissionDenied("the dashboard is for staff")
        return view(request, *args, **kwargs)

    return never_cache(wrapper)

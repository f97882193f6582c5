"""A server span per request, from opentelemetry-instrumentation-django, listed in settings.

DjangoInstrumentor.instrument() normally inserts the package's middleware at the top of
settings.MIDDLEWARE, which works only if it runs before Django loads its middleware and
hides from the settings what every request goes through. mrdj lists ServerSpanMiddleware,
a thin subclass, in settings.MIDDLEWARE instead (first, so that the span covers every other
middleware), and bootstrap calls instrument_django() to configure it: the tracer, the
exclusions (OTEL_PYTHON_DJANGO_EXCLUDED_URLS / OTEL_PYTHON_EXCLUDED_URLS), the traced
request attributes (OTEL_PYTHON_DJANGO_TRACED_REQUEST_ATTRS) and the attribute names
(OTEL_SEMCONV_STABILITY_OPT_IN), all read by the package itself when a process starts.

The subclass adds only the gate: until telemetry is installed, and while it is switched
off, a request costs one attribute check here. An excluded URL makes no span, and nothing
inside it (queries, outgoing calls) makes one either.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.core.exceptions import DisallowedHost
from opentelemetry.instrumentation.utils import suppress_instrumentation

from mrdj.telemetry import workarounds
from mrdj.telemetry.process_state import runtime

_SPAN_KEY = workarounds.span_key()


class ServerSpanMiddleware(workarounds.django_middleware_class()):
    configured = False  # set by instrument_django(): before, the class has no tracer
    excluded = None  # the exclusions, when there are any

    def __call__(self, request):
        if not runtime.exporting or not self.configured:
            return self.get_response(request)
        if self.excluded is not None and self.excluded.url_disabled(url_of(request)):
            with suppress_instrumentation():
                return self.get_response(request)
        return super().__call__(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if _SPAN_KEY not in request.META:
            return None
        span = request.META[_SPAN_KEY]
        match = request.resolver_match
        if span.is_recording() and match is not None and span.name != "HTTP":
            # The package's name, without its second resolution of the URL (workarounds.py).
            named = match.route or match.url_name
            if named:
                span.update_name(f"{span.name} {named}")
        return super().process_view(request, view_func, view_args, view_kwargs)

    def process_exception(self, request, exception):
        if _SPAN_KEY in request.META:
            return super().process_exception(request, exception)
        return None


def instrument_django() -> None:
    """Configure the middleware through DjangoInstrumentor, as the package documents, without
    the entry it inserts into settings.MIDDLEWARE (ServerSpanMiddleware is listed there).
    Its per-request metrics are left out: the spans carry the same durations."""
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.metrics import NoOpMeterProvider
    from opentelemetry.util.http import get_excluded_urls

    if os.environ.get("OTEL_PYTHON_DJANGO_INSTRUMENT") == "False":
        return  # the package's own switch: it then configures nothing, and the gate stays shut
    DjangoInstrumentor().instrument(meter_provider=NoOpMeterProvider())
    workarounds.drop_inserted_middleware(settings)
    excluded = get_excluded_urls("DJANGO")  # the same reading as the instrumentor's
    ServerSpanMiddleware.excluded = excluded if workarounds.has_exclusions(excluded) else None
    workarounds.name_span_before_resolving(ServerSpanMiddleware)
    ServerSpanMiddleware.configured = True


def url_of(request) -> str:
    """What the exclusions are searched in: the URL without its query, as the Django
    instrumentation matches them (a Host Django refuses leaves the path)."""
    try:
        return request.build_absolute_uri("?")
    except DisallowedHost:
        return request.path

"""Every use mrdj makes of the OpenTelemetry packages' private names, in one place.

Each one is pinned by a test in tests/test_telemetry_workarounds.py that fails when a
library update renames or changes it: upgrade opentelemetry-* and run that file first.
"""

from __future__ import annotations


def publish_hooks_off(instrumentor) -> None:
    """No span per Celery publish, nor trace headers in the message: a job's trace travels in
    its row (traceparent()), and the producer span cost more than it told. CeleryInstrumentor
    has no option for it: disconnect the two signal handlers its _instrument() connected."""
    from celery import signals

    signals.before_task_publish.disconnect(instrumentor._trace_before_publish)
    signals.after_task_publish.disconnect(instrumentor._trace_after_publish)


def sampler_from_environment():
    """OTEL_TRACES_SAMPLER[_ARG] read as the SDK reads them, every value and fallback included;
    the SDK only offers this reading inside TracerProvider(), where mrdj needs to wrap it."""
    from opentelemetry.sdk.trace import sampling

    return sampling._get_from_env_or_default()


def metric_preferences(exporter) -> dict:
    """The temporality and aggregation an OTLP metric exporter asks for, so that a wrapper
    around it asks the reader for the same (MetricExporter keeps them in private fields)."""
    return {
        "preferred_temporality": exporter._preferred_temporality,
        "preferred_aggregation": exporter._preferred_aggregation,
    }


def django_middleware_class():
    """opentelemetry-instrumentation-django's middleware (a private class): mrdj lists a thin
    subclass of it in settings.MIDDLEWARE (mrdj/telemetry/server_spans.py)."""
    from opentelemetry.instrumentation.django.middleware.otel_middleware import _DjangoMiddleware

    return _DjangoMiddleware


def name_span_before_resolving(middleware_class) -> None:
    """The Django middleware names its span in process_request, before Django has resolved
    the URL, by resolving it a second time (about a tenth of the middleware's cost). Name it
    after the method there instead (what the package itself does when the URL does not
    resolve); mrdj's subclass renames it after the route in process_view, once Django has
    resolved it, which gives the package's own name."""
    from opentelemetry.util.http import sanitize_method

    def method_only(request) -> str:
        method = sanitize_method(request.method.strip())
        return "HTTP" if method == "_OTHER" else method

    middleware_class._get_span_name = staticmethod(method_only)


def drop_inserted_middleware(settings) -> None:
    """DjangoInstrumentor.instrument() configures the middleware class (tracer, exclusions,
    hooks, semantic conventions) and also inserts it at the top of settings.MIDDLEWARE. mrdj
    lists its subclass there itself: take the inserted entry out again, or every request
    would have two server spans."""
    from opentelemetry.instrumentation.django import DjangoInstrumentor

    inserted = DjangoInstrumentor._opentelemetry_middleware
    settings.MIDDLEWARE = [entry for entry in settings.MIDDLEWARE if entry != inserted]


def has_exclusions(exclude_list) -> bool:
    """Whether an ExcludeList (OTEL_PYTHON_DJANGO_EXCLUDED_URLS) excludes anything: without
    exclusions a request's URL need not be built to be matched against nothing."""
    return bool(exclude_list._excluded_urls)


def span_key() -> str:
    """The request.META key under which the Django middleware keeps a request's span: its
    process_view and process_exception act only on requests that have it, and mrdj's
    subclass checks it first (without the check they rebuild the URL to test exclusions)."""
    return django_middleware_class()._environ_span_key

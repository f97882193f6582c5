"""The private names of the OpenTelemetry packages that mrdj relies on (mrdj/telemetry/
workarounds.py), each checked against the installed packages: after an upgrade of
opentelemetry-*, a failure here names the workaround to redo."""

from __future__ import annotations

import pytest
from celery import signals
from django.test import RequestFactory
from opentelemetry.instrumentation.django import DjangoInstrumentor
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.util.http import get_excluded_urls, parse_excluded_urls

from mrdj.telemetry import gates, server_spans, workarounds
from mrdj.telemetry.process_state import runtime


def receivers(signal) -> list:
    return [receiver for _, receiver in signal.receivers]


def test_publish_hooks_off_disconnects_the_hooks_celery_instrument_connected():
    from opentelemetry.instrumentation.celery import CeleryInstrumentor

    instrumentor = CeleryInstrumentor()
    instrumentor.instrument(meter_provider=NoOpMeterProvider())
    try:
        before = receivers(signals.before_task_publish), receivers(signals.after_task_publish)
        assert instrumentor._trace_before_publish in before[0]
        assert instrumentor._trace_after_publish in before[1]
        workarounds.publish_hooks_off(instrumentor)
        assert instrumentor._trace_before_publish not in receivers(signals.before_task_publish)
        assert instrumentor._trace_after_publish not in receivers(signals.after_task_publish)
        # The worker's side stays: a task still gets its span.
        assert instrumentor._trace_prerun in receivers(signals.task_prerun)
    finally:
        instrumentor.uninstrument()


def test_the_sampler_is_read_from_the_environment_as_the_sdk_reads_it(monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.5")
    assert "TraceIdRatioBased{0.5}" in workarounds.sampler_from_environment().get_description()
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "half")  # the SDK's fallback: 1.0
    assert "TraceIdRatioBased{1.0}" in workarounds.sampler_from_environment().get_description()


def test_the_gated_metric_exporter_asks_what_the_otlp_exporter_asks():
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import Counter

    inner = OTLPMetricExporter(endpoint="http://127.0.0.1:9/v1/metrics")
    preferences = workarounds.metric_preferences(inner)
    assert set(preferences) == {"preferred_temporality", "preferred_aggregation"}
    assert Counter in preferences["preferred_temporality"]
    gated = gates.GatedMetrics(inner)
    assert gated._preferred_temporality == inner._preferred_temporality
    assert gated._preferred_aggregation == inner._preferred_aggregation


def test_the_middleware_class_is_the_one_the_instrumentor_inserts():
    middleware = workarounds.django_middleware_class()
    assert (
        DjangoInstrumentor._opentelemetry_middleware == f"{middleware.__module__}.{middleware.__qualname__}"
    )
    for method in ("process_request", "process_view", "process_exception", "process_response"):
        assert callable(getattr(middleware, method))
    assert issubclass(server_spans.ServerSpanMiddleware, middleware)


@pytest.fixture
def instrumented(settings):
    """instrument_django() in this process, undone afterwards (its tracer is the global no-op
    one here: spans are not recording, but the middleware goes through all its steps)."""
    before = list(settings.MIDDLEWARE)
    server_spans.instrument_django()
    yield before
    DjangoInstrumentor().uninstrument()
    server_spans.ServerSpanMiddleware.configured = False
    server_spans.ServerSpanMiddleware.excluded = None


def test_instrument_django_leaves_middleware_as_listed(instrumented, settings):
    assert instrumented == settings.MIDDLEWARE  # the inserted entry was taken out again
    assert settings.MIDDLEWARE[0] == "mrdj.telemetry.server_spans.ServerSpanMiddleware"
    assert server_spans.ServerSpanMiddleware.configured


def test_the_span_key_is_where_the_middleware_keeps_the_requests_span(instrumented, monkeypatch):
    monkeypatch.setattr(runtime, "exporting", True)
    key = workarounds.span_key()
    seen = []

    def view(request):
        seen.append(key in request.META)
        from django.http import HttpResponse

        return HttpResponse("ok")

    request = RequestFactory().get("/healthz", HTTP_HOST="127.0.0.1")
    response = server_spans.ServerSpanMiddleware(view)(request)
    assert response.status_code == 200
    assert seen == [True]
    assert key not in request.META  # taken out again when the span ended


def test_exclusions_are_known_without_building_a_url(monkeypatch):
    monkeypatch.delenv("OTEL_PYTHON_DJANGO_EXCLUDED_URLS", raising=False)
    monkeypatch.delenv("OTEL_PYTHON_EXCLUDED_URLS", raising=False)
    assert workarounds.has_exclusions(get_excluded_urls("DJANGO")) is False
    excluded = parse_excluded_urls("healthz,metrics$")
    assert workarounds.has_exclusions(excluded) is True
    # Searched anywhere in the URL, as docs/telemetry.md says.
    assert excluded.url_disabled("http://127.0.0.1:8000/metrics")
    assert not excluded.url_disabled("http://127.0.0.1:8000/metrics/queues")


def test_the_span_is_named_by_the_hook_mrdj_replaces():
    import inspect

    middleware = workarounds.django_middleware_class()
    assert isinstance(inspect.getattr_static(middleware, "_get_span_name"), staticmethod)
    assert "self._get_span_name(request)" in inspect.getsource(middleware.process_request)

    class Named(middleware):
        pass

    workarounds.name_span_before_resolving(Named)
    request = RequestFactory().get("/metrics/queues")
    assert Named._get_span_name(request) == "GET"  # no second resolution of the URL
    request.method = "BREW"
    assert Named._get_span_name(request) == "HTTP"  # the package's name for unknown methods


def test_otel_python_django_instrument_false_leaves_the_middleware_shut(settings, monkeypatch):
    monkeypatch.setenv("OTEL_PYTHON_DJANGO_INSTRUMENT", "False")
    monkeypatch.setattr(runtime, "exporting", True)
    server_spans.instrument_django()
    assert not server_spans.ServerSpanMiddleware.configured
    request = RequestFactory().get("/healthz", HTTP_HOST="127.0.0.1")
    from django.http import HttpResponse

    assert server_spans.ServerSpanMiddleware(lambda r: HttpResponse("ok"))(request).status_code == 200
    assert workarounds.span_key() not in request.META

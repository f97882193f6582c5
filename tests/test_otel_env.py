"""The standard OTEL_* variables, as the OpenTelemetry specification defines them, on a
real gunicorn exporting to a local OTLP/HTTP receiver; mrdj's own variables only fill in."""

from __future__ import annotations

import urllib.request

import pytest

from mrdj import telemetry
from mrdj.telemetry import otel_settings
from tests import otlp, test_telemetry
from tests.conftest import TOKENS, gunicorn, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]
collector = test_telemetry.collector  # the receiver, with telemetry switched on towards it


def get(url: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKENS['METRICS_API_TOKEN']}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def server_spans(receiver, path: str) -> list[otlp.Span]:
    """Server spans of a path, under either name of the attribute (OTEL_SEMCONV_STABILITY_OPT_IN)."""
    return [
        s
        for s in otlp.spans(receiver)
        if s.kind == "SERVER" and path in (s.attributes.get("url.path"), s.attributes.get("http.target"))
    ]


def test_it_samples_nothing_under_always_off_while_metrics_still_export(collector, managed_env, tmp_path):
    with gunicorn(managed_env, tmp_path / "web.log", OTEL_TRACES_SAMPLER="always_off") as web:
        wait_until(lambda: collector.to("/v1/metrics"), timeout=30, message="no metrics arrived")
        for _ in range(3):
            assert get(web + "/metrics/queues") == 200
        # Three more metric exports (300 ms apart) give the span batches (100 ms) their chances.
        after = len(collector.to("/v1/metrics")) + 3
        wait_until(lambda: len(collector.to("/v1/metrics")) >= after, timeout=30)
    assert collector.to("/v1/traces") == []
    assert any(p.metric.startswith("mrdj.queue.") for p in otlp.points(collector))


@pytest.mark.parametrize("variable", ["OTEL_PYTHON_DJANGO_EXCLUDED_URLS", "OTEL_PYTHON_EXCLUDED_URLS"])
def test_it_makes_no_span_for_an_excluded_url(collector, managed_env, tmp_path, variable):
    # Regular expressions searched anywhere in the URL: "metrics" alone would exclude
    # /metrics/queues too, "metrics$" only /metrics.
    with gunicorn(managed_env, tmp_path / "web.log", **{variable: "healthz,metrics$"}) as web:
        wait_until(lambda: collector.to("/v1/metrics"), timeout=30, message="export did not start")
        for _ in range(2):
            urllib.request.urlopen(web + "/healthz", timeout=10).close()
            assert get(web + "/metrics") == 200
        assert get(web + "/metrics/queues") == 200
        wait_until(lambda: server_spans(collector, "/metrics/queues"), timeout=30, message="no span arrived")
    found = otlp.spans(collector)
    assert [s.name for s in found if s.kind == "SERVER"] == ["GET metrics/queues"]
    # Nor a trace of their own for their queries: /healthz's `SELECT 1` made no span.
    assert [s for s in found if s.attributes.get("db.statement") == "SELECT 1"] == []


@pytest.mark.parametrize("opt_in", [None, "http/dup", "default"])
def test_the_server_span_comes_from_the_django_instrumentation_named_after_the_route(
    collector, managed_env, tmp_path, opt_in
):
    env = {"OTEL_PYTHON_DJANGO_TRACED_REQUEST_ATTRS": "path_info"}
    if opt_in is not None:
        env["OTEL_SEMCONV_STABILITY_OPT_IN"] = opt_in
    with gunicorn(managed_env, tmp_path / "web.log", **env) as web:
        assert get(web + "/metrics/queues") == 200
        [span] = wait_until(lambda: server_spans(collector, "/metrics/queues"), timeout=30)
    assert span.scope == "opentelemetry.instrumentation.django"
    assert span.name == "GET metrics/queues"
    assert span.attributes["http.route"] == "metrics/queues"
    assert span.attributes["path_info"] == "/metrics/queues"  # OTEL_PYTHON_DJANGO_TRACED_REQUEST_ATTRS
    stable = span.attributes.get("http.request.method"), span.attributes.get("http.response.status_code")
    old = span.attributes.get("http.method"), span.attributes.get("http.status_code")
    if opt_in is None:  # mrdj's default: the stable names only
        assert (stable, old) == (("GET", 200), (None, None))
    elif opt_in == "http/dup":  # both
        assert (stable, old) == (("GET", 200), ("GET", 200))
    else:  # a value naming neither http nor http/dup: the old names
        assert (stable, old) == ((None, None), ("GET", 200))
    # One server span per request: the instrumentor's own entry was not left in MIDDLEWARE.
    assert len([s for s in otlp.spans(collector) if s.kind == "SERVER"]) == 1


def test_otel_resource_attributes_win_over_mrdjs_defaults(collector, managed_env, tmp_path):
    # managed.env says DEPLOYMENT_ENVIRONMENT=staging (the fixture): a default only.
    attributes = "deployment.environment=production,service.namespace=mister-dj"
    with gunicorn(managed_env, tmp_path / "web.log", OTEL_RESOURCE_ATTRIBUTES=attributes):
        points = wait_until(lambda: otlp.points(collector), timeout=30, message="no metrics arrived")
    resource = points[0].resource
    assert resource["deployment.environment"] == "production"
    assert resource["deployment.environment.name"] == "production"
    assert resource["service.namespace"] == "mister-dj"
    assert resource["service.name"] == "mr-dj-backend"
    assert resource["service.version"] == telemetry.VERSION
    assert resource["mrdj.process.role"] == "web"


def test_otel_sdk_disabled_exports_nothing_and_says_so(collector, managed_env, tmp_path):
    log = tmp_path / "disabled.log"
    with gunicorn(managed_env, log, OTEL_SDK_DISABLED="true") as disabled:
        wait_until(lambda: "Telemetry disabled:" in log.read_text(), timeout=30)
        urllib.request.urlopen(disabled + "/healthz", timeout=10).close()
        # A second server, not disabled, exporting to the same receiver all along: by the time
        # its span and metrics have arrived, the disabled one has had as long to send its own.
        with gunicorn(managed_env, tmp_path / "control.log", OTEL_SERVICE_NAME="control") as control:
            urllib.request.urlopen(control + "/healthz", timeout=10).close()
            wait_until(lambda: otlp.spans(collector) and otlp.points(collector), timeout=30)
            urllib.request.urlopen(disabled + "/healthz", timeout=10).close()
            after = len(collector.to("/v1/metrics")) + 3
            wait_until(lambda: len(collector.to("/v1/metrics")) >= after, timeout=30)
    resources = [s.resource for s in otlp.spans(collector)] + [p.resource for p in otlp.points(collector)]
    assert {r["service.name"] for r in resources} == {"control"}
    text = log.read_text()
    assert "Telemetry disabled: OTEL_SDK_DISABLED=true" in text
    assert "Telemetry initialized" not in text


# In-process: the same rules, without a server.


def test_it_reports_otel_sdk_disabled_first(monkeypatch, managed_env):
    managed_env.update({"FLAG_TELEMETRY": "on", "OTEL_ENABLED": "true"})
    monkeypatch.setenv("OTEL_SDK_DISABLED", "TRUE")
    assert telemetry.status() == telemetry.TelemetryStatus("off", "OTEL_SDK_DISABLED=true")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "false")
    assert "OTEL_SDK_DISABLED" not in telemetry.status().reason


@pytest.mark.parametrize(
    ("sampler", "argument", "description"),
    [
        ("always_off", "", "AlwaysOffSampler"),
        ("traceidratio", "0.25", "TraceIdRatioBased{0.25}"),
        ("parentbased_always_off", "", "ParentBased{root:AlwaysOffSampler"),
        ("", "", "ParentBased{root:AlwaysOnSampler"),  # the spec's default, and mrdj's at 100 %
    ],
)
def test_it_takes_the_sampler_from_otel_traces_sampler(
    monkeypatch, managed_env, sampler, argument, description
):
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", sampler)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", argument)
    assert otel_settings.sampler().get_description().startswith(description)


def test_otel_traces_sampler_wins_over_the_sample_percent(monkeypatch, managed_env):
    managed_env.set("OTEL_TRACES_SAMPLE_PERCENT", "10")
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    assert "TraceIdRatioBased{0.1}" in otel_settings.sampler().get_description()
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_on")
    assert otel_settings.sampler().get_description() == "AlwaysOnSampler"


def test_the_service_name_follows_the_specifications_precedence(monkeypatch, managed_env):
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attributes")
    assert otel_settings.resource("web").attributes["service.name"] == "from-attributes"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-variable")
    assert otel_settings.resource("web").attributes["service.name"] == "from-variable"
    monkeypatch.delenv("OTEL_SERVICE_NAME")
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES")
    assert otel_settings.resource("web").attributes["service.name"] == telemetry.SERVICE_NAME


def test_either_name_of_the_environment_attribute_fills_the_other(monkeypatch, managed_env):
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=acceptance")
    attributes = otel_settings.resource("worker").attributes
    assert attributes["deployment.environment"] == attributes["deployment.environment.name"] == "acceptance"


def test_the_standard_timings_fill_in_for_mrdjs_unset_ones(monkeypatch, managed_env):
    monkeypatch.delenv("OTEL_BSP_SCHEDULE_DELAY_MS", raising=False)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "250")
    assert otel_settings.own_or_standard("OTEL_BSP_SCHEDULE_DELAY_MS", "OTEL_BSP_SCHEDULE_DELAY") == 250
    managed_env.set("OTEL_BSP_SCHEDULE_DELAY_MS", "700")  # mrdj's own, set: documented to win
    assert otel_settings.own_or_standard("OTEL_BSP_SCHEDULE_DELAY_MS", "OTEL_BSP_SCHEDULE_DELAY") == 700
    monkeypatch.delenv("OTEL_METRIC_EXPORT_INTERVAL_MS", raising=False)
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "soon")
    assert (
        otel_settings.own_or_standard("OTEL_METRIC_EXPORT_INTERVAL_MS", "OTEL_METRIC_EXPORT_INTERVAL")
        == 10000
    )


def test_signal_headers_replace_the_generic_ones(monkeypatch):
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", raising=False)
    assert otel_settings.signal_headers("TRACES", {"authorization": "Bearer a"}) == {
        "authorization": "Bearer a"
    }
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "authorization=Bearer%20b")
    assert otel_settings.signal_headers("TRACES", {"authorization": "Bearer a"}) == {}

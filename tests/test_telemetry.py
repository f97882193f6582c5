"""OpenTelemetry from real processes (gunicorn, Celery workers) to a local OTLP/HTTP receiver."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from alerting import lifecycle as alerting
from alerting.models import Alert, Kind
from integrations.models import Status, UpstreamState
from mrdj import processes, telemetry
from tests import otlp
from tests.conftest import TOKENS, gunicorn, service_missing, wait_until
from tests.receivers import Answer, Receiver
from tests.support import put_jobs

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]
OTEL_SECRET = "otel-collector-secret"


@pytest.fixture
def collector(managed_env):
    """A local OTLP/HTTP receiver, with telemetry switched on towards it and fast export."""
    with Receiver() as receiver:
        managed_env.update(
            {
                **TOKENS,
                "FLAG_TELEMETRY": "on",
                "OTEL_ENABLED": "true",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.url + "/v1/traces",
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": receiver.url + "/v1/metrics",
                "OTEL_EXPORTER_OTLP_HEADERS": f"authorization=Bearer%20{OTEL_SECRET}",
                "OTEL_METRIC_EXPORT_INTERVAL_MS": "300",
                "OTEL_BSP_SCHEDULE_DELAY_MS": "100",
                "OTEL_EXPORT_TIMEOUT_MS": "1000",
                "DEPLOYMENT_ENVIRONMENT": "staging",
            }
        )
        yield receiver


def post_job(base_url: str, queue: str, n: int) -> None:
    request = urllib.request.Request(
        f"{base_url}/integrations/{queue}/jobs",
        data=json.dumps({"payload": {"n": n}}).encode(),
        headers={
            "Authorization": f"Bearer {TOKENS['INTEGRATIONS_API_TOKEN']}",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202


def test_an_intake_request_and_its_delivery_on_a_worker_are_one_trace(
    collector, managed_env, celery_workers, upstream, tmp_path
):
    managed_env.set("QUEUE_REDIS_ENABLED", "true")
    celery_workers()
    with gunicorn(managed_env, tmp_path / "web.log", DEPLOYMENT_ENVIRONMENT="staging") as web:
        post_job(web, "sevensa", 1)
        upstream.wait_for(1)

        def the_trace():
            found = otlp.spans(collector)
            server = [s for s in found if s.kind == "SERVER" and "jobs" in s.name]
            if not server:
                return None
            same = [s for s in found if s.trace_id == server[0].trace_id]
            worker = [s for s in same if s.resource.get("mrdj.process.role") == "worker"]
            deliver = [s for s in worker if "integrations.deliver" in s.name]
            upstream_call = [s for s in worker if s.kind == "CLIENT" and s.name.startswith("POST")]
            return (server[0], deliver[0], upstream_call[0]) if deliver and upstream_call else None

        server, deliver, upstream_call = wait_until(
            the_trace, timeout=30, message="no complete trace arrived"
        )
    assert server.resource["service.name"] == "mr-dj-backend"
    assert server.resource["deployment.environment"] == "staging"
    assert server.resource["service.version"] == telemetry.VERSION
    assert server.resource["mrdj.process.role"] == "web"
    assert deliver.resource["mrdj.process.role"] == "worker"
    assert deliver.parent_span_id == server.span_id  # the publish is part of the request's span
    web = [
        s
        for s in otlp.spans(collector)
        if s.trace_id == server.trace_id and s.resource["mrdj.process.role"] == "web"
    ]
    # No span per broker command, nor one for the publish: both cost more than they told.
    assert [s.name for s in web if s.attributes.get("db.system") == "redis" or "apply_async" in s.name] == []
    assert str(upstream.url.split(":")[-1]) in str(upstream_call.attributes)
    # Scheme and host only: webhook URLs carry their secret in the path.
    assert "/sevensa/submit" not in str(upstream_call.attributes)
    assert collector.received[0].headers["authorization"] == f"Bearer {OTEL_SECRET}"
    log = (tmp_path / "web.log").read_text()
    assert "Telemetry initialized (web): traces to " + collector.url + "/v1/traces" in log
    assert OTEL_SECRET not in log


def test_a_retried_jobs_tries_are_in_the_accepting_trace_and_background_work_starts_no_trace(
    collector, managed_env, celery_workers, upstream, tmp_path
):
    managed_env.set("QUEUE_REDIS_ENABLED", "true")
    upstream.script(Answer(503))  # the first try fails; the retry is delivered
    celery_workers(beat=True)  # beat too: the reconciler every 0.5 s, the alert tick, the scheduler
    with gunicorn(managed_env, tmp_path / "web.log") as web:
        post_job(web, "rentguy", 1)
        upstream.wait_for(2)

        def two_tries():
            found = otlp.spans(collector)
            server = [s for s in found if s.kind == "SERVER" and "jobs" in s.name]
            tries = [s for s in found if s.name == "integrations.deliver rentguy"]
            return (server[0], tries) if server and len(tries) == 2 else None

        server, tries = wait_until(two_tries, timeout=30, message="the two tries did not arrive")
        time.sleep(3)  # a few seconds of beat, reconciler and switch watchers with no traffic
    assert server.scope == "opentelemetry.instrumentation.django"
    assert len({t.attributes["mrdj.job.attempt"] for t in tries}) == 2
    for one_try in tries:
        assert (one_try.trace_id, one_try.parent_span_id) == (server.trace_id, server.span_id)
    # Every trace starts at a request, a task or a try: no query, Redis command or outgoing
    # call of a loop makes a one-span trace of its own.
    roots = [s for s in otlp.spans(collector) if not s.parent_span_id]
    assert roots and {s.kind for s in roots} <= {"SERVER", "CONSUMER"}, {(s.kind, s.name) for s in roots}
    assert [s.name for s in roots if "db.system" in s.attributes] == []


def test_queue_gauges_carry_the_figures_of_metrics_queues(collector, managed_env, tmp_path):
    managed_env.set("FLAG_RENTGUY_INTEGRATION", "off")  # held: the figures stay put
    put_jobs("rentguy", Status.PENDING, 3)
    put_jobs("sevensa", Status.DEAD, 2)
    UpstreamState.objects.create(queue="sevensa", circuit="open", opened_at=timezone.now())
    with gunicorn(managed_env, tmp_path / "web.log"):

        def gauges():
            found = {
                (p.metric, p.attributes.get("queue"), p.attributes.get("state")): p.value
                for p in otlp.points(collector)
                if p.metric.startswith("mrdj.queue.")
            }
            return found if ("mrdj.queue.dead_letter", "sevensa", None) in found else None

        found = wait_until(gauges, timeout=30, message="no queue gauges arrived")
    assert found[("mrdj.queue.backlog", "rentguy", None)] == 3
    assert found[("mrdj.queue.backlog", "sevensa", None)] == 0
    assert found[("mrdj.queue.dead_letter", "sevensa", None)] == 2
    assert found[("mrdj.queue.active", "rentguy", None)] == 0
    assert found[("mrdj.queue.circuit", "sevensa", "open")] == 1
    assert found[("mrdj.queue.circuit", "sevensa", "closed")] == 0
    assert found[("mrdj.queue.circuit", "rentguy", "closed")] == 1


@pytest.mark.parametrize("switch", ["FLAG_TELEMETRY", "OTEL_ENABLED"])
def test_nothing_is_exported_while_off_and_the_switch_works_without_a_restart(
    collector, managed_env, tmp_path, switch
):
    managed_env.set(switch, "off" if switch == "FLAG_TELEMETRY" else "false")
    with gunicorn(managed_env, tmp_path / "web.log") as web:
        for _ in range(3):
            urllib.request.urlopen(web + "/healthz", timeout=10).close()
        log = tmp_path / "web.log"
        wait_until(lambda: "Telemetry disabled:" in log.read_text(), timeout=30)
        assert f"Telemetry disabled: {switch} is" in log.read_text()
        switched_on = time.time_ns()
        managed_env.set(switch, "on" if switch == "FLAG_TELEMETRY" else "true")
        wait_until(lambda: collector.to("/v1/metrics"), timeout=30, message="export did not start")
        urllib.request.urlopen(web + "/healthz", timeout=10).close()
        wait_until(lambda: otlp.spans(collector), timeout=30)
        # Everything that arrived was recorded after the switch: nothing while it was off.
        assert all(span.start_ns >= switched_on for span in otlp.spans(collector))
        # ...and off again: the export stops within seconds.
        managed_env.set(switch, "off" if switch == "FLAG_TELEMETRY" else "false")

        def quiet_for_a_second():
            count = len(collector.received)
            time.sleep(1.0)  # a window of three export intervals
            return len(collector.received) == count

        wait_until(quiet_for_a_second, timeout=20, message="export did not stop")


def test_the_silence_alert_fires_when_the_collector_stops_answering_and_clears_when_it_is_back(
    collector, managed_env, tmp_path
):
    managed_env.update({"OTEL_SILENCE_ALERT_MS": "1500", "ALERT_RESOLVE_QUIET_MS": "0"})
    with gunicorn(managed_env, tmp_path / "web.log"):
        wait_until(lambda: processes.last_export() is not None, timeout=30)
        collector.default = Answer(503, body=b"collector down")

        def silent_alert():
            alerting.tick()
            return Alert.objects.filter(kind=Kind.TELEMETRY_SILENT, state=Alert.State.FIRING).first()

        alert = wait_until(silent_alert, timeout=30, interval=0.2, message="the silence alert did not fire")
        assert alert.payload["silent_for_ms"] >= 1500
        collector.default = Answer(200)

        def resolved():
            alerting.tick()
            alert.refresh_from_db()
            return alert.state == Alert.State.RESOLVED

        wait_until(resolved, timeout=30, interval=0.2, message="the silence alert did not clear")
    status = telemetry.status(with_last_export=True)
    assert status.state == "on" and timezone.now() - status.last_export < timedelta(seconds=30)


def test_prometheus_metrics_pass_promtool(managed_env):
    managed_env.update(TOKENS)
    put_jobs("rentguy", Status.DEAD, 1)
    from mrdj import metrics

    metrics.job_finished("rentguy", "delivered", 1.5)
    metrics.delivery_tried("rentguy", "delivered")
    metrics.delivery_tried("rentguy", "held")
    UpstreamState.objects.create(queue="rentguy", circuit="half_open", opened_at=timezone.now())
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKENS['METRICS_API_TOKEN']}")
    assert response.status_code == 200
    text = response.content.decode()
    assert 'mrdj_queue_dead_letter{queue="rentguy"} 1.0' in text
    assert 'mrdj_job_latency_seconds_bucket{le="2.5",outcome="delivered",queue="rentguy"}' in text
    # Deliveries take milliseconds: the lowest buckets tell them apart.
    assert 'mrdj_job_latency_seconds_bucket{le="0.005",outcome="delivered",queue="rentguy"}' in text
    assert 'mrdj_deliveries_total{outcome="held",queue="rentguy"}' in text
    assert 'mrdj_queue_circuit{queue="rentguy",state="half_open"} 1.0' in text
    assert 'mrdj_queue_circuit{queue="rentguy",state="open"} 0.0' in text
    assert Client().get("/metrics").status_code == 401
    try:
        checked = subprocess.run(
            ["promtool", "check", "metrics"], input=response.content, capture_output=True, timeout=30
        )
    except FileNotFoundError:
        service_missing("promtool is missing: apt-get install prometheus (make test does, as root)")
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()

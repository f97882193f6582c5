"""Grafana: the annotations mrdj posts (to a stand-in for Grafana's HTTP API on 127.0.0.1), and
the dashboard docs/grafana/mrdj.json (generated, and accepted by the SDK's dashboard model)."""

from __future__ import annotations

import importlib.util
import itertools
import json
import logging
import re
import time
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

from alerting import alert_actions, grafana_annotations, lifecycle, sender
from alerting.grafana_annotations import epoch_ms, outbox
from alerting.models import Alert, DrActivation
from integrations import operations as queue_services
from integrations.models import Job, Status
from integrations.queues import QUEUES
from mrdj import configuration, flags, metrics
from mrdj.models import AuditEvent
from tests.conftest import TOKENS
from tests.processes import ROOT, wait_until
from tests.receivers import Answer, Receiver
from tests.support import put_jobs

pytestmark = pytest.mark.django_db(transaction=True)
TOKEN = "grafana-service-account-token"
SECOND = timedelta(seconds=1)


class GrafanaStandIn(Receiver):
    """Grafana's annotations API: a POST gets a new id, a PATCH is acknowledged; failures
    scripted with fail() come first."""

    def __init__(self, default: Answer | None = None):
        self._ids = itertools.count(1)
        self._failures: list[Answer] = []
        super().__init__(default=default, respond=self._answer)

    def fail(self, *answers: Answer) -> None:
        self._failures.extend(answers)

    def _answer(self, request) -> Answer | None:
        if self._failures:
            return self._failures.pop(0)
        if self.default.delay:
            return None  # a hanging Grafana: the default answer, late
        if request.method == "POST" and request.path == "/api/annotations":
            return Answer(body=json.dumps({"id": next(self._ids), "message": "Annotation added"}).encode())
        if request.method == "PATCH":
            return Answer(body=b'{"message": "Annotation patched"}')
        return Answer(404, body=b'{"message": "Not found"}')

    def _handler_class(self):
        handler = super()._handler_class()
        handler.do_PATCH = handler.do_POST
        return handler

    def annotations(self) -> list[tuple[str, str, dict]]:
        return [(r.method, r.path, r.json()) for r in self.received]


@pytest.fixture
def quick_retries(monkeypatch):
    monkeypatch.setattr(grafana_annotations, "RETRY_DELAYS_S", (0.01, 0.01))


@pytest.fixture
def grafana(hooks, managed_env):
    """The stand-in Grafana, with GRAFANA_URL and its token set; the alert webhooks are hooks."""
    with GrafanaStandIn() as stand_in:
        managed_env.update({"GRAFANA_URL": stand_in.url + "/", "GRAFANA_API_TOKEN": TOKEN})
        yield stand_in
        assert outbox.wait(30), "annotations still waiting at the end of the test"


def sent(grafana: GrafanaStandIn, count: int) -> list[tuple[str, str, dict]]:
    """Wait until everything queued left and count requests arrived; what Grafana received."""
    assert outbox.wait(30)
    grafana.wait_for(count, timeout=10)
    return grafana.annotations()


# --- Alerts


def test_it_marks_an_alert_firing_escalating_and_resolving_as_one_region(grafana, managed_env):
    managed_env.set("ALERT_RESOLVE_QUIET_MS", "1000")
    put_jobs("rentguy", Status.PENDING, 2)
    t0 = timezone.now()
    assert [n.event for n in lifecycle.tick(t0)] == ["firing"]
    ((method, path, firing),) = sent(grafana, 1)
    assert (method, path) == ("POST", "/api/annotations")
    assert grafana.received[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert firing["time"] == epoch_ms(t0)
    assert "timeEnd" not in firing
    assert firing["tags"] == ["mrdj", "rentguy", "warning", "firing"]
    alert = Alert.objects.get()
    assert firing["text"] == f"[WARNING] rentguy: queue thresholds exceeded [alert {alert.pk}]"
    assert alert.grafana_annotation_id == 1

    put_jobs("rentguy", Status.PENDING, 2)
    assert [n.event for n in lifecycle.tick(t0 + 5 * SECOND)] == ["escalated"]
    method, path, escalated = sent(grafana, 2)[1]
    assert (method, path, escalated["time"]) == ("POST", "/api/annotations", epoch_ms(t0 + 5 * SECOND))
    assert escalated["tags"] == ["mrdj", "rentguy", "critical", "escalated"]
    assert escalated["text"].startswith("[CRITICAL] rentguy: escalated to critical")
    alert.refresh_from_db()
    assert alert.grafana_annotation_id == 1  # the region starts where it first fired

    Job.objects.filter(queue="rentguy").update(status=Status.DONE)
    queue_services.recount()
    lifecycle.tick(t0 + 6 * SECOND)
    assert [n.event for n in lifecycle.tick(t0 + 8 * SECOND)] == ["resolved"]
    method, path, closed = sent(grafana, 3)[2]
    assert (method, path, closed) == ("PATCH", "/api/annotations/1", {"timeEnd": epoch_ms(t0 + 8 * SECOND)})
    assert grafana.received[2].headers["Authorization"] == f"Bearer {TOKEN}"


def test_an_unacknowledged_alert_is_marked_when_it_escalates_to_the_next_role(grafana):
    put_jobs("sevensa", Status.PENDING, 4)
    t0 = timezone.now()
    lifecycle.tick(t0)
    assert [n.event for n in lifecycle.tick(t0 + 3 * timedelta(minutes=1))] == ["unacknowledged"]
    _, _, escalation = sent(grafana, 2)[1]
    assert escalation["tags"] == ["mrdj", "sevensa", "critical", "unacknowledged"]
    assert "escalating to @ic-oncall" in escalation["text"]


def test_a_region_is_posted_whole_when_the_firing_annotation_never_arrived(
    grafana, managed_env, quick_retries, caplog
):
    managed_env.set("ALERT_RESOLVE_QUIET_MS", "1000")
    grafana.fail(Answer(503), Answer(502), Answer(503))  # every try of the firing annotation
    put_jobs("rentguy", Status.PENDING, 2)
    t0 = timezone.now()
    with caplog.at_level(logging.WARNING, logger="alerting.grafana_annotations"):
        lifecycle.tick(t0)
        assert len(sent(grafana, 3)) == 3  # three tries, no more
    assert Alert.objects.get().grafana_annotation_id is None
    (failure,) = [r.getMessage() for r in caplog.records if "Grafana" in r.getMessage()]
    assert failure == "Grafana annotation not sent (POST /api/annotations to 127.0.0.1, 3 tries): HTTP 503"

    Job.objects.filter(queue="rentguy").update(status=Status.DONE)
    queue_services.recount()
    lifecycle.tick(t0 + SECOND)
    lifecycle.tick(t0 + 3 * SECOND)
    method, path, region = sent(grafana, 4)[3]
    assert (method, path) == ("POST", "/api/annotations")
    assert (region["time"], region["timeEnd"]) == (epoch_ms(t0), epoch_ms(t0 + 3 * SECOND))
    assert region["tags"] == ["mrdj", "rentguy", "warning", "resolved"]
    assert region["text"].startswith("[RESOLVED] rentguy: queue thresholds exceeded")


def test_a_dr_activation_is_marked_on_every_queue_it_names(grafana):
    put_jobs("rentguy", Status.PENDING, 4)
    put_jobs("sevensa", Status.PENDING, 4)
    t0 = timezone.now()
    assert sorted(n.event for n in lifecycle.tick(t0)) == ["dr", "firing", "firing"]
    (dr,) = [body for _, _, body in sent(grafana, 3) if "dr" in body["tags"]]
    assert dr["tags"] == ["mrdj", "rentguy", "sevensa", "critical", "dr"]
    assert dr["time"] == epoch_ms(t0)
    assert dr["text"].startswith("[CRITICAL] Activate the DR plan: ")
    assert "queues rentguy and sevensa critical at the same time" in dr["text"]
    assert DrActivation.objects.count() == 1


# --- Operator actions


def last_audit(action: str) -> AuditEvent:
    return AuditEvent.objects.filter(action=action).latest("created_at")


def test_a_flush_is_marked_on_its_queue(grafana):
    put_jobs("rentguy", Status.RETRY, 3)
    assert queue_services.flush(QUEUES["rentguy"], "cli:ops") == 3
    ((method, path, flush),) = sent(grafana, 1)
    assert (method, path) == ("POST", "/api/annotations")
    assert flush == {
        "time": epoch_ms(last_audit("queue.flush").created_at),
        "tags": ["mrdj", "rentguy", "operator", "queue.flush"],
        "text": "Queue flushed: rentguy, 3 jobs by cli:ops",
    }


def test_a_dead_letter_replay_is_marked_on_its_queue(grafana):
    put_jobs("sevensa", Status.DEAD, 2)
    assert queue_services.replay(QUEUES["sevensa"], "cli:ops") == 2
    _, _, replay = sent(grafana, 1)[0]
    assert replay["tags"] == ["mrdj", "sevensa", "operator", "deadletter.replay"]
    assert replay["text"] == "Dead-letter replayed: sevensa, 2 jobs by cli:ops"
    assert replay["time"] == epoch_ms(last_audit("deadletter.replay").created_at)


def test_a_flag_change_is_marked_on_the_queue_it_holds(grafana):
    flags.set_flag("FLAG_RENTGUY_INTEGRATION", "off", "cli:ops")
    _, _, change = sent(grafana, 1)[0]
    assert change["tags"] == ["mrdj", "rentguy", "operator", "flag.change"]
    assert change["text"] == "Flag changed: FLAG_RENTGUY_INTEGRATION on → off by cli:ops"


def test_a_configuration_change_names_the_variables_never_their_values(grafana):
    version = configuration.change(
        {"ALERT_THROTTLE_MS": "60000", "ALERT_JIRA_TOKEN": "jira-secret-value"}, None, "cli:ops"
    )
    _, _, change = sent(grafana, 1)[0]
    assert change["tags"] == ["mrdj", "all queues", "operator", "config.change"]
    assert change["text"] == (
        f"Configuration changed: ALERT_THROTTLE_MS, ALERT_JIRA_TOKEN (version {version.pk}) by cli:ops"
    )
    assert "jira-secret-value" not in grafana.received[0].body.decode()
    assert "60000" not in change["text"]


def test_other_audit_records_are_not_marked(grafana):
    silence_end = timezone.now() + timedelta(hours=1)
    alert_actions.create_silence("rentguy", silence_end, "upstream maintenance", "cli:ops")
    assert outbox.wait(10)
    assert grafana.received == []


# --- Never in the way


def test_a_grafana_that_hangs_holds_up_neither_alerts_nor_operators(hooks, managed_env, monkeypatch, caplog):
    """Each annotation spends 1.5 s on its three tries (0.5 s read timeout each): the alert's
    webhooks and the flush are done while both annotations are still on their way."""
    monkeypatch.setattr(grafana_annotations, "READ_TIMEOUT_S", 0.5)
    monkeypatch.setattr(grafana_annotations, "RETRY_DELAYS_S", (0.01, 0.01))
    with GrafanaStandIn(default=Answer(delay=5.0)) as hanging:
        managed_env.update({"GRAFANA_URL": hanging.url, "GRAFANA_API_TOKEN": TOKEN})
        put_jobs("rentguy", Status.PENDING, 2)
        with caplog.at_level(logging.WARNING, logger="alerting.grafana_annotations"):
            started = time.monotonic()
            lifecycle.tick()
            queue_services.flush(QUEUES["rentguy"], "cli:ops")
            assert time.monotonic() - started < 1.5
            for service in ("/slack", "/discord", "/teams", "/json"):
                wait_until(
                    lambda path=service: hooks.to(path), timeout=10, message=f"no webhook on {service}"
                )
            assert not outbox.wait(0), "the annotations were sent before the alert's webhooks"
            assert outbox.wait(30)
        assert len(hanging.received) == 6  # two annotations, three tries each
    failures = [r.getMessage() for r in caplog.records if "Grafana" in r.getMessage()]
    assert (
        failures
        == ["Grafana annotation not sent (POST /api/annotations to 127.0.0.1, 3 tries): timed out"] * 2
    )
    assert all(TOKEN not in r.getMessage() for r in caplog.records)


def test_with_grafana_down_the_alert_lifecycle_completes(
    hooks, managed_env, closed_port, quick_retries, caplog
):
    managed_env.update(
        {
            "GRAFANA_URL": f"http://127.0.0.1:{closed_port}",
            "GRAFANA_API_TOKEN": TOKEN,
            "ALERT_RESOLVE_QUIET_MS": "1000",
        }
    )
    put_jobs("rentguy", Status.PENDING, 2)
    t0 = timezone.now()
    with caplog.at_level(logging.WARNING, logger="alerting.grafana_annotations"):
        assert [n.event for n in lifecycle.tick(t0)] == ["firing"]
        Job.objects.filter(queue="rentguy").update(status=Status.DONE)
        queue_services.recount()
        lifecycle.tick(t0 + SECOND)
        assert [n.event for n in lifecycle.tick(t0 + 3 * SECOND)] == ["resolved"]
        sender.shutdown()
        assert outbox.wait(30)
    assert [r.json()["type"] for r in hooks.to("/json")] == ["alert", "resolved"]
    assert Alert.objects.get().state == Alert.State.RESOLVED
    failures = [r.getMessage() for r in caplog.records if "Grafana" in r.getMessage()]
    assert len(failures) == 2 and all("could not connect" in line for line in failures)


def test_nothing_is_queued_without_grafana_url(hooks, managed_env, monkeypatch):
    queued = []
    monkeypatch.setattr(outbox, "put", queued.append)
    managed_env.set("GRAFANA_API_TOKEN", TOKEN)  # a token alone sends nothing
    put_jobs("rentguy", Status.PENDING, 4)
    put_jobs("sevensa", Status.DEAD, 1)
    lifecycle.tick()
    queue_services.replay(QUEUES["sevensa"], "cli:ops")
    flags.set_flag("FLAG_SEVENSA_INTEGRATION", "off", "cli:ops")
    assert queued == []
    assert Alert.objects.exists()


# --- The dashboard


def load_builder():
    path = ROOT / "docs" / "grafana" / "build.py"
    spec = importlib.util.spec_from_file_location("mrdj_grafana_dashboard", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def builder():
    return load_builder()


@pytest.fixture(scope="module")
def board(builder) -> dict:
    return json.loads(builder.OUTPUT.read_text())


def queries(board: dict) -> list[dict]:
    return [target for panel in board["panels"] for target in panel.get("targets", [])]


def test_the_committed_dashboard_is_what_build_py_generates(builder):
    assert builder.OUTPUT.read_text() == builder.rendered(), "run: .venv/bin/python docs/grafana/build.py"


def test_the_dashboard_passes_the_foundation_sdks_dashboard_model(builder, board):
    """The SDK's types are generated from Grafana's dashboard schema; parsing keeps only what
    they know, so an unknown or misspelt key would not survive the round trip."""
    register_default_plugins()

    def round_trip(data: dict) -> dict:
        return json.loads(json.dumps(Dashboard.from_json(data), cls=JSONEncoder))

    assert round_trip(board) == board
    misspelt = json.loads(json.dumps(board))
    misspelt["panels"][1]["fieldconfig"] = misspelt["panels"][1].pop("fieldConfig")
    assert round_trip(misspelt) != misspelt
    assert {"schemaVersion", "templating", "annotations", "title", "uid"} <= set(board)
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0


def test_the_data_sources_are_variables_chosen_on_import(board):
    variables = {variable["name"]: variable for variable in board["templating"]["list"]}
    assert (variables["datasource"]["type"], variables["datasource"]["query"]) == ("datasource", "prometheus")
    assert variables["infinity"]["query"] == "yesoreyeram-infinity-datasource"
    assert variables["mrdj_url"]["type"] == "textbox"
    for query in queries(board):
        assert query["datasource"]["uid"] in ("${datasource}", "${infinity}")
    (table,) = [query for query in queries(board) if "url" in query]
    assert table["url"] == "${mrdj_url}/metrics/queues"
    assert table["datasource"] == {"type": "yesoreyeram-infinity-datasource", "uid": "${infinity}"}
    text = json.dumps(board)
    assert "Authorization" not in text and "Bearer" not in text  # the token lives in the data source


def test_every_metric_the_dashboard_queries_is_served_by_get_metrics(board, managed_env):
    managed_env.update(TOKENS)
    metrics.delivery_tried("rentguy", "delivered")
    metrics.job_finished("rentguy", "delivered", 0.4)
    answer = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKENS['METRICS_API_TOKEN']}")
    assert answer.status_code == 200
    served = set(re.findall(r"^(mrdj_\w+?)(?:\{| )", answer.content.decode(), re.MULTILINE))
    wanted = {name for query in queries(board) for name in re.findall(r"mrdj_\w+", query.get("expr", ""))}
    assert wanted == {
        "mrdj_queue_backlog",
        "mrdj_queue_retry_age_seconds",
        "mrdj_queue_dead_letter",
        "mrdj_deliveries_total",
        "mrdj_job_latency_seconds_bucket",
    }
    assert wanted <= served
    exprs = " ".join(query.get("expr", "") for query in queries(board))
    assert "histogram_quantile(0.5, sum by (le, queue)" in exprs
    assert "histogram_quantile(0.95, sum by (le, queue)" in exprs


def test_the_table_columns_are_fields_of_get_metrics_queues(board, managed_env):
    managed_env.update(TOKENS)
    answer = Client().get("/metrics/queues", HTTP_AUTHORIZATION=f"Bearer {TOKENS['METRICS_API_TOKEN']}")
    fields = set(next(iter(answer.json()["queues"].values())))
    (table,) = [query for query in queries(board) if "url" in query]
    columns = {column["selector"] for column in table["columns"]}
    assert columns - fields == {"queue"}  # the root selector adds each queue's name
    assert "queues" in table["root_selector"]

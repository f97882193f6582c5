"""Build docs/grafana/mrdj.json, the Grafana dashboard of mrdj, with Grafana's own Foundation SDK.

    .venv/bin/python docs/grafana/build.py          # writes docs/grafana/mrdj.json
    .venv/bin/python docs/grafana/build.py --check  # exit 1 when the committed file is stale

Generated rather than drawn in Grafana and exported, so the metric names stay those of
mrdj/metrics.py and GET /metrics, and a test (tests/test_grafana.py) keeps the committed
JSON equal to this script's output. The SDK targets Grafana 11.6 (its version in
requirements-dev.txt); the data sources are variables, chosen on import.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path
from typing import Any, Self

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard, prometheus, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    VariableHide,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

OUTPUT = Path(__file__).with_name("mrdj.json")
UID = "mrdj-queues"
INFINITY = "yesoreyeram-infinity-datasource"
PROMETHEUS_SOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
INFINITY_SOURCE = DataSourceRef(type_val=INFINITY, uid="${infinity}")
# Grafana's own annotations, where mrdj posts its own (GRAFANA_URL, docs/telemetry.md).
GRAFANA_ANNOTATIONS = DataSourceRef(type_val="grafana", uid="-- Grafana --")
QUEUE = 'queue=~"$queue"'
FAILED = 'outcome=~"retry|dead"'  # held (paused, circuit open) is not a failure


class InfinityQuery(cogvariants.Dataquery):
    """A query of the Infinity data source, which the SDK has no type for: kept as the plugin's
    JSON (its query model: refId, type, source, url, parser, root_selector, columns)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec

    def to_json(self) -> dict[str, Any]:
        return dict(self.spec)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(dict(data))


class Infinity(cogbuilder.Builder[InfinityQuery]):
    def __init__(self, spec: dict[str, Any]) -> None:
        self._query = InfinityQuery(spec)

    def build(self) -> InfinityQuery:
        return self._query


cogruntime.register_dataquery_variant(
    cogruntime.DataqueryConfig(identifier=INFINITY, from_json_hook=InfinityQuery.from_json)
)


def promql(expr: str, legend: str, ref: str = "A") -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(PROMETHEUS_SOURCE)


def graph(title: str, description: str, unit: str, width: int = 8) -> timeseries.Panel:
    legend = (
        common_builders.VizLegendOptions()
        .show_legend(True)
        .display_mode(common.LegendDisplayMode.TABLE)
        .placement(common.LegendPlacement.BOTTOM)
        .calcs(["lastNotNull", "max"])
    )
    return (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS_SOURCE)
        .unit(unit)
        .min(0)
        .span(width)
        .height(8)
        .legend(legend)
        .fill_opacity(10)
        .show_points(common.VisibilityMode.NEVER)
    )


def variables() -> list[cogbuilder.Builder]:
    return [
        dashboard.DatasourceVariable("datasource")
        .label("Prometheus")
        .type("prometheus")
        .description("The Prometheus that scrapes mrdj's GET /metrics."),
        dashboard.DatasourceVariable("infinity")
        .label("mrdj API (Infinity)")
        .type(INFINITY)
        .description("An Infinity data source whose auth sends METRICS_API_TOKEN as bearer token."),
        dashboard.TextBoxVariable("mrdj_url")
        .label("mrdj URL")
        .default_value("https://ops.misterdj.nl")
        .current(VariableOption(text="https://ops.misterdj.nl", value="https://ops.misterdj.nl"))
        .description(
            "Base URL of mrdj, for GET /metrics/queues (list it in the data source's allowed hosts)."
        ),
        dashboard.QueryVariable("queue")
        .label("Queue")
        .datasource(PROMETHEUS_SOURCE)
        .query("label_values(mrdj_queue_backlog, queue)")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(VariableOption(text="All", value="$__all"))
        .hide(VariableHide.DONT_HIDE),
    ]


def queue_panels() -> list[timeseries.Panel]:
    backlog = graph("Queue backlog", "Jobs waiting, retries included (mrdj_queue_backlog).", "short")
    retry_age = graph(
        "Retry age", "Age of the oldest job waiting to retry (mrdj_queue_retry_age_seconds).", "s"
    )
    dead = graph("Dead-letter", "Jobs in the dead-letter queue (mrdj_queue_dead_letter).", "short")
    return [
        backlog.with_target(promql(f"max by (queue) (mrdj_queue_backlog{{{QUEUE}}})", "{{queue}}")),
        retry_age.with_target(
            promql(f"max by (queue) (mrdj_queue_retry_age_seconds{{{QUEUE}}})", "{{queue}}")
        ),
        dead.with_target(promql(f"max by (queue) (mrdj_queue_dead_letter{{{QUEUE}}})", "{{queue}}")),
    ]


def delivery_panels() -> list[timeseries.Panel]:
    tries = graph("Deliveries per second", "Upstream tries by outcome (mrdj_deliveries_total).", "reqps", 12)
    failures = graph(
        "Failures per second",
        "Tries that failed: retried later or dead-lettered (outcome retry or dead).",
        "reqps",
        12,
    )
    latency = graph(
        "Job latency p50 / p95",
        "From acceptance to delivered or dead-lettered (mrdj_job_latency_seconds).",
        "s",
        24,
    )
    rate = "rate(mrdj_deliveries_total{%s}[$__rate_interval])"
    quantile = "histogram_quantile(%s, sum by (le, queue) (rate(mrdj_job_latency_seconds_bucket{%s}[5m])))"
    return [
        tries.with_target(promql(f"sum by (queue, outcome) ({rate % QUEUE})", "{{queue}} {{outcome}}")),
        failures.with_target(promql(f"sum by (queue) ({rate % (QUEUE + ', ' + FAILED)})", "{{queue}}")),
        latency.with_target(promql(quantile % ("0.5", QUEUE), "{{queue}} p50")).with_target(
            promql(quantile % ("0.95", QUEUE), "{{queue}} p95", "B")
        ),
    ]


def queues_now_panel() -> table.Panel:
    """GET /metrics/queues as a table: one row per queue, through the Infinity data source."""
    columns = [
        ("queue", "Queue", "string"),
        ("enabled", "Enabled", "boolean"),
        ("backlog", "Backlog", "number"),
        ("active", "In flight", "number"),
        ("retry_age_ms", "Retry age (ms)", "number"),
        ("dead_letter", "Dead-letter", "number"),
        ("oldest_pending_age_ms", "Oldest waiting (ms)", "number"),
        ("circuit", "Circuit", "string"),
        ("paused_until", "Paused until", "string"),
        ("last_error", "Last error", "string"),
    ]
    query = {
        "refId": "A",
        "datasource": INFINITY_SOURCE.to_json(),
        "type": "json",
        "source": "url",
        "format": "table",
        "parser": "backend",
        "url": "${mrdj_url}/metrics/queues",
        "url_options": {"method": "GET", "data": ""},
        # /metrics/queues keys the queues by name: one row each, the name as a column.
        "root_selector": '$each(queues, function($v, $k) { $merge([{"queue": $k}, $v]) })',
        "columns": [{"selector": key, "text": text, "type": kind} for key, text, kind in columns],
    }
    return (
        table.Panel()
        .title("Queues now (GET /metrics/queues)")
        .description("What the dashboard's queue cards show, read from mrdj at each refresh.")
        .datasource(INFINITY_SOURCE)
        .span(24)
        .height(7)
        .with_target(Infinity(query))
    )


def build() -> dashboard.Dashboard:
    annotations = (
        dashboard.AnnotationQuery()
        .name("mrdj events")
        .datasource(GRAFANA_ANNOTATIONS)
        .enable(True)
        .icon_color("orange")
        .target(dashboard.AnnotationTarget().type("tags").tags(["mrdj"]).match_any(False).limit(500))
    )
    board = (
        dashboard.Dashboard("mrdj: queues and deliveries")
        .uid(UID)
        .description("Mister DJ ops backend: queue figures, deliveries and latency, with mrdj's own events.")
        .tags(["mrdj"])
        .editable()
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .refresh("30s")
        .time("now-6h", "now")
        .timezone(common.TimeZoneBrowser)
        .variables(variables())
        .annotation(annotations)
    )
    sections = [
        ("Queues", queue_panels()),
        ("Deliveries", delivery_panels()),
        ("Now", [queues_now_panel()]),
    ]
    ids = itertools.count(1)
    for title, panels in sections:
        # Expanded rows: their panels follow them at the top level (Grafana drops those nested
        # in a row that is not collapsed).
        board.with_row(dashboard.Row(title).collapsed(False).id(next(ids)))
        for panel in panels:
            board.with_panel(panel.id(next(ids)))
    return board


def rendered() -> str:
    """The dashboard's JSON as committed: sorted keys, two-space indent, a final newline."""
    return json.dumps(build().build(), cls=JSONEncoder, sort_keys=True, indent=2) + "\n"


def main(argv: list[str]) -> int:
    text = rendered()
    if "--check" in argv:
        if OUTPUT.read_text() != text:
            print(f"{OUTPUT} is stale: run python docs/grafana/build.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

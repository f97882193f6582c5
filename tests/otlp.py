"""Reading what a local receiver got from mrdj's OTLP/HTTP exporters, with opentelemetry-proto."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan


def _value(value) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


def attributes(pairs) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


@dataclass(frozen=True)
class Span:
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_span_id: str
    start_ns: int
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str = ""  # the instrumentation scope: which library or mrdj module made it
    links: tuple[str, ...] = ()  # the trace ids it links to


def spans(receiver) -> list[Span]:
    found = []
    for request in receiver.to("/v1/traces"):
        for resource_spans in ExportTraceServiceRequest.FromString(request.body).resource_spans:
            resource = attributes(resource_spans.resource.attributes)
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    kind = ProtoSpan.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_")
                    found.append(
                        Span(
                            span.name,
                            kind,
                            span.trace_id.hex(),
                            span.span_id.hex(),
                            span.parent_span_id.hex(),
                            span.start_time_unix_nano,
                            attributes(span.attributes),
                            resource,
                            scope.scope.name,
                            tuple(link.trace_id.hex() for link in span.links),
                        )
                    )
    return found


@dataclass(frozen=True)
class Point:
    metric: str
    attributes: dict[str, Any]
    value: float
    resource: dict[str, Any]


def points(receiver) -> list[Point]:
    found = []
    for request in receiver.to("/v1/metrics"):
        for resource_metrics in ExportMetricsServiceRequest.FromString(request.body).resource_metrics:
            resource = attributes(resource_metrics.resource.attributes)
            for scope in resource_metrics.scope_metrics:
                for metric in scope.metrics:
                    data = getattr(metric, metric.WhichOneof("data"))
                    for point in data.data_points:
                        if hasattr(point, "as_int") or hasattr(point, "as_double"):
                            value = point.as_int if point.WhichOneof("value") == "as_int" else point.as_double
                        else:  # a histogram: its count
                            value = point.count
                        found.append(Point(metric.name, attributes(point.attributes), value, resource))
    return found

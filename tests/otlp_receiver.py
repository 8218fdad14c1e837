"""A loopback OTLP/HTTP receiver: sees exactly the bytes a collector (or Jaeger) would.

It accepts ``POST /v1/traces`` and ``POST /v1/metrics`` (protobuf, optionally gzip-compressed),
keeps every raw request body and the decoded spans and metrics, and answers as a collector does.
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from .servers import LoopbackServer

__all__ = ["OTLPReceiver", "any_value", "attributes_of", "span_attributes"]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: OTLPReceiver

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        wire = self.rfile.read(length) if length else b""
        encoding = (self.headers.get("content-encoding") or "").lower()
        path = self.path.split("?", 1)[0]
        if path not in ("/v1/traces", "/v1/metrics"):
            self._reply(404, b"")
            return
        try:
            if encoding == "gzip":
                data = gzip.decompress(wire)
            elif encoding == "deflate":
                data = zlib.decompress(wire)
            else:
                data = wire
            if path == "/v1/metrics":
                metrics = ExportMetricsServiceRequest.FromString(data)
            else:
                request = ExportTraceServiceRequest.FromString(data)
        except Exception:
            self._reply(400, b"")
            return
        if path == "/v1/metrics":
            self.server.accept_metrics(metrics)
            self._reply(200, ExportMetricsServiceResponse().SerializeToString())
            return
        self.server.accept(wire, data, request)
        self._reply(200, ExportTraceServiceResponse().SerializeToString())

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response_only(status)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()


class OTLPReceiver(LoopbackServer):
    """Collects what an ``OTLPSpanExporter`` pointed at :attr:`endpoint` sends."""

    def __init__(self) -> None:
        super().__init__(_Handler)
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        #: The request bodies as they came over the wire (possibly compressed).
        self.wire: list[bytes] = []
        #: The decompressed protobuf payloads.
        self.raw: list[bytes] = []
        self.requests: list[ExportTraceServiceRequest] = []
        #: The decoded metric exports, in the order they came.
        self.metric_requests: list[ExportMetricsServiceRequest] = []

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def endpoint(self) -> str:
        return f"{self.base_url}/v1/traces"

    @property
    def metrics_endpoint(self) -> str:
        return f"{self.base_url}/v1/metrics"

    def accept_metrics(self, request: ExportMetricsServiceRequest) -> None:
        with self._arrived:
            self.metric_requests.append(request)
            self._arrived.notify_all()

    def metrics(self, export: int = -1) -> dict[str, Metric]:
        """The metrics of one export (default: the last), by name."""
        with self._lock:
            request = self.metric_requests[export]
        return {
            metric.name: metric
            for resource_metrics in request.resource_metrics
            for scope_metrics in resource_metrics.scope_metrics
            for metric in scope_metrics.metrics
        }

    def accept(self, wire: bytes, data: bytes, request: ExportTraceServiceRequest) -> None:
        with self._arrived:
            self.wire.append(wire)
            self.raw.append(data)
            self.requests.append(request)
            self._arrived.notify_all()

    def spans(self) -> list[Span]:
        with self._lock:
            requests = list(self.requests)
        return [
            span
            for request in requests
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]

    def all_bytes(self) -> bytes:
        """Every byte received, both as sent and decompressed."""
        with self._lock:
            return b"".join(self.wire) + b"".join(self.raw)

    def wait_for_spans(self, count: int, timeout: float = 10.0) -> list[Span]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.spans()
            if len(found) >= count or time.monotonic() >= deadline:
                return found
            with self._arrived:
                self._arrived.wait(min(0.05, max(deadline - time.monotonic(), 0)))

    def clear(self) -> None:
        with self._lock:
            self.wire.clear()
            self.raw.clear()
            self.requests.clear()
            self.metric_requests.clear()


def any_value(value: AnyValue) -> Any:
    """A decoded OTLP ``AnyValue`` as a plain Python value."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind)


def attributes_of(attributes: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in attributes}


def span_attributes(span: Span) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in span.attributes}


def iter_strings(span: Span) -> Iterator[str]:
    """Every string a span carries: name, status, attribute and event values."""
    yield span.name
    yield span.status.message
    for value in span_attributes(span).values():
        yield str(value)
    for event in span.events:
        yield event.name
        for kv in event.attributes:
            yield str(any_value(kv.value))

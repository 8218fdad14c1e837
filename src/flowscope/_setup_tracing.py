"""One call to a ``TracerProvider`` that exports over OTLP/HTTP (Jaeger takes it on 4318), and
one to a ``MeterProvider`` that does the same for metrics."""

from __future__ import annotations

import os
import sys

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
)

__all__ = ["setup_metrics", "setup_tracing"]


def setup_tracing(
    service_name: str,
    *,
    otlp_endpoint: str | None = None,
    console: bool = False,
    set_global: bool = True,
) -> TracerProvider:
    """Create a ``TracerProvider`` for ``service_name`` exporting spans over OTLP/HTTP.

    ``otlp_endpoint`` is the collector's base URL (``http://localhost:4318``) or the full traces
    URL (``.../v1/traces``); without it the standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` /
    ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` variables apply, and with none of them spans are
    recorded but not exported. Needs the ``flowscope[otlp]`` extra for export.

    ``console=True`` also prints each span as JSON to stdout the moment it ends (OpenTelemetry's
    ``ConsoleSpanExporter``), so a first try shows the span without any collector.
    """
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    endpoint = _endpoint(otlp_endpoint, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "/v1/traces")
    if endpoint:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise RuntimeError(
                "exporting traces needs the OTLP exporter: pip install 'flowscope[otlp]'"
            ) from exc
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    if console:
        # Bound to the current stdout now: the exporter's default is the one seen at import.
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stdout)))
    if set_global:
        from opentelemetry import trace

        trace.set_tracer_provider(provider)
    return provider


def setup_metrics(
    service_name: str,
    *,
    otlp_endpoint: str | None = None,
    export_interval_s: float = 60.0,
    set_global: bool = True,
) -> MeterProvider:
    """Create a ``MeterProvider`` for ``service_name`` exporting metrics over OTLP/HTTP.

    The sibling of :func:`setup_tracing`, for :class:`flowscope.OTelFlowMetrics`:
    ``otlp_endpoint`` is the collector's base URL (``http://localhost:4318``) or the full metrics
    URL (``.../v1/metrics``); without it ``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`` /
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` apply, and with none of them nothing is exported. Metrics go
    out every ``export_interval_s`` and when the provider shuts down (at exit, or
    ``provider.shutdown()``). Needs the ``flowscope[otlp]`` extra for export.
    """
    readers: list[MetricReader] = []
    endpoint = _endpoint(otlp_endpoint, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "/v1/metrics")
    if endpoint:
        try:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise RuntimeError(
                "exporting metrics needs the OTLP exporter: pip install 'flowscope[otlp]'"
            ) from exc
        readers.append(
            PeriodicExportingMetricReader(
                OTLPMetricExporter(endpoint=endpoint),
                export_interval_millis=export_interval_s * 1000,
            )
        )
    provider = MeterProvider(
        metric_readers=readers, resource=Resource.create({"service.name": service_name})
    )
    if set_global:
        from opentelemetry import metrics

        metrics.set_meter_provider(provider)
    return provider


def _endpoint(given: str | None, variable: str, path: str) -> str | None:
    """The signal's full URL: ``given``, else its own variable, else the base variable."""
    endpoint = given or os.environ.get(variable) or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not endpoint:
        return None
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith(path) else endpoint + path

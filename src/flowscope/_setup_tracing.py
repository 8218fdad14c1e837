"""One call to a ``TracerProvider`` that exports over OTLP/HTTP (Jaeger takes it on 4318)."""

from __future__ import annotations

import os
import sys

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
)

__all__ = ["setup_tracing"]


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
    endpoint = otlp_endpoint or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if endpoint is None and base:
        endpoint = base
    if endpoint:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise RuntimeError(
                "exporting traces needs the OTLP exporter: pip install 'flowscope[otlp]'"
            ) from exc
        if not endpoint.rstrip("/").endswith("/v1/traces"):
            endpoint = endpoint.rstrip("/") + "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    if console:
        # Bound to the current stdout now: the exporter's default is the one seen at import.
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stdout)))
    if set_global:
        from opentelemetry import trace

        trace.set_tracer_provider(provider)
    return provider

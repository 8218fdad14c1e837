"""Per-flow Prometheus metrics: the metrics sink of a call record.

The metric names, types and labels are a contract with users' dashboards and alerts (the
README's metrics table).
Every label value that comes from the network is bounded here, so no caller, server or attacker
choosing flow ids can grow the number of series past the configured limits.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any
from weakref import WeakKeyDictionary, WeakValueDictionary
from wsgiref.simple_server import WSGIServer

import prometheus_client
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

from . import metric_names
from ._record import CallRecord
from ._vocabulary import MAX_SHOWN_CHARS, NONE, OTHER, SENTINELS, UNKNOWN, printable

__all__ = [
    "DURATION_BUCKETS",
    "FlowMetrics",
    "default_metrics",
    "make_asgi_app",
    "make_wsgi_app",
    "serve_metrics",
]

#: OpenTelemetry's recommended buckets for ``http.client.request.duration``.
# fmt: off
DURATION_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)
# fmt: on

#: Longer label values are cut: a flow name is never this long, an attack payload may be.
MAX_LABEL_CHARS = MAX_SHOWN_CHARS

#: The methods OpenTelemetry's HTTP conventions know; anything else is ``_OTHER``.
_KNOWN_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}
)

_TRACE_ID = re.compile(r"[0-9a-f]{32}")
_SPAN_ID = re.compile(r"[0-9a-f]{16}")

_registry_lock = threading.RLock()
_instances: WeakKeyDictionary[CollectorRegistry, WeakValueDictionary[str, FlowMetrics]] = (
    WeakKeyDictionary()
)


def _clean(value: str) -> str:
    """Make ``value`` safe as a label value.

    Control characters and lone surrogates would break the exposition (or its UTF-8 encoding),
    and an unbounded length would let one request bloat every scrape.
    """
    return printable(value, MAX_LABEL_CHARS) or NONE


def _method(method: str) -> str:
    return method if method in _KNOWN_METHODS else "_OTHER"


def _status(status_code: int) -> str:
    # HTTP/1.1 status codes have three digits; anything else would be an unbounded label.
    return str(status_code) if 100 <= status_code <= 999 else OTHER


def _exemplar(record: CallRecord) -> dict[str, str] | None:
    """The exemplar linking a sample to its trace, or ``None`` when there is no sampled span.

    Malformed ids are dropped rather than passed on: prometheus-client raises on exemplars over
    128 characters, and a metrics sink must never fail the call it describes.
    """
    trace_id = record.trace_id
    if trace_id is None or not _TRACE_ID.fullmatch(trace_id):
        return None
    if record.span_id is not None and _SPAN_ID.fullmatch(record.span_id):
        return {"trace_id": trace_id, "span_id": record.span_id}
    return {"trace_id": trace_id}


class _BoundedValues:
    """The first ``limit`` distinct values of one label; later newcomers are refused."""

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError(f"label limits must be >= 0, got {limit}")
        self._limit = limit
        self._admitted: set[str] = set()
        self._lock = threading.Lock()

    def admit(self, value: str) -> bool:
        if value in self._admitted or value in SENTINELS:
            return True
        with self._lock:
            if value in self._admitted:
                return True
            if len(self._admitted) >= self._limit:
                return False
            self._admitted.add(value)
            return True


class FlowMetrics:
    """The Prometheus instruments flowscope writes to, registered as one collector.

    Label values are cleaned (cut to 128 characters, control characters replaced by ``_``, an
    empty value becomes ``__none__``) and the ``flow``, ``field`` and ``error_code`` labels are
    bounded: the first ``max_flows`` / ``max_fields`` / ``max_error_codes`` distinct values are
    kept, later ones are folded into ``__other__`` and every fold counts in
    ``flowscope_label_overflow_total{label=...}``. The sentinels ``__none__``, ``__missing__``,
    ``__unknown__`` and ``__other__`` never use up a slot. An error response without an error
    code counts with ``error_code="__none__"``; ``method`` outside the standard HTTP methods is
    ``_OTHER``, as in OpenTelemetry's HTTP conventions.

    When a call's span is sampled, the requests, errors and transport-error counters and the
    duration histogram carry a ``trace_id`` / ``span_id`` exemplar, visible in the OpenMetrics
    exposition (the per-field counter does not: the error counter already links the trace). In
    prometheus-client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set) exemplars are not
    supported, so none are attached; the metrics themselves work as usual.

    Only one instance may write to a registry (two would export duplicate series): the
    constructor raises ``ValueError`` when the registry already holds flowscope's metrics, and
    :meth:`for_registry` returns the existing instance instead.
    """

    registry: CollectorRegistry

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        max_flows: int = 200,
        max_fields: int = 100,
        max_error_codes: int = 100,
        namespace: str = "flowscope",
    ) -> None:
        self.registry = REGISTRY if registry is None else registry
        self.namespace = namespace
        self._flows = _BoundedValues(max_flows)
        self._fields = _BoundedValues(max_fields)
        self._error_codes = _BoundedValues(max_error_codes)
        self._exemplars = not _multiprocess_mode()
        # Label children by (instrument, values): one dict lookup instead of ``labels()``'s
        # validation and lock on every call. As bounded as the series themselves.
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

        def counter(name: str, doc: str, labels: tuple[str, ...]) -> Counter:
            return Counter(_short(name), doc, labels, namespace=namespace, registry=None)

        self._requests = counter(
            metric_names.REQUESTS,
            "Flow calls that got a response, by HTTP status code.",
            ("flow", "operation", "method", "status_code"),
        )
        self._duration = Histogram(
            _short(metric_names.DURATION),
            "Duration of flow calls, including those that failed without a response.",
            ("flow", "operation", "outcome"),
            namespace=namespace,
            registry=None,
            buckets=DURATION_BUCKETS,
        )
        self._errors = counter(
            metric_names.ERRORS,
            "Flow calls answered with status >= 400, by the error code in the body.",
            ("flow", "operation", "status_code", "error_code"),
        )
        self._error_fields = counter(
            metric_names.ERROR_FIELDS,
            "Fields named by error responses (details[].fieldName and nested errors).",
            ("flow", "operation", "field"),
        )
        self._transport_errors = counter(
            metric_names.TRANSPORT_ERRORS,
            "Flow calls that failed without a response, by exception type.",
            ("flow", "operation", "exception"),
        )
        self._overflow = counter(
            metric_names.LABEL_OVERFLOW,
            "Label values folded into __other__ because their label reached its limit.",
            ("label",),
        )
        self._internal_errors = counter(
            metric_names.INTERNAL_ERRORS,
            "Errors inside flowscope itself; the instrumented call was unaffected.",
            ("stage",),
        )
        self._instruments: tuple[Counter | Histogram, ...] = (
            self._requests,
            self._duration,
            self._errors,
            self._error_fields,
            self._transport_errors,
            self._overflow,
            self._internal_errors,
        )
        # Dashboards plot overflow rates; a series that exists from the start reads as zero.
        for label in ("flow", "field", "error_code"):
            self._overflow.labels(label)

        with _registry_lock:
            try:
                self.registry.register(self)
            except ValueError as exc:  # DuplicateTimeseries in prometheus-client >= 0.21
                clash = min(getattr(exc, "duplicates", None) or {f"{namespace}_requests_total"})
                raise ValueError(
                    f"this registry already has a collector for {clash!r}: only one FlowMetrics "
                    f"may write {namespace}_* metrics to a registry; reuse it, e.g. with "
                    "FlowMetrics.for_registry(registry)"
                ) from None
            _instances.setdefault(self.registry, WeakValueDictionary())[namespace] = self

    @classmethod
    def for_registry(
        cls,
        registry: CollectorRegistry | None = None,
        *,
        max_flows: int = 200,
        max_fields: int = 100,
        max_error_codes: int = 100,
        namespace: str = "flowscope",
    ) -> FlowMetrics:
        """The instance writing to ``registry`` under ``namespace``, created on first use.

        The limits apply only when the instance is created here; an existing one keeps its own.
        """
        registry = REGISTRY if registry is None else registry
        with _registry_lock:
            by_namespace = _instances.get(registry)
            existing = by_namespace.get(namespace) if by_namespace is not None else None
            if existing is not None:
                return existing
            return cls(
                registry,
                max_flows=max_flows,
                max_fields=max_fields,
                max_error_codes=max_error_codes,
                namespace=namespace,
            )

    def observe(self, record: CallRecord) -> None:
        """Count one call in every metric it touches."""
        flow = self._bounded(self._flows, "flow", _clean(record.flow_label))
        operation = _clean(record.operation)
        exemplar = _exemplar(record) if self._exemplars else None
        status_code = record.status_code

        if status_code is None:
            exception = _clean(record.exception_type or UNKNOWN)
            self._child(self._transport_errors, flow, operation, exception).inc(1, exemplar)
        else:
            status = _status(status_code)
            method = _method(record.method)
            self._child(self._requests, flow, operation, method, status).inc(1, exemplar)
            if status_code >= 400:
                code = self._bounded(
                    self._error_codes, "error_code", _clean(record.error_code or NONE)
                )
                self._child(self._errors, flow, operation, status, code).inc(1, exemplar)
                # No exemplar: a field's trace is the error's, already linked from the two
                # counters above, and one error may name a hundred fields.
                for name in record.error_fields:
                    field = self._bounded(self._fields, "field", _clean(name))
                    self._child(self._error_fields, flow, operation, field).inc()

        duration = record.duration_s
        if duration >= 0:  # also false for NaN, which would poison the histogram's sum
            outcome = _clean(record.outcome)
            self._child(self._duration, flow, operation, outcome).observe(duration, exemplar)

    def internal_error(self, stage: str) -> None:
        """Count an error flowscope caught in itself at ``stage`` (e.g. ``metrics``, ``span``)."""
        self._internal_errors.labels(_clean(stage)).inc()

    def describe(self) -> Iterable[prometheus_client.Metric]:
        """The metric families, without samples; lets the registry detect name clashes."""
        for instrument in self._instruments:
            yield from instrument.describe()

    def collect(self) -> Iterable[prometheus_client.Metric]:
        """The metric families with their samples, as a registry scrapes them."""
        for instrument in self._instruments:
            yield from instrument.collect()

    def _child(self, instrument: Counter | Histogram, *labels: str) -> Any:
        key = (id(instrument), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = instrument.labels(*labels)
        return child

    def _bounded(self, values: _BoundedValues, label: str, value: str) -> str:
        if values.admit(value):
            return value
        self._overflow.labels(label).inc()
        return OTHER


def _short(name: str) -> str:
    """A default-namespace metric name without its namespace, which each instance adds."""
    return name.removeprefix(metric_names.NAMESPACE + "_")


def _multiprocess_mode() -> bool:
    # The same test prometheus-client uses to choose its value storage.
    return "PROMETHEUS_MULTIPROC_DIR" in os.environ or "prometheus_multiproc_dir" in os.environ


def default_metrics() -> FlowMetrics:
    """The instance on ``prometheus_client.REGISTRY``, created on first use."""
    return FlowMetrics.for_registry(REGISTRY)


def serve_metrics(
    port: int = 9464,
    addr: str = "127.0.0.1",
    *,
    registry: CollectorRegistry | None = None,
) -> tuple[WSGIServer, threading.Thread]:
    """Serve ``/metrics`` from a daemon thread; stop it with ``server.shutdown()``.

    The server answers OpenMetrics (with exemplars) to scrapers that ask for it, and the
    classic text format otherwise. Without ``registry`` it serves the default registry, with
    flowscope's metrics registered so they show before the first call.
    """
    return prometheus_client.start_http_server(port, addr, registry=_served(registry))


def make_wsgi_app(registry: CollectorRegistry | None = None) -> Callable[..., Any]:
    """A WSGI app serving ``/metrics`` for ``registry``, to mount in your app.

    Without ``registry`` it serves the default registry, with flowscope's metrics registered
    so they show before the first call (prometheus-client's own ``make_wsgi_app`` would not).
    """
    return prometheus_client.make_wsgi_app(_served(registry))


def make_asgi_app(registry: CollectorRegistry | None = None) -> Callable[..., Any]:
    """The ASGI twin of :func:`make_wsgi_app`."""
    return prometheus_client.make_asgi_app(_served(registry))


def _served(registry: CollectorRegistry | None) -> CollectorRegistry:
    return default_metrics().registry if registry is None else registry

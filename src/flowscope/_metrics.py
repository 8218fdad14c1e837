"""Per-flow Prometheus metrics: the metrics sink of a call record.

The metric names, types and labels are a contract with users' dashboards and alerts (the
README's metrics table).
Every label value that comes from the network is bounded here, so no caller, server or attacker
choosing flow ids can grow the number of series past the configured limits.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from typing import Any
from weakref import WeakKeyDictionary, WeakValueDictionary
from wsgiref.simple_server import WSGIServer

import prometheus_client
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

from . import metric_names
from ._labels import (
    DEFAULT_MAX_ERROR_CODES,
    DEFAULT_MAX_FIELDS,
    DEFAULT_MAX_FLOWS,
    DEFAULT_MAX_HOSTS,
    DURATION_BUCKETS,
    EXECUTION_DURATION_BUCKETS,
    RETRY_AFTER_BUCKETS,
    LabelBounds,
    RateLimitWindows,
    clean,
    exemplar,
    ids_exemplar,
)
from ._record import CallRecord
from ._vocabulary import NONE, UNKNOWN, UNOBSERVED

__all__ = [
    "DURATION_BUCKETS",
    "EXECUTION_DURATION_BUCKETS",
    "RETRY_AFTER_BUCKETS",
    "FlowMetrics",
    "default_metrics",
    "make_asgi_app",
    "make_wsgi_app",
    "serve_metrics",
]

_registry_lock = threading.RLock()
_instances: WeakKeyDictionary[CollectorRegistry, WeakValueDictionary[str, FlowMetrics]] = (
    WeakKeyDictionary()
)


class _RateLimitGauges:
    """The ``flowscope_ratelimit_*`` gauges, read from the windows when scraped."""

    def __init__(self, namespace: str, windows: RateLimitWindows) -> None:
        self._names = tuple(
            namespace + name.removeprefix(metric_names.NAMESPACE)
            for name in (
                metric_names.RATELIMIT_ALLOWED,
                metric_names.RATELIMIT_USED,
                metric_names.RATELIMIT_RESET,
            )
        )
        self._windows = windows

    def families(self, *, samples: bool = True) -> list[GaugeMetricFamily]:
        allowed_name, used_name, reset_name = self._names
        allowed = GaugeMetricFamily(
            allowed_name,
            "Requests the platform allows per rate-limit window (inin-ratelimit-allowed).",
            labels=("host",),
        )
        used = GaugeMetricFamily(
            used_name,
            "Requests counted in the current rate-limit window (inin-ratelimit-count).",
            labels=("host",),
        )
        reset = GaugeMetricFamily(
            reset_name,
            "Seconds until the rate-limit window starts again (inin-ratelimit-reset).",
            labels=("host",),
        )
        if samples:
            for window in self._windows.read():
                if window.allowed is not None:
                    allowed.add_metric((window.host,), window.allowed)
                if window.used is not None:
                    used.add_metric((window.host,), window.used)
                if window.reset_s is not None:
                    reset.add_metric((window.host,), window.reset_s)
        return [allowed, used, reset]


class FlowMetrics:
    """The Prometheus instruments flowscope writes to, registered as one collector.

    Label values are cleaned (cut to 128 characters, control characters replaced by ``_``, an
    empty value becomes ``__none__``) and the ``flow``, ``field``, ``error_code`` and ``host``
    labels are bounded: the first ``max_flows`` / ``max_fields`` / ``max_error_codes`` /
    ``max_hosts`` distinct values are kept, later ones are folded into ``__other__`` and every
    fold counts in ``flowscope_label_overflow_total{label=...}``. The sentinels ``__none__``,
    ``__missing__``, ``__unknown__`` and ``__other__`` never use up a slot. An error response
    without an error code counts with ``error_code="__none__"``; ``method`` outside the
    standard HTTP methods is ``_OTHER``, as in OpenTelemetry's HTTP conventions.

    When a call's span is sampled, the requests, errors and transport-error counters and the
    two histograms carry a ``trace_id`` / ``span_id`` exemplar, visible in the OpenMetrics
    exposition (the per-field counter does not: the error counter already links the trace). In
    prometheus-client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set) exemplars are not
    supported, so none are attached; the metrics themselves work as usual.

    No ``_created`` series are exported: Prometheus stores each as a series of its own, which
    would double every counter's share of the series budget (see the README) for a value no
    dashboard or rule reads.

    Only one instance may write to a registry (two would export duplicate series): the
    constructor raises ``ValueError`` when the registry already holds flowscope's metrics, and
    :meth:`for_registry` returns the existing instance instead.
    """

    registry: CollectorRegistry

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        max_flows: int = DEFAULT_MAX_FLOWS,
        max_fields: int = DEFAULT_MAX_FIELDS,
        max_error_codes: int = DEFAULT_MAX_ERROR_CODES,
        max_hosts: int = DEFAULT_MAX_HOSTS,
        namespace: str = "flowscope",
    ) -> None:
        self.registry = REGISTRY if registry is None else registry
        self.namespace = namespace
        self._bounds = LabelBounds(
            max_flows=max_flows,
            max_fields=max_fields,
            max_error_codes=max_error_codes,
            max_hosts=max_hosts,
            on_overflow=self._overflowed,
        )
        self._exemplars = not _multiprocess_mode()
        # Label children by (instrument, values): one dict lookup instead of ``labels()``'s
        # validation and lock on every call. As bounded as the series themselves.
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

        def counter(name: str, doc: str, labels: tuple[str, ...]) -> Counter:
            return Counter(_short(name), doc, labels, namespace=namespace, registry=None)

        def histogram(
            name: str, doc: str, labels: tuple[str, ...], buckets: tuple[float, ...]
        ) -> Histogram:
            return Histogram(
                _short(name), doc, labels, namespace=namespace, registry=None, buckets=buckets
            )

        self._requests = counter(
            metric_names.REQUESTS,
            "Flow calls that got a response, by HTTP status code.",
            ("flow", "operation", "method", "status_code"),
        )
        self._duration = histogram(
            metric_names.DURATION,
            "Duration of flow calls, including those that failed without a response.",
            ("flow",),
            DURATION_BUCKETS,
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
        self._retry_after = histogram(
            metric_names.RETRY_AFTER,
            "Retry-After of 429 Too Many Requests answers, in seconds.",
            ("flow", "operation"),
            RETRY_AFTER_BUCKETS,
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
        self._windows = RateLimitWindows()
        self._ratelimits = _RateLimitGauges(namespace, self._windows)
        self._executions = counter(
            metric_names.EXECUTIONS,
            "Flow executions by outcome, each counted once, when first seen in a terminal status "
            "(__unobserved__: a launch forgotten before its outcome was seen).",
            ("flow", "status", "error_code"),
        )
        self._execution_duration = histogram(
            metric_names.EXECUTION_DURATION,
            "dateCompleted - dateLaunched of each flow execution, observed once.",
            ("flow", "status"),
            EXECUTION_DURATION_BUCKETS,
        )
        self._in_flight = Gauge(
            _short(metric_names.EXECUTIONS_IN_FLIGHT),
            "Executions launched through this process whose outcome is not seen yet.",
            ("flow",),
            namespace=namespace,
            registry=None,
        )
        self._follow_dropped = counter(
            metric_names.FOLLOW_DROPPED,
            "Launches follow_executions did not follow to an outcome: queue_full (no room to "
            "follow it), timeout (no outcome within follow_timeout_s), gone (the execution "
            "answered 404).",
            ("reason",),
        )
        self._instruments: tuple[Counter | Histogram | Gauge, ...] = (
            self._requests,
            self._duration,
            self._errors,
            self._error_fields,
            self._transport_errors,
            self._retry_after,
            self._overflow,
            self._internal_errors,
            self._executions,
            self._execution_duration,
            self._in_flight,
            self._follow_dropped,
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
        max_flows: int = DEFAULT_MAX_FLOWS,
        max_fields: int = DEFAULT_MAX_FIELDS,
        max_error_codes: int = DEFAULT_MAX_ERROR_CODES,
        max_hosts: int = DEFAULT_MAX_HOSTS,
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
                max_hosts=max_hosts,
                namespace=namespace,
            )

    def observe(self, record: CallRecord) -> None:
        """Count one call in every metric it touches."""
        labels = self._bounds.of(record)
        flow = labels.flow
        operation = labels.operation
        sample_exemplar = exemplar(record) if self._exemplars else None

        if labels.status_code is None:
            exception = labels.exception or UNKNOWN
            self._child(self._transport_errors, flow, operation, exception).inc(1, sample_exemplar)
        else:
            status = labels.status_code
            self._child(self._requests, flow, operation, labels.method, status).inc(
                1, sample_exemplar
            )
            if labels.error_code is not None:
                self._child(self._errors, flow, operation, status, labels.error_code).inc(
                    1, sample_exemplar
                )
                # No exemplar: a field's trace is the error's, already linked from the two
                # counters above, and one error may name a hundred fields.
                for field in labels.fields:
                    self._child(self._error_fields, flow, operation, field).inc()

        duration = record.duration_s
        if duration >= 0:  # also false for NaN, which would poison the histogram's sum
            self._child(self._duration, flow).observe(duration, sample_exemplar)
        retry_after = record.retry_after_s
        if retry_after is not None:
            self._child(self._retry_after, flow, operation).observe(retry_after, sample_exemplar)
        if labels.host is not None and record.ratelimit is not None:
            self._windows.update(labels.host, record.ratelimit)
        if record.execution_tracked:
            self._child(self._in_flight, flow).inc()
        if record.execution is not None and record.execution.counted:
            self._execution_outcome(record, flow)
        for label in record.unobserved:
            lost = self._bounds.flow(label)
            self._child(self._executions, lost, UNOBSERVED, NONE).inc()
            self._child(self._in_flight, lost).dec()

    def _execution_outcome(self, record: CallRecord, flow: str) -> None:
        """Count an execution's outcome: the one record per execution that says ``counted``."""
        execution = record.execution
        assert execution is not None
        status = clean(execution.status)
        code = self._bounds.error_code(execution.error_code or NONE)
        sample_exemplar = None
        if self._exemplars:
            # The launch's trace: the one to open when an execution failed or took long.
            sample_exemplar = ids_exemplar(execution.launch_trace_id, execution.launch_span_id)
            sample_exemplar = sample_exemplar or exemplar(record)
        self._child(self._executions, flow, status, code).inc(1, sample_exemplar)
        seconds = execution.duration_s
        if seconds is not None and seconds >= 0:
            self._child(self._execution_duration, flow, status).observe(seconds, sample_exemplar)
        if execution.launched_here:
            self._child(self._in_flight, flow).dec()

    def follow_dropped(self, reason: str) -> None:
        """Count a launch the follower gave up on (``queue_full``, ``timeout``, ``gone``)."""
        self._child(self._follow_dropped, clean(reason)).inc()

    def internal_error(self, stage: str) -> None:
        """Count an error flowscope caught in itself at ``stage`` (e.g. ``metrics``, ``span``)."""
        self._internal_errors.labels(clean(stage)).inc()

    def describe(self) -> Iterable[prometheus_client.Metric]:
        """The metric families, without samples; lets the registry detect name clashes."""
        for instrument in self._instruments:
            yield from instrument.describe()
        yield from self._ratelimits.families(samples=False)

    def collect(self) -> Iterable[prometheus_client.Metric]:
        """The metric families with their samples, as a registry scrapes them."""
        for instrument in self._instruments:
            for family in instrument.collect():
                family.samples = [s for s in family.samples if not s.name.endswith("_created")]
                yield family
        yield from self._ratelimits.families()

    def _child(self, instrument: Counter | Histogram | Gauge, *labels: str) -> Any:
        key = (id(instrument), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = instrument.labels(*labels)
        return child

    def _overflowed(self, label: str) -> None:
        self._child(self._overflow, label).inc()


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

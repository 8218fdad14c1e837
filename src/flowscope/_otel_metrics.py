"""The metrics sink for OpenTelemetry: the same facts as ``FlowMetrics``, through a
``MeterProvider`` (OTLP to a Collector, or to a vendor).

Instrument names follow OpenTelemetry's dotted style (``flowscope.requests``); their attributes
are the Prometheus labels, with the same values and the same bounds (``_labels.LabelBounds``).
An exporter that turns them back into Prometheus series (the Collector's ``prometheus``
exporter) gives the same series as :class:`flowscope.FlowMetrics`, with the same budget.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from opentelemetry import metrics
from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    TraceFlags,
    set_span_in_context,
)

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

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider

__all__ = ["OTelFlowMetrics"]

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


def _trace_context(record: CallRecord) -> Context | None:
    """A context holding the call's span, so the SDK's exemplars link to its trace.

    Built from the record rather than taken from the current context: the record is what this
    sink formats, and its ids are those the Prometheus exemplars quote.
    """
    return _ids_context(exemplar(record))


def _ids_context(ids: dict[str, str] | None) -> Context | None:
    if ids is None or "span_id" not in ids:
        return None
    span_context = SpanContext(
        trace_id=int(ids["trace_id"], 16),
        span_id=int(ids["span_id"], 16),
        is_remote=False,
        trace_flags=_SAMPLED,
    )
    return set_span_in_context(NonRecordingSpan(span_context))


class OTelFlowMetrics:
    """flowscope's metrics as OpenTelemetry instruments; pass it as ``metrics=`` to
    :func:`flowscope.instrument`.

    Without ``meter_provider`` the global one is used (``setup_metrics`` sets it). Instruments:

    - ``flowscope.requests`` (counter; ``flow``, ``operation``, ``method``, ``status_code``)
    - ``flowscope.request.duration`` (histogram, s; ``flow``), with the Prometheus histogram's
      bucket boundaries as advice
    - ``flowscope.errors`` (counter; ``flow``, ``operation``, ``status_code``, ``error_code``)
    - ``flowscope.error.fields`` (counter; ``flow``, ``operation``, ``field``)
    - ``flowscope.transport.errors`` (counter; ``flow``, ``operation``, ``exception``)
    - ``flowscope.retry_after`` (histogram, s; ``flow``, ``operation``): a 429's Retry-After
    - ``flowscope.ratelimit.allowed``, ``flowscope.ratelimit.used``,
      ``flowscope.ratelimit.reset`` (gauges; ``host``)
    - ``flowscope.executions`` (counter; ``flow``, ``status``, ``error_code``): each execution
      once, when first seen in a terminal status (``__unobserved__``: forgotten without one)
    - ``flowscope.execution.duration`` (histogram, s; ``flow``, ``status``), exemplar: the
      launch's trace
    - ``flowscope.executions.in_flight`` (up-down counter; ``flow``),
      ``flowscope.follow.dropped`` (counter; ``reason``)
    - ``flowscope.label.overflow`` (counter; ``label``), ``flowscope.internal.errors``
      (counter; ``stage``)

    Measurements are made in the context of the call's span, so an SDK with exemplars on (its
    default, trace-based filter) attaches the call's trace and span ids to them.
    """

    def __init__(
        self,
        meter_provider: MeterProvider | None = None,
        *,
        max_flows: int = DEFAULT_MAX_FLOWS,
        max_fields: int = DEFAULT_MAX_FIELDS,
        max_error_codes: int = DEFAULT_MAX_ERROR_CODES,
        max_hosts: int = DEFAULT_MAX_HOSTS,
    ) -> None:
        from . import __version__

        provider = meter_provider or metrics.get_meter_provider()
        meter = provider.get_meter("flowscope", __version__)
        self._bounds = LabelBounds(
            max_flows=max_flows,
            max_fields=max_fields,
            max_error_codes=max_error_codes,
            max_hosts=max_hosts,
            on_overflow=self._overflowed,
        )
        self._windows = RateLimitWindows()
        self._requests = meter.create_counter(
            "flowscope.requests", "{request}", "Flow calls that got a response."
        )
        self._duration = meter.create_histogram(
            "flowscope.request.duration",
            "s",
            "Duration of flow calls, including those that failed without a response.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._errors = meter.create_counter(
            "flowscope.errors", "{request}", "Flow calls answered with status >= 400."
        )
        self._error_fields = meter.create_counter(
            "flowscope.error.fields", "{field}", "Fields named by error responses."
        )
        self._transport_errors = meter.create_counter(
            "flowscope.transport.errors", "{request}", "Flow calls that got no response."
        )
        self._retry_after = meter.create_histogram(
            "flowscope.retry_after",
            "s",
            "Retry-After of 429 Too Many Requests answers.",
            explicit_bucket_boundaries_advisory=RETRY_AFTER_BUCKETS,
        )
        self._executions = meter.create_counter(
            "flowscope.executions",
            "{execution}",
            "Flow executions by outcome, each counted once, when first seen in a terminal status.",
        )
        self._execution_duration = meter.create_histogram(
            "flowscope.execution.duration",
            "s",
            "dateCompleted - dateLaunched of each flow execution, recorded once.",
            explicit_bucket_boundaries_advisory=EXECUTION_DURATION_BUCKETS,
        )
        self._in_flight = meter.create_up_down_counter(
            "flowscope.executions.in_flight",
            "{execution}",
            "Executions launched through this process whose outcome is not seen yet.",
        )
        self._follow_dropped = meter.create_counter(
            "flowscope.follow.dropped",
            "{execution}",
            "Launches follow_executions did not follow to an outcome.",
        )
        self._overflow = meter.create_counter(
            "flowscope.label.overflow",
            "{value}",
            "Label values folded into __other__ because their label reached its limit.",
        )
        self._internal_errors = meter.create_counter(
            "flowscope.internal.errors",
            "{error}",
            "Errors inside flowscope itself; the instrumented call was unaffected.",
        )
        for name, field, description in (
            ("allowed", "allowed", "Requests allowed per rate-limit window."),
            ("used", "used", "Requests counted in the current rate-limit window."),
            ("reset", "reset_s", "Seconds until the rate-limit window starts again."),
        ):
            meter.create_observable_gauge(
                f"flowscope.ratelimit.{name}",
                [self._gauge(field)],
                "s" if name == "reset" else "{request}",
                description,
            )

    def observe(self, record: CallRecord) -> None:
        """Record one call in every instrument it touches."""
        labels = self._bounds.of(record)
        context = _trace_context(record)
        flow, operation = labels.flow, labels.operation
        if labels.status_code is None:
            attributes = {
                "flow": flow,
                "operation": operation,
                "exception": labels.exception or UNKNOWN,
            }
            self._transport_errors.add(1, attributes, context)
        else:
            status = labels.status_code
            attributes = {
                "flow": flow,
                "operation": operation,
                "method": labels.method,
                "status_code": status,
            }
            self._requests.add(1, attributes, context)
            if labels.error_code is not None:
                attributes = {
                    "flow": flow,
                    "operation": operation,
                    "status_code": status,
                    "error_code": labels.error_code,
                }
                self._errors.add(1, attributes, context)
                for field in labels.fields:
                    attributes = {"flow": flow, "operation": operation, "field": field}
                    self._error_fields.add(1, attributes)
        duration = record.duration_s
        if duration >= 0:  # also false for NaN
            self._duration.record(duration, {"flow": flow}, context)
        if record.retry_after_s is not None:
            attributes = {"flow": flow, "operation": operation}
            self._retry_after.record(record.retry_after_s, attributes, context)
        if labels.host is not None and record.ratelimit is not None:
            self._windows.update(labels.host, record.ratelimit)
        if record.execution_tracked:
            self._in_flight.add(1, {"flow": flow})
        execution = record.execution
        if execution is not None and execution.counted:
            status = clean(execution.status)
            code = self._bounds.error_code(execution.error_code or NONE)
            # The launch's trace: the one to open when an execution failed or took long.
            launch = _ids_context(
                ids_exemplar(execution.launch_trace_id, execution.launch_span_id)
            )
            outcome = {"flow": flow, "status": status, "error_code": code}
            self._executions.add(1, outcome, launch or context)
            if execution.duration_s is not None and execution.duration_s >= 0:
                attributes = {"flow": flow, "status": status}
                self._execution_duration.record(execution.duration_s, attributes, launch or context)
            if execution.launched_here:
                self._in_flight.add(-1, {"flow": flow})
        for label in record.unobserved:
            lost = self._bounds.flow(label)
            self._executions.add(1, {"flow": lost, "status": UNOBSERVED, "error_code": NONE})
            self._in_flight.add(-1, {"flow": lost})

    def follow_dropped(self, reason: str) -> None:
        """Count a launch the follower gave up on (``queue_full``, ``timeout``, ``gone``)."""
        self._follow_dropped.add(1, {"reason": clean(reason)})

    def internal_error(self, stage: str) -> None:
        """Count an error flowscope caught in itself at ``stage``."""
        self._internal_errors.add(1, {"stage": clean(stage)})

    def _overflowed(self, label: str) -> None:
        self._overflow.add(1, {"label": label})

    def _gauge(self, field: str) -> metrics.CallbackT:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            for window in self._windows.read():
                value = getattr(window, field)
                if value is not None:
                    yield Observation(value, {"host": window.host})

        return observe

"""The label values of one call record, cleaned and bounded: shared by every metrics sink.

The Prometheus sink (``_metrics.FlowMetrics``) and the OpenTelemetry one
(``_otel_metrics.OTelFlowMetrics``) label the same facts with the same values; both take them
from :class:`LabelBounds`, so a bound or a cleaning rule lives in one place. Pure Python: no
prometheus-client, no OpenTelemetry.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ._record import CallRecord, RateLimit
from ._vocabulary import MAX_SHOWN_CHARS, NONE, OTHER, SENTINELS, UNKNOWN, printable

__all__ = [
    "DEFAULT_MAX_ERROR_CODES",
    "DEFAULT_MAX_FIELDS",
    "DEFAULT_MAX_FLOWS",
    "DEFAULT_MAX_HOSTS",
    "DURATION_BUCKETS",
    "EXECUTION_DURATION_BUCKETS",
    "RETRY_AFTER_BUCKETS",
    "HostWindow",
    "LabelBounds",
    "Labels",
    "MetricsSink",
    "RateLimitWindows",
    "clean",
    "exemplar",
    "ids_exemplar",
]

DEFAULT_MAX_FLOWS = 200
DEFAULT_MAX_FIELDS = 100
DEFAULT_MAX_ERROR_CODES = 100
#: Genesys has 17 regions, each with an API host and a login host.
DEFAULT_MAX_HOSTS = 40

#: OpenTelemetry's recommended buckets for ``http.client.request.duration``.
# fmt: off
DURATION_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)
# fmt: on

#: ``Retry-After`` is whole seconds until the platform's one-minute window starts again.
RETRY_AFTER_BUCKETS: tuple[float, ...] = (1.0, 5.0, 15.0, 30.0, 60.0)
#: Executions run for seconds to minutes; following gives up after ten by default.
# fmt: off
EXECUTION_DURATION_BUCKETS: tuple[float, ...] = (
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
)
# fmt: on

#: The methods OpenTelemetry's HTTP conventions know; anything else is ``_OTHER``.
_KNOWN_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}
)

_TRACE_ID = re.compile(r"[0-9a-f]{32}")
_SPAN_ID = re.compile(r"[0-9a-f]{16}")


class MetricsSink(Protocol):
    """What ``instrument(client, metrics=...)`` takes: :class:`flowscope.FlowMetrics`
    (Prometheus), :class:`flowscope.OTelFlowMetrics` (OpenTelemetry), or your own."""

    def observe(self, record: CallRecord) -> None:
        """Count one flow call."""

    def internal_error(self, stage: str) -> None:
        """Count an error flowscope caught in itself at ``stage``."""

    def follow_dropped(self, reason: str) -> None:
        """Count a launch ``follow_executions`` gave up on (``queue_full``, ``timeout``...)."""


def clean(value: str) -> str:
    """Make ``value`` safe as a label value.

    Control characters and lone surrogates would break the exposition (or its UTF-8 encoding),
    and an unbounded length would let one request bloat every scrape.
    """
    return printable(value, MAX_SHOWN_CHARS) or NONE


def _method(method: str) -> str:
    return method if method in _KNOWN_METHODS else "_OTHER"


def _status(status_code: int) -> str:
    # HTTP/1.1 status codes have three digits; anything else would be an unbounded label.
    return str(status_code) if 100 <= status_code <= 999 else OTHER


def exemplar(record: CallRecord) -> dict[str, str] | None:
    """The exemplar linking a sample to its trace, or ``None`` when there is no sampled span."""
    return ids_exemplar(record.trace_id, record.span_id)


def ids_exemplar(trace_id: str | None, span_id: str | None) -> dict[str, str] | None:
    """The exemplar for these span ids; ``None`` when there is no (well-formed) trace id.

    Malformed ids are dropped rather than passed on: prometheus-client raises on exemplars over
    128 characters, and a metrics sink must never fail the call it describes.
    """
    if trace_id is None or not _TRACE_ID.fullmatch(trace_id):
        return None
    if span_id is not None and _SPAN_ID.fullmatch(span_id):
        return {"trace_id": trace_id, "span_id": span_id}
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


@dataclass(frozen=True, slots=True)
class Labels:
    """One record's label values; ``None`` where the record has no such fact."""

    flow: str
    operation: str
    method: str
    #: ``None`` for a call that got no response.
    status_code: str | None
    outcome: str
    #: Only for answers with status >= 400 (``__none__`` when the body named no code).
    error_code: str | None
    fields: tuple[str, ...]
    #: Only for a call that got no response.
    exception: str | None
    #: Only when the response carried rate-limit headers.
    host: str | None


class LabelBounds:
    """Cleans a record's values into label values and keeps the bounded labels bounded.

    The first ``max_flows`` / ``max_fields`` / ``max_error_codes`` / ``max_hosts`` distinct
    values of ``flow``, ``field``, ``error_code`` and ``host`` are kept; later ones become
    ``__other__`` and ``on_overflow(label)`` hears of each fold. The sentinels never use up a
    slot.
    """

    def __init__(
        self,
        *,
        max_flows: int = DEFAULT_MAX_FLOWS,
        max_fields: int = DEFAULT_MAX_FIELDS,
        max_error_codes: int = DEFAULT_MAX_ERROR_CODES,
        max_hosts: int = DEFAULT_MAX_HOSTS,
        on_overflow: Callable[[str], None],
    ) -> None:
        self._flows = _BoundedValues(max_flows)
        self._fields = _BoundedValues(max_fields)
        self._error_codes = _BoundedValues(max_error_codes)
        self._hosts = _BoundedValues(max_hosts)
        self._on_overflow = on_overflow

    def of(self, record: CallRecord) -> Labels:
        """The label values of ``record``; bounded labels count against their limits here."""
        flow = self._bounded(self._flows, "flow", clean(record.flow_label))
        status_code = record.status_code
        error_code: str | None = None
        fields: tuple[str, ...] = ()
        if status_code is not None and status_code >= 400:
            error_code = self._bounded(
                self._error_codes, "error_code", clean(record.error_code or NONE)
            )
            fields = tuple(
                self._bounded(self._fields, "field", clean(name)) for name in record.error_fields
            )
        host = None
        if record.ratelimit is not None and record.host:
            host = self._bounded(self._hosts, "host", clean(record.host))
        return Labels(
            flow=flow,
            operation=clean(record.operation),
            method=_method(record.method),
            status_code=_status(status_code) if status_code is not None else None,
            outcome=clean(record.outcome),
            error_code=error_code,
            fields=fields,
            exception=clean(record.exception_type or UNKNOWN) if status_code is None else None,
            host=host,
        )

    def flow(self, value: str) -> str:
        """A ``flow`` label value, cleaned and counted against its bound."""
        return self._bounded(self._flows, "flow", clean(value))

    def error_code(self, value: str) -> str:
        """An ``error_code`` label value, cleaned and counted against its bound."""
        return self._bounded(self._error_codes, "error_code", clean(value))

    def _bounded(self, values: _BoundedValues, label: str, value: str) -> str:
        if values.admit(value):
            return value
        self._on_overflow(label)
        return OTHER


@dataclass(frozen=True, slots=True)
class HostWindow:
    """A host's rate-limit window as it reads now; ``None`` where no header said."""

    host: str
    allowed: int | None
    used: int | None
    reset_s: float | None


@dataclass
class _Window:
    allowed: int | None = None
    count: int | None = None
    #: ``clock()`` at which the window starts again, when a response said.
    reset_at: float | None = None


class RateLimitWindows:
    """The last rate-limit headers seen per host, read when the metrics are collected.

    Once the window the headers described has started again, ``used`` reads 0 and ``reset_s``
    0: an idle process does not report (and alert on) a nearly spent budget for ever.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()

    def update(self, host: str, limits: RateLimit) -> None:
        """Note what one response said; a header it lacked keeps its last value."""
        now = self._clock()
        with self._lock:
            window = self._windows.setdefault(host, _Window())
            if limits.allowed is not None:
                window.allowed = limits.allowed
            if limits.count is not None:
                window.count = limits.count
            if limits.reset_s is not None:
                window.reset_at = now + limits.reset_s

    def read(self) -> list[HostWindow]:
        """Every host's window as of now."""
        now = self._clock()
        with self._lock:
            windows = [(host, w.allowed, w.count, w.reset_at) for host, w in self._windows.items()]
        out = []
        for host, allowed, count, reset_at in windows:
            left = None if reset_at is None else max(reset_at - now, 0.0)
            used = count if count is None or left is None or left > 0 else 0
            out.append(HostWindow(host, allowed, used, left))
        return out

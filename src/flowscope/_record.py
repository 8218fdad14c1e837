"""The per-call record: built once, redacted once, then only formatted by each sink."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ._hints import Hint

__all__ = ["CallRecord", "CapturedBody", "ExecutionOutcome", "RateLimit", "RecordedError"]


@dataclass(frozen=True)
class CapturedBody:
    """A body as it may be shown: decoded, redacted and cut to the capture limit."""

    text: str
    size: int  # bytes before cutting (decoded size when known, else what was seen)
    truncated: bool
    content_type: str


@dataclass(frozen=True)
class RecordedError:
    """What an error response said, redacted: the parsed :class:`ErrorReport` minus its raw text.

    The body itself, redacted, is the record's ``response_body``.
    """

    #: ``genesys``, ``oauth``, ``problem``, ``json``, ``text``, ``html``, ``empty``, ``binary``
    #: or ``malformed``, as :func:`flowscope.parse_error_body` classified the body.
    kind: str
    code: str | None = None
    message: str | None = None
    fields: tuple[str, ...] = ()
    message_params: Mapping[str, str] = field(default_factory=dict)
    retry_after: str | None = None


@dataclass(frozen=True)
class RateLimit:
    """The platform's ``inin-ratelimit-*`` response headers, each ``None`` when absent.

    They describe the caller's budget on the API host, not the flow: every call to that host
    spends from the same window.
    """

    #: ``inin-ratelimit-allowed``: requests allowed in the current window.
    allowed: int | None = None
    #: ``inin-ratelimit-count``: requests already counted in it.
    count: int | None = None
    #: ``inin-ratelimit-reset``: seconds until the window starts again.
    reset_s: float | None = None


@dataclass(frozen=True)
class ExecutionOutcome:
    """What a ``GET /api/v2/flows/executions/{id}`` response said about the execution, redacted.

    ``counted`` is true on the one record that counts this outcome in
    ``flowscope_executions_total``: the first that showed it in a terminal status.
    """

    #: ``RUNNING``, ``COMPLETED``, ``FAILED``, ``ERROR``, ``TERMINATED`` or ``UNKNOWN``.
    status: str
    terminal: bool
    counted: bool
    completion_reason: str | None = None
    #: ``flowErrorInfo``, parsed like any error body; its redacted text is ``error_body``.
    error: RecordedError | None = None
    error_body: str | None = None
    #: ``dateCompleted - dateLaunched`` in seconds, when both are shown.
    duration_s: float | None = None
    #: Whether the launch went through this process; then the ids of its span, when sampled.
    launched_here: bool = False
    launch_trace_id: str | None = None
    launch_span_id: str | None = None

    @property
    def error_code(self) -> str | None:
        return self.error.code if self.error is not None else None


@dataclass(frozen=True)
class CallRecord:
    """Everything flowscope learned about one flow call. All values are already redacted."""

    operation: str
    template: str
    method: str
    #: The flow id, or a sentinel: ``__missing__`` (launch without flowId), ``__unknown__``,
    #: ``__none__`` (token calls).
    flow_id: str
    #: ``flow_names[flow_id]`` when configured.
    flow_name: str | None
    flow_version: str | None
    execution_id: str | None
    url: str
    #: ``None`` when the transport raised.
    status_code: int | None
    #: ``success``, ``client_error``, ``server_error`` or ``transport_error``.
    outcome: str
    duration_s: float
    error: RecordedError | None = None
    exception_type: str | None = None
    exception_message: str | None = None
    #: The exception's module-qualified type (``httpx.ConnectError``) and its traceback,
    #: redacted like its message: what the span's ``exception`` event shows.
    exception_class: str | None = None
    exception_stacktrace: str | None = None
    correlation_id: str | None = None
    hints: tuple[Hint, ...] = ()
    redacted_paths: tuple[str, ...] = ()
    request_body: CapturedBody | None = None
    response_body: CapturedBody | None = None
    trace_id: str | None = None  # 32 hex digits, only when the span is sampled
    span_id: str | None = None
    #: The host the call went to (``api.mypurecloud.com``), as in the URL.
    host: str | None = None
    #: The rate-limit headers of the response, when it carried any.
    ratelimit: RateLimit | None = None
    #: A 429's ``Retry-After``, in seconds (an HTTP date is turned into the seconds left).
    retry_after_s: float | None = None
    #: The execution's outcome, on a get_execution call whose response showed a status.
    execution: ExecutionOutcome | None = None
    #: A launch whose execution is now remembered until its outcome is seen.
    execution_tracked: bool = False
    #: ``flow`` labels of launches forgotten (by count or age) before their outcome was seen.
    unobserved: tuple[str, ...] = ()

    @property
    def flow_label(self) -> str:
        """The value of the ``flow`` metric label before bounding: the name, else the id."""
        return self.flow_name or self.flow_id

    @property
    def error_code(self) -> str | None:
        return self.error.code if self.error is not None else None

    @property
    def error_fields(self) -> tuple[str, ...]:
        return self.error.fields if self.error is not None else ()

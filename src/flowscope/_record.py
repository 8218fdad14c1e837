"""The per-call record: built once, redacted once, then only formatted by each sink."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ._hints import Hint

__all__ = ["CallRecord", "CapturedBody", "RecordedError"]


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
    correlation_id: str | None = None
    hints: tuple[Hint, ...] = ()
    redacted_paths: tuple[str, ...] = ()
    request_body: CapturedBody | None = None
    response_body: CapturedBody | None = None
    trace_id: str | None = None  # 32 hex digits, only when the span is sampled
    span_id: str | None = None

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

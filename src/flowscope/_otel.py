"""Everything OpenTelemetry: the call's span, from the hooks to the last attribute.

flowscope builds on ``opentelemetry-instrumentation-httpx``: its transport opens one CLIENT span
per call and runs flowscope's inner layer inside it, so there the call's span is simply the
current span (:func:`call_span`). This module holds all that touches spans:

- :func:`write_span`, the span sink: the record's attributes and events on the call's span;
- the response hook, which sets the span status from the record riding on the response
  (``response.extensions``), after the instrumentation has set its own, and takes it off again
  (with the call's redaction, which removes the request's secrets from captured headers);
- the request hook, which marks resends;
- :class:`GuardedTracerProvider`: the instrumentation writes some values on its own, outside
  flowscope's record: ``url.full`` when the span starts, the headers named by
  ``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_*`` (with no default sanitize list), and the
  exception event and status of a failed call (``str(exc)`` and the traceback). Its tracer
  redacts those the same way as everything else (a flow call's exception event and status are
  written by :func:`write_span` from its record instead), and keeps a broken ``TracerProvider``
  (one whose processors raise) from failing the call it traces;
- :func:`opentelemetry_transport`, which builds the instrumentation's transport with all of the
  above and the stable HTTP attribute names.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

import httpx
from opentelemetry import trace
from opentelemetry.instrumentation.httpx import (
    AsyncOpenTelemetryTransport,
    SyncOpenTelemetryTransport,
)
from opentelemetry.instrumentation.utils import is_http_instrumentation_enabled
from opentelemetry.trace import (
    INVALID_SPAN,
    NoOpTracer,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)

from ._record import CallRecord, CapturedBody, ExecutionOutcome
from ._sinks import body_dict, status_description

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.util import types

    from ._redact import CallRedaction, Redactor

__all__ = [
    "RECORD_EXTENSION",
    "REDACTION_EXTENSION",
    "RESEND_COUNT_EXTENSION",
    "GuardedTracerProvider",
    "call_span",
    "captures_headers",
    "opentelemetry_transport",
    "redact_captured_headers",
    "trace_ids",
    "write_span",
]

logger = logging.getLogger("flowscope")

#: Request extension a retrying client sets on a resend (1, 2...), so each attempt's span says so.
RESEND_COUNT_EXTENSION = "flowscope.resend_count"
#: Response extension carrying the call's record from the inner layer to the response hook.
RECORD_EXTENSION = "flowscope.record"
#: Response extension carrying the call's redaction to the response hook, for the headers the
#: instrumentation captured (only while header capture is on).
REDACTION_EXTENSION = "flowscope.redaction"
#: The attribute that tells a span flowscope wrote (its exception event included).
_WRITTEN = "flow.operation"

OnError = Callable[[str, BaseException], None]

# -- the call's span -----------------------------------------------------------------------------


def call_span() -> Span | None:
    """The recording span of the call in flight, inside the OpenTelemetry transport; else None.

    With HTTP instrumentation suppressed the transport opens no span, and the current span is
    someone else's.
    """
    if not is_http_instrumentation_enabled():
        return None
    span = trace.get_current_span()
    return span if span.is_recording() else None


def trace_ids(span: Span | None) -> tuple[str, str] | None:
    """``(trace id, span id)`` in hex when ``span`` is sampled: what exemplars and logs quote."""
    if span is None:
        return None
    ctx = span.get_span_context()
    if not ctx.trace_flags.sampled:
        return None
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"


def write_span(record: CallRecord) -> None:
    """The span sink: the record's attributes and events on the call's own CLIENT span.

    The attributes are those in the README's first table; the status is set later, by the
    response hook.
    """
    span = call_span()
    if span is None:
        return
    attrs: dict[str, Any] = {
        "url.full": record.url,
        "url.template": record.template,
        "flow.operation": record.operation,
        "flow.id": record.flow_id,
    }
    if record.flow_name is not None:
        attrs["flow.name"] = record.flow_name
    if record.flow_version is not None:
        attrs["flow.version"] = record.flow_version
    if record.execution_id is not None:
        attrs["flow.execution.id"] = record.execution_id
    if record.correlation_id is not None:
        attrs["genesys.correlation_id"] = record.correlation_id
    error = record.error
    if error is not None:
        if error.code is not None:
            attrs["flow.error.code"] = error.code
        if error.message is not None:
            attrs["flow.error.message"] = error.message
        if error.fields:
            attrs["flow.error.fields"] = list(error.fields)
    if record.redacted_paths:
        attrs["flowscope.redacted"] = list(dict.fromkeys(record.redacted_paths))
    limits = record.ratelimit
    if limits is not None:
        if limits.allowed is not None:
            attrs["genesys.ratelimit.allowed"] = limits.allowed
        if limits.count is not None:
            attrs["genesys.ratelimit.count"] = limits.count
        if limits.reset_s is not None:
            attrs["genesys.ratelimit.reset"] = limits.reset_s
    if record.retry_after_s is not None:
        attrs["http.response.retry_after_s"] = record.retry_after_s
    if record.execution is not None:
        _execution_attributes(record.execution, attrs)
    span.set_attributes(attrs)
    if record.exception_type is not None:
        _exception_event(span, record)
    if record.execution is not None:
        _execution_events(span, record.execution)
    if record.outcome != "success":
        if record.response_body is not None:
            span.add_event("flow.error.body", _body_attributes(record.response_body))
        if record.request_body is not None:
            span.add_event("flow.request.body", _body_attributes(record.request_body))
    # A failed launch's hints, or a failed execution's that its launch explains.
    for hint in record.hints:
        event = {"hint.code": hint.code, "hint.message": hint.message}
        if hint.field is not None:
            # The same name the log record's ``extra`` uses for it, so a query can join them.
            event["hint.field"] = hint.field
        span.add_event("flow.hint", event)


def _exception_event(span: Span, record: CallRecord) -> None:
    """A transport exception, from the record: its message was redacted with the call's own
    redaction (echoes included), which the tracer's generic handling could not do."""
    span.add_event(
        "exception",
        {
            "exception.type": record.exception_class or record.exception_type or "",
            "exception.message": record.exception_message or "",
            "exception.stacktrace": record.exception_stacktrace or "",
            "exception.escaped": "False",
        },
    )
    span.set_status(Status(StatusCode.ERROR, status_description(record)))


def _execution_attributes(execution: ExecutionOutcome, attrs: dict[str, Any]) -> None:
    attrs["flow.execution.status"] = execution.status
    if execution.completion_reason is not None:
        attrs["flow.execution.completion_reason"] = execution.completion_reason
    if execution.error is not None:
        if execution.error.code is not None:
            attrs["flow.execution.error.code"] = execution.error.code
        if execution.error.message is not None:
            attrs["flow.execution.error.message"] = execution.error.message
    if execution.duration_s is not None:
        attrs["flow.execution.duration_s"] = execution.duration_s


def _execution_events(span: Span, execution: ExecutionOutcome) -> None:
    if execution.error_body is not None:
        span.add_event("flow.execution.error", {"body": execution.error_body})
    link = _launch_link(execution)
    if link is not None:
        # The launch's span ended long ago; a link added now is exported with this span.
        span.add_link(link, {"flow.link": "launch"})


def _launch_link(execution: ExecutionOutcome) -> SpanContext | None:
    trace_id, span_id = execution.launch_trace_id, execution.launch_span_id
    if trace_id is None or span_id is None:
        return None
    try:
        return SpanContext(
            int(trace_id, 16), int(span_id, 16), is_remote=False, trace_flags=TraceFlags(1)
        )
    except ValueError:
        return None


# A body event's attribute names for the keys a log record uses.
_BODY_EVENT_KEYS = {
    "text": "body",
    "size": "body.size",
    "truncated": "body.truncated",
    "content_type": "content_type",
}


def _body_attributes(body: CapturedBody) -> dict[str, Any]:
    return {_BODY_EVENT_KEYS[key]: value for key, value in body_dict(body).items()}


# -- hooks given to the OpenTelemetry transport --------------------------------------------------


def _request_hook(span: Span, request: Any) -> None:
    count = (request.extensions or {}).get(RESEND_COUNT_EXTENSION)
    if isinstance(count, int) and count > 0 and span.is_recording():
        span.set_attribute("http.request.resend_count", count)


async def _async_request_hook(span: Span, request: Any) -> None:
    _request_hook(span, request)


def _response_hook(span: Span, request: Any, response: Any, on_error: OnError) -> None:
    # The instrumentation sets the status from the HTTP status code after our layer returns;
    # this hook runs after that. The record leaves the response here: the caller never sees it,
    # nor the call's redaction (which holds the request's secrets).
    extensions = response.extensions
    if extensions is None:
        return
    redaction = extensions.pop(REDACTION_EXTENSION, None)
    record = extensions.pop(RECORD_EXTENSION, None)
    try:
        if redaction is not None:
            # The response headers were captured just before this hook.
            redact_captured_headers(span, redaction)
        if not isinstance(record, CallRecord):
            return
        if record.status_code is not None and record.status_code >= 400 and span.is_recording():
            span.set_status(StatusCode.ERROR, status_description(record))
    except Exception as exc:
        on_error("span", exc)


def _response_hooks(
    on_error: OnError,
) -> tuple[Callable[[Span, Any, Any], None], Callable[[Span, Any, Any], Awaitable[None]]]:
    def hook(span: Span, request: Any, response: Any) -> None:
        _response_hook(span, request, response, on_error)

    async def async_hook(span: Span, request: Any, response: Any) -> None:
        _response_hook(span, request, response, on_error)

    return hook, async_hook


def _stable_semconv(transport: Any) -> None:
    """Use the stable HTTP attribute names (``url.full``...) whatever the global opt-in says."""
    try:
        from opentelemetry.instrumentation._semconv import _report_new, _StabilityMode

        if not _report_new(transport._sem_conv_opt_in_mode):
            transport._sem_conv_opt_in_mode = _StabilityMode.HTTP
    except Exception:  # a future instrumentation may move this; its defaults still work
        logger.debug("could not opt the httpx instrumentation into stable semconv", exc_info=True)


def opentelemetry_transport(
    inner: httpx.BaseTransport | httpx.AsyncBaseTransport,
    tracer_provider: trace.TracerProvider | None,
    redactor: Redactor,
    on_error: OnError,
) -> SyncOpenTelemetryTransport | AsyncOpenTelemetryTransport:
    """The instrumentation's transport around ``inner``, with flowscope's tracer and hooks."""
    provider = GuardedTracerProvider(tracer_provider, redactor, on_error)
    response_hook, async_response_hook = _response_hooks(on_error)
    transport: SyncOpenTelemetryTransport | AsyncOpenTelemetryTransport
    if isinstance(inner, httpx.AsyncBaseTransport):
        transport = AsyncOpenTelemetryTransport(
            inner,
            tracer_provider=provider,
            request_hook=_async_request_hook,
            response_hook=async_response_hook,
        )
    else:
        transport = SyncOpenTelemetryTransport(
            inner,
            tracer_provider=provider,
            request_hook=_request_hook,
            response_hook=response_hook,
        )
    _stable_semconv(transport)
    return transport


# -- the guarded tracer --------------------------------------------------------------------------

_URL_KEYS = ("url.full", "http.url")
_CAPTURE_VARIABLES = (
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST",
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_RESPONSE",
)
_HEADER_PREFIXES = ("http.request.header.", "http.response.header.")


def captures_headers() -> bool:
    """Whether the instrumentation built now captures headers as span attributes."""
    return any(os.environ.get(name, "").strip() for name in _CAPTURE_VARIABLES)


def _header_values(key: str, value: Any, redactor: Redactor | CallRedaction) -> Any:
    # The instrumentation names attributes http.request.header.<name, "-" as "_">.
    name = key.rsplit(".", 1)[1].replace("_", "-")
    header_value = redactor.header_value
    if isinstance(value, str):
        return header_value(name, value)
    return [header_value(name, str(v)) for v in value]


def redact_captured_headers(span: Span | None, redactor: Redactor | CallRedaction) -> None:
    """Redact the header attributes the instrumentation captured on ``span``, in place.

    With a flow call's :class:`CallRedaction`, a header that quotes what the request had
    redacted elsewhere (a body value under a sensitive key) loses that value too.
    """
    if span is None or not span.is_recording():
        return
    attributes = getattr(span, "attributes", None)
    if not isinstance(attributes, Mapping):
        return
    for key, value in list(attributes.items()):
        if key.startswith(_HEADER_PREFIXES):
            redacted = _header_values(key, value, redactor)
            if redacted != (value if isinstance(value, str) else list(value)):
                span.set_attribute(key, redacted)


def _written(span: Span) -> bool:
    """Whether flowscope wrote ``span`` from a record, exception event and status included."""
    attributes = getattr(span, "attributes", None)
    return isinstance(attributes, Mapping) and _WRITTEN in attributes


class GuardedTracerProvider(trace.TracerProvider):
    """Wraps ``provider`` (default: the global one, resolved when the tracer is asked for)."""

    def __init__(
        self, provider: trace.TracerProvider | None, redactor: Redactor, on_error: OnError
    ) -> None:
        self._provider = provider
        self._redactor = redactor
        self._on_error = on_error

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: types.Attributes = None,
    ) -> trace.Tracer:
        provider = self._provider or trace.get_tracer_provider()
        tracer: trace.Tracer
        try:
            tracer = provider.get_tracer(
                instrumenting_module_name, instrumenting_library_version, schema_url, attributes
            )
        except Exception as exc:
            self._on_error("span", exc)
            tracer = NoOpTracer()
        return _GuardedTracer(tracer, self._redactor, self._on_error)


class _GuardedTracer(trace.Tracer):
    def __init__(self, tracer: trace.Tracer, redactor: Redactor, on_error: OnError) -> None:
        self._tracer = tracer
        self._redactor = redactor
        self._on_error = on_error
        # The instrumentation reads these when it is built, as this tracer is: only then can
        # header attributes appear, so only then are ended spans scanned for them.
        self._captures_headers = captures_headers()

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        *args: Any,
        **kwargs: Any,
    ) -> Span:
        # The rest (links, start time, exception handling) passes through as given.
        try:
            return self._tracer.start_span(
                name, context, kind, self._redact_attributes(attributes), *args, **kwargs
            )
        except Exception as exc:
            self._on_error("span", exc)
            return INVALID_SPAN

    @contextmanager
    def start_as_current_span(  # type: ignore[override]
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[trace.Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[Span]:
        manager: AbstractContextManager[Span] | None = None
        try:
            manager = self._tracer.start_as_current_span(
                name,
                context,
                kind,
                self._redact_attributes(attributes),
                links,
                start_time,
                record_exception=False,
                set_status_on_exception=False,
                end_on_exit=end_on_exit,
            )
            span = manager.__enter__()
        except Exception as exc:
            self._on_error("span", exc)
            manager = None
        if manager is None:
            # Outside the except block, so the caller's own exceptions get no __context__.
            # Current, so the inner layer does not take the caller's span for the call's.
            with trace.use_span(INVALID_SPAN, end_on_exit=False):
                yield INVALID_SPAN
            return
        try:
            yield span
        except BaseException as exc:
            if isinstance(exc, Exception) and not _written(span):
                self._record_exception(span, exc, record_exception, set_status_on_exception)
            if self._captures_headers:
                self._scrub_headers(span)
            self._exit(manager, exc)
            raise
        if self._captures_headers:
            self._scrub_headers(span)
        self._exit(manager, None)

    # -- redaction ---------------------------------------------------------------------------

    def _redact_attributes(self, attributes: types.Attributes) -> types.Attributes:
        if not attributes:
            return attributes
        try:
            out = dict(attributes)
            redactor = self._redactor
            for key in _URL_KEYS:
                value = out.get(key)
                if isinstance(value, str):
                    out[key] = redactor.url(value).value
            if self._captures_headers:  # else the instrumentation writes no header attributes
                for key, value in attributes.items():
                    if key.startswith(_HEADER_PREFIXES):
                        out[key] = self._header_values(key, value)
            return out
        except Exception as exc:
            self._on_error("span", exc)
            return {}

    def _header_values(self, key: str, value: Any) -> Any:
        return _header_values(key, value, self._redactor)

    def _scrub_headers(self, span: Span) -> None:
        """Response headers are captured after the call; redact them before the span ends."""
        try:
            redact_captured_headers(span, self._redactor)
        except Exception as exc:
            self._on_error("span", exc)

    def _record_exception(self, span: Span, exc: Exception, record: bool, set_status: bool) -> None:
        try:
            if not span.is_recording():
                return
            text = self._redactor.text
            message = text(str(exc)).value
            if record:
                stack = text("".join(traceback.format_exception(exc))).value
                span.record_exception(
                    exc, {"exception.message": message, "exception.stacktrace": stack}
                )
            if set_status:
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {message}"))
        except Exception as inner:
            self._on_error("span", inner)

    def _exit(self, manager: AbstractContextManager[Span], exc: BaseException | None) -> None:
        """End the span; a processor raising in ``on_end`` must not fail the call."""
        try:
            if exc is None:
                manager.__exit__(None, None, None)
            else:
                manager.__exit__(type(exc), exc, exc.__traceback__)
        except Exception as inner:
            if inner is exc:
                return
            self._on_error("span", inner)

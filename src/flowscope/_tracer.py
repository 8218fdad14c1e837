"""The tracer flowscope hands to the OpenTelemetry httpx transport.

The instrumentation writes some values on its own, outside flowscope's call record: ``url.full``
when the span starts, the headers named by ``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_*`` (with
no default sanitize list), and the exception event and status of a failed call (``str(exc)``
and the traceback). This tracer redacts those the same way as everything else, and keeps a
broken ``TracerProvider`` (one whose processors raise) from failing the call it traces.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, NoOpTracer, Span, SpanKind, Status, StatusCode

from ._engine import CALL_REDACTION

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.util import types

    from ._engine import Engine
    from ._redact import CallRedaction, Redactor

__all__ = ["GuardedTracerProvider"]

_URL_KEYS = ("url.full", "http.url")
_CAPTURE_VARIABLES = (
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST",
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_RESPONSE",
)
_HEADER_PREFIXES = ("http.request.header.", "http.response.header.")


class GuardedTracerProvider(trace.TracerProvider):
    """Wraps ``provider`` (default: the global one, resolved when the tracer is asked for)."""

    def __init__(self, provider: trace.TracerProvider | None, engine: Engine) -> None:
        self._provider = provider
        self._engine = engine

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
            self._engine.internal_error("span", exc)
            tracer = NoOpTracer()
        return _GuardedTracer(tracer, self._engine)


class _GuardedTracer(trace.Tracer):
    def __init__(self, tracer: trace.Tracer, engine: Engine) -> None:
        self._tracer = tracer
        self._engine = engine
        # The instrumentation reads these when it is built, as this tracer is: only then can
        # header attributes appear, so only then are ended spans scanned for them.
        self._captures_headers = any(
            os.environ.get(name, "").strip() for name in _CAPTURE_VARIABLES
        )

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[trace.Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> Span:
        try:
            return self._tracer.start_span(
                name,
                context,
                kind,
                self._redact_attributes(attributes),
                links,
                start_time,
                record_exception,
                set_status_on_exception,
            )
        except Exception as exc:
            self._engine.internal_error("span", exc)
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
            self._engine.internal_error("span", exc)
            manager = None
        if manager is None:
            # Outside the except block, so the caller's own exceptions get no __context__.
            yield INVALID_SPAN
            return
        try:
            yield span
        except BaseException as exc:
            redactor = self._call_redactor()
            if isinstance(exc, Exception):
                self._record_exception(
                    span, exc, record_exception, set_status_on_exception, redactor
                )
            if self._captures_headers:
                self._scrub_headers(span, redactor)
            self._exit(manager, exc)
            raise
        redactor = self._call_redactor()
        if self._captures_headers:
            self._scrub_headers(span, redactor)
        self._exit(manager, None)

    # -- redaction ---------------------------------------------------------------------------

    def _call_redactor(self) -> Redactor | CallRedaction:
        """The redaction of the flow call that just ran, which also removes what its request
        had redacted; the plain redactor for other calls."""
        redaction = CALL_REDACTION.get()
        CALL_REDACTION.set(None)
        return redaction if redaction is not None else self._engine.redactor

    def _redact_attributes(self, attributes: types.Attributes) -> types.Attributes:
        if not attributes:
            return attributes
        try:
            out = dict(attributes)
            redactor = self._engine.redactor
            for key in _URL_KEYS:
                value = out.get(key)
                if isinstance(value, str):
                    out[key] = redactor.url(value).value
            for key, value in attributes.items():
                if key.startswith(_HEADER_PREFIXES):
                    out[key] = self._header_values(key, value, redactor)
            return out
        except Exception as exc:
            self._engine.internal_error("span", exc)
            return {}

    def _header_values(self, key: str, value: Any, redactor: Redactor | CallRedaction) -> Any:
        # The instrumentation names attributes http.request.header.<name, "-" as "_">.
        name = key.rsplit(".", 1)[1].replace("_", "-")
        header_value = redactor.header_value
        if isinstance(value, str):
            return header_value(name, value)
        return [header_value(name, str(v)) for v in value]

    def _scrub_headers(self, span: Span, redactor: Redactor | CallRedaction) -> None:
        """Response headers are captured after the call; redact them before the span ends."""
        try:
            attributes = getattr(span, "attributes", None)
            if not isinstance(attributes, Mapping) or not span.is_recording():
                return
            for key, value in list(attributes.items()):
                if key.startswith(_HEADER_PREFIXES):
                    redacted = self._header_values(key, value, redactor)
                    if redacted != (value if isinstance(value, str) else list(value)):
                        span.set_attribute(key, redacted)
        except Exception as exc:
            self._engine.internal_error("span", exc)

    def _record_exception(
        self,
        span: Span,
        exc: Exception,
        record: bool,
        set_status: bool,
        redactor: Redactor | CallRedaction,
    ) -> None:
        try:
            if not span.is_recording():
                return
            text = redactor.text
            message = text(str(exc)).value
            if record:
                stack = text("".join(traceback.format_exception(exc))).value
                span.record_exception(
                    exc, {"exception.message": message, "exception.stacktrace": stack}
                )
            if set_status:
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {message}"))
        except Exception as inner:
            self._engine.internal_error("span", inner)

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
            self._engine.internal_error("span", inner)

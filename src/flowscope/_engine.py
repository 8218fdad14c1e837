"""From one HTTP exchange to one redacted :class:`CallRecord`, then to every sink.

This module knows nothing about streams: the transports read bytes and hand them over, so the
sync and async transports share everything here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import time
import traceback
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ._codec import decode_content
from ._config import FlowScopeConfig
from ._errors import ErrorReport, parse_error_body
from ._hints import Hint, diagnose_launch
from ._record import CallRecord, CapturedBody
from ._redact import REDACTED, Redactor
from ._routes import RouteMatch, RouteTable
from ._sinks import log_failure, write_span

if TYPE_CHECKING:
    import httpx
    from opentelemetry.trace import Span

    from ._metrics import FlowMetrics

__all__ = ["Call", "Engine"]

logger = logging.getLogger("flowscope")

MISSING = "__missing__"
UNKNOWN = "__unknown__"
NONE = "__none__"

#: The span the OpenTelemetry transport opened for the call in flight (set by its request hook).
CURRENT_SPAN: ContextVar[Span | None] = ContextVar("flowscope_span", default=None)
#: The record of the call that just finished, for the response hook to finish the span with.
LAST_RECORD: ContextVar[CallRecord | None] = ContextVar("flowscope_record", default=None)
#: Request extension a retrying client sets on a resend (1, 2...), so each attempt's span says so.
RESEND_COUNT_EXTENSION = "flowscope.resend_count"

_MAX_ID_CHARS = 128
# Ids made of these only cannot hold a bearer string, a key=value pair or a JWT (those start
# with "eyJ"); user-configured patterns may match anything, so then every id is scanned.
_PLAIN_ID = re.compile(r"[0-9A-Za-z_-][0-9A-Za-z._-]{0,127}")
_VERSION_URI = re.compile(r"/api/v2/flows/([^/]+)/versions/([^/?#]+)")
_JSON_TYPE = re.compile(r"[/+]json\b", re.IGNORECASE)

# The success bodies worth reading, and only when small: they name the execution or the flow.
_READ_SUCCESS = frozenset({"launch", "get_execution", "get_flow"})


@dataclass(slots=True)
class Call:
    """A flow call in flight: what was asked, and where its span is."""

    match: RouteMatch
    method: str
    url: str
    path: str
    request_headers: list[tuple[str, str]]
    request_body: bytes | None
    request_size: int | None
    request_type: str | None
    span: Span | None
    started: float
    flow_id: str
    flow_version: str | None


def _header(headers: Mapping[str, str] | httpx.Headers, name: str) -> str | None:
    value = headers.get(name)
    return None if value is None else str(value)


def _note_resend(request: httpx.Request, span: Span | None) -> None:
    count = request.extensions.get(RESEND_COUNT_EXTENSION)
    if span is not None and isinstance(count, int) and count > 0 and span.is_recording():
        span.set_attribute("http.request.resend_count", count)


def _status_outcome(status: int) -> str:
    if status >= 500:
        return "server_error"
    if status >= 400:
        return "client_error"
    return "success"


class Engine:
    """Shared by every transport of one instrumented client; thread-safe."""

    def __init__(self, config: FlowScopeConfig | None, metrics: FlowMetrics | None) -> None:
        self.config = config or FlowScopeConfig()
        self.redactor = Redactor(
            redact_keys=self.config.redact_keys, redact_patterns=self.config.redact_patterns
        )
        self.routes = RouteTable(self.config.route_list)
        if metrics is None:
            from ._metrics import default_metrics

            metrics = default_metrics()
        self.metrics = metrics
        self._schemas: dict[str, Mapping[str, Any]] = dict(self.config.input_schemas)
        self._failed_stages: set[str] = set()
        self._plain_ids = not self.config.redact_patterns
        self._lock = threading.Lock()

    # -- fail open ---------------------------------------------------------------------------

    def internal_error(self, stage: str, exc: BaseException) -> None:
        """Count a failure of flowscope's own logic and log it once per stage."""
        with contextlib.suppress(Exception):  # the registry itself may be what is broken
            self.metrics.internal_error(stage)
        with self._lock:
            first = stage not in self._failed_stages
            self._failed_stages.add(stage)
        level = logging.ERROR if first else logging.DEBUG
        if not logger.isEnabledFor(level):
            return
        # The traceback is logged as redacted text, not exc_info: an exception raised while
        # handling a call may quote what it was handling (a header, a piece of the body).
        try:
            detail = self.redactor.text("".join(traceback.format_exception(exc))).value
        except Exception:
            detail = type(exc).__qualname__
        if first:
            logger.error(
                "flowscope internal error in stage %r; the call itself is unaffected "
                "(further errors in this stage are logged at DEBUG)\n%s",
                stage,
                detail,
            )
        else:
            logger.debug("flowscope internal error in stage %r\n%s", stage, detail)

    # -- request side ------------------------------------------------------------------------

    def begin(self, request: httpx.Request, span: Span | None = None) -> Call | None:
        """Match the route and note what was sent; ``None`` for calls that are not flow calls."""
        _note_resend(request, span)
        match = self.routes.match(request.method, request.url.path)
        if match is None:
            return None
        body: bytes | None
        try:
            body = request.content
        except Exception:  # a streaming upload: reading it here would consume it
            body = None
        size = len(body) if body is not None else _int(_header(request.headers, "content-length"))
        flow_id, version = self._request_flow(match, body)
        return Call(
            match=match,
            method=request.method,
            url=str(request.url),
            path=request.url.path,
            request_headers=[(k, v) for k, v in request.headers.multi_items()],
            request_body=body,
            request_size=size,
            # No header at all is itself a finding (the platform answers 415), unlike "unknown".
            request_type=_header(request.headers, "content-type") or ("" if body else None),
            span=span,
            started=time.perf_counter(),
            flow_id=flow_id,
            flow_version=version,
        )

    def _request_flow(self, match: RouteMatch, body: bytes | None) -> tuple[str, str | None]:
        op = match.operation
        if op == "token":
            return NONE, None
        if "flowId" in match.params:
            return match.params["flowId"], match.params.get("versionId")
        if op == "launch":
            doc = _loads(body) if body else None
            if isinstance(doc, dict):
                fid = doc.get("flowId")
                ver = doc.get("flowVersion")
                return (
                    fid if isinstance(fid, str) and fid else MISSING,
                    ver if isinstance(ver, str) else None,
                )
            return MISSING, None
        return UNKNOWN, None

    def read_limit(self, call: Call, status: int, headers: httpx.Headers) -> int:
        """How many bytes of the response body to read while the span is open (0: none)."""
        limit = self.config.capture_limit_bytes
        if status >= 400:
            return limit
        if call.match.operation not in _READ_SUCCESS or not (200 <= status < 300):
            return 0
        ctype = headers.get("content-type", "")
        if not _JSON_TYPE.search(ctype):
            return 0
        length = _int(headers.get("content-length"))
        if length is None or length > limit:
            return 0  # only small bodies: success responses are never held back
        return limit

    # -- response side -----------------------------------------------------------------------

    def finish(
        self,
        call: Call,
        status: int,
        headers: httpx.Headers,
        captured: bytes | None,
        complete: bool,
        seen: int,
    ) -> None:
        """Build the record for a call that got a response, and hand it to every sink."""
        duration = time.perf_counter() - call.started
        try:
            record = self._record(call, status, headers, captured, complete, seen, duration)
        except Exception as exc:
            self.internal_error("record", exc)
            record = self._bare_record(call, status, duration)
        self._emit(call, record)

    def fail(self, call: Call, exc: BaseException) -> None:
        """Build the record for a call whose transport raised."""
        duration = time.perf_counter() - call.started
        try:
            record = self._described(
                call,
                duration,
                None,
                call.flow_id,
                call.flow_version,
                self._execution_from_path(call),
                exception_type=type(exc).__qualname__,
                exception_message=self.redactor.text(str(exc)).value,
                hints=tuple(self._hints(call)),
                request_body=self._request_capture(call),
            )
        except Exception as inner:
            self.internal_error("record", inner)
            record = replace(
                self._bare_record(call, None, duration),
                outcome="transport_error",
                exception_type=type(exc).__qualname__,
            )
        self._emit(call, record)

    def _emit(self, call: Call, record: CallRecord) -> None:
        LAST_RECORD.set(record)
        if call.span is not None:
            try:
                write_span(call.span, record)
            except Exception as exc:
                self.internal_error("span", exc)
        try:
            self.metrics.observe(record)
        except Exception as exc:
            self.internal_error("metrics", exc)
        if self.config.log_failures and record.outcome != "success":
            try:
                log_failure(logger, record)
            except Exception as exc:
                self.internal_error("log", exc)

    def _bare_record(self, call: Call, status: int | None, duration: float) -> CallRecord:
        """The least we can say when building the full record failed: nothing unredacted."""
        return CallRecord(
            operation=call.match.operation,
            template=call.match.template,
            method=call.method,
            flow_id=UNKNOWN if call.flow_id not in (MISSING, NONE) else call.flow_id,
            flow_name=None,
            flow_version=None,
            execution_id=None,
            url=self.redactor.url(call.url).value,
            status_code=status,
            outcome=_status_outcome(status) if status is not None else "transport_error",
            duration_s=duration,
        )

    def _record(
        self,
        call: Call,
        status: int,
        headers: httpx.Headers,
        captured: bytes | None,
        complete: bool,
        seen: int,
        duration: float,
    ) -> CallRecord:
        correlation = _header(headers, "inin-correlation-id")
        flow_id, version = call.flow_id, call.flow_version
        execution_id = self._execution_from_path(call)

        decoded: bytes | None = None
        cut = not complete
        if captured is not None:
            decoded, decode_cut = decode_content(
                captured,
                headers.get("content-encoding"),
                max_size=max(self.config.capture_limit_bytes, 1) * 4,
            )
            cut = cut or decode_cut

        if status < 400:
            doc = _loads(decoded) if decoded and complete else None
            if isinstance(doc, dict):
                flow_id, version, execution_id = self._from_success(
                    call, doc, flow_id, version, execution_id
                )
            return self._described(
                call,
                duration,
                status,
                flow_id,
                version,
                execution_id,
                correlation_id=self._safe_optional(correlation),
            )

        raw = decoded if decoded is not None else b""
        report = parse_error_body(status, headers, raw[: self.config.capture_limit_bytes])
        ctype = headers.get("content-type", "")
        body_red = self.redactor.body(raw, ctype, where="response.body")
        report = self._redact_report(report)
        response_body = _cut(
            body_red.value,
            self.config.capture_limit_bytes,
            size=_int(headers.get("content-length")) if cut else len(raw),
            seen=seen,
            truncated=cut,
            content_type=ctype,
        )
        resp_header_paths = self.redactor.headers(
            list(headers.multi_items()), where="response.header"
        ).paths
        return self._described(
            call,
            duration,
            status,
            flow_id,
            version,
            execution_id,
            response_paths=(*resp_header_paths, *body_red.paths),
            error=report,
            correlation_id=self._safe_optional(correlation or report.correlation_id),
            hints=tuple(self._hints(call, report.fields)),
            request_body=self._request_capture(call),
            response_body=response_body,
        )

    def _described(
        self,
        call: Call,
        duration: float,
        status: int | None,
        flow_id: str,
        version: str | None,
        execution_id: str | None,
        *,
        response_paths: tuple[str, ...] = (),
        **details: Any,
    ) -> CallRecord:
        """The record with what every outcome shares: the call, its ids, all made safe."""
        url, paths = self._redacted_request(call)
        trace_id, span_id = self._trace_ids(call)
        return CallRecord(
            operation=call.match.operation,
            template=call.match.template,
            method=call.method,
            flow_id=self._safe_id(flow_id),
            flow_name=self.config.flow_names.get(flow_id),
            flow_version=self._safe_optional(version),
            execution_id=self._safe_optional(execution_id),
            url=url,
            status_code=status,
            outcome="transport_error" if status is None else _status_outcome(status),
            duration_s=duration,
            redacted_paths=(*paths, *response_paths),
            trace_id=trace_id,
            span_id=span_id,
            **details,
        )

    def _from_success(
        self,
        call: Call,
        doc: dict[str, Any],
        flow_id: str,
        version: str | None,
        execution_id: str | None,
    ) -> tuple[str, str | None, str | None]:
        op = call.match.operation
        fv = doc.get("flowVersion")
        if isinstance(fv, dict):
            uri = fv.get("selfUri")
            m = _VERSION_URI.search(uri) if isinstance(uri, str) else None
            if m is not None and flow_id in (UNKNOWN, MISSING):
                flow_id = m.group(1)
            vid = fv.get("id") or (m.group(2) if m else None)
            if isinstance(vid, str):
                version = vid
        if op == "launch" and isinstance(doc.get("id"), str):
            execution_id = doc["id"]
        if op == "get_flow" and self.config.learn_schemas:
            schema = doc.get("inputSchema")
            if isinstance(schema, dict) and flow_id not in (UNKNOWN, MISSING):
                with self._lock:
                    self._schemas[flow_id] = schema
        return flow_id, version, execution_id

    def _execution_from_path(self, call: Call) -> str | None:
        return call.match.params.get("flowExecutionId")

    def _redacted_request(self, call: Call) -> tuple[str, tuple[str, ...]]:
        url = self.redactor.url(call.url)
        hdrs = self.redactor.headers(call.request_headers, where="header")
        return url.value, (*url.paths, *hdrs.paths)

    def _request_capture(self, call: Call) -> CapturedBody | None:
        if not self.config.capture_request_body or call.request_body is None:
            return None
        red = self.redactor.body(call.request_body, call.request_type, where="request.body")
        return _cut(
            red.value,
            self.config.capture_limit_bytes,
            size=len(call.request_body),
            seen=len(call.request_body),
            truncated=False,
            content_type=call.request_type or "",
        )

    def _hints(self, call: Call, rejected_fields: tuple[str, ...] = ()) -> list[Hint]:
        if not self.config.hints or call.match.operation != "launch":
            return []
        schema = self._schemas.get(call.flow_id)
        hints = diagnose_launch(
            call.request_body,
            content_type=call.request_type,
            path=call.path,
            body_size=call.request_size,
            input_schema=schema,
            rejected_fields=rejected_fields,
        )
        return [Hint(h.code, self.redactor.text(h.message).value, h.field) for h in hints]

    def _redact_report(self, report: ErrorReport) -> ErrorReport:
        text = self.redactor.text
        return replace(
            report,
            code=text(report.code).value if report.code else report.code,
            message=text(report.message).value if report.message else report.message,
            fields=tuple(text(f).value for f in report.fields),
            message_params={k: text(str(v)).value for k, v in report.message_params.items()},
            text="",
            document=None,
        )

    def _safe_id(self, flow_id: str) -> str:
        """An id from the request or the network, as it may leave the process.

        Ids are chosen by callers and servers: one may be a JWT (which fits the plain-id
        alphabet) or ``access_token:...``, be megabytes long, hold a newline (a forged log line)
        or a lone surrogate (valid JSON, not UTF-8: the OTLP exporter would drop the whole batch).
        """
        if self._plain_ids and _PLAIN_ID.fullmatch(flow_id) and not flow_id.startswith("eyJ"):
            return flow_id  # a UUID or an opaque token: nothing in it can be a secret we know
        value = self.redactor.text(flow_id).value
        value = value[:_MAX_ID_CHARS] if isinstance(value, str) else REDACTED
        if not value.isprintable():
            value = "".join(ch if ch.isprintable() else "_" for ch in value)
        return value

    def _safe_optional(self, value: str | None) -> str | None:
        return None if value is None else self._safe_id(value)

    def _trace_ids(self, call: Call) -> tuple[str | None, str | None]:
        span = call.span
        if span is None:
            return None, None
        ctx = span.get_span_context()
        if not ctx.trace_flags.sampled:
            return None, None
        return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"


def _cut(
    text: str, limit: int, *, size: int | None, seen: int, truncated: bool, content_type: str
) -> CapturedBody:
    data = text.encode("utf-8", "replace")
    if len(data) > limit:
        text = data[:limit].decode("utf-8", "ignore")
        truncated = True
    return CapturedBody(
        text=text,
        size=size if size is not None else seen,
        truncated=truncated,
        content_type=content_type,
    )


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _loads(data: bytes | None) -> Any:
    if not data:
        return None
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None

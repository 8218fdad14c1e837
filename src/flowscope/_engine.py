"""From one HTTP exchange to one redacted :class:`CallRecord`.

The transport hands over what the call showed (the request, the status, the headers, the bytes
it captured) and gets the record back; it never sees anything in between. Building a record is
two steps: *observe* reads the exchange (the error body is decoded and parsed once, here) into
raw facts, and *redact* turns those facts into the record (every value leaving the process is
redacted there, once). This module knows nothing about streams or spans: the sync and async
transports share everything here.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from ._codec import decode_content
from ._config import FlowScopeConfig
from ._errors import ErrorReport, parse_error_body
from ._hints import Hint, diagnose_launch
from ._record import CallRecord, CapturedBody, RecordedError
from ._redact import REDACTED, Redacted, Redactor
from ._routes import RouteMatch, RouteTable
from ._vocabulary import MISSING, NONE, UNKNOWN, is_json_media, media_type, printable

if TYPE_CHECKING:
    import httpx

__all__ = ["Call", "Capture", "Engine"]

# Ids made of these only cannot hold a bearer string, a key=value pair or a JWT (those start
# with "eyJ"); user-configured patterns may match anything, so then every id is scanned.
_PLAIN_ID = re.compile(r"[0-9A-Za-z_-][0-9A-Za-z._-]{0,127}")
_VERSION_URI = re.compile(r"/api/v2/flows/([^/]+)/versions/([^/?#]+)")
# Error bodies the parser read as JSON: their document is redacted, not their text.
_JSON_KINDS = frozenset({"genesys", "oauth", "problem", "json"})

# A request body not parsed as JSON (not a launch, or no body).
_UNREAD: Any = object()
_FORM = "application/x-www-form-urlencoded"

# The success bodies worth reading, and only when small: they name the execution or the flow.
_READ_SUCCESS = frozenset({"launch", "get_execution", "get_flow"})


@dataclass(slots=True)
class Call:
    """A flow call in flight: what was asked, as sent (nothing here is redacted yet)."""

    match: RouteMatch
    method: str
    url: str
    path: str
    request_headers: list[tuple[str, str]]
    request_body: bytes | None
    request_size: int | None
    request_type: str | None
    #: The request body parsed as JSON, when it was read for the flow id (``_UNREAD`` if not).
    request_document: Any
    #: ``(trace id, span id)`` of the call's span when it is sampled.
    trace: tuple[str, str] | None
    started: float
    flow_id: str
    flow_version: str | None
    #: The response headers the engine reads, once the response is in (see :func:`_pick`).
    picked: dict[str, str] | None = None


class Capture(NamedTuple):
    """What the transport read of a response body while the span was open."""

    #: At most ``capture_limit_bytes``, still content-encoded.
    data: bytes
    #: The whole body was read.
    complete: bool
    #: Bytes read in all (may pass the limit by one chunk).
    seen: int


@dataclass(slots=True)
class _Observed:
    """What the exchange showed, as it came: the input of the one redaction step."""

    status: int | None
    duration: float
    flow_id: str
    flow_version: str | None
    execution_id: str | None
    correlation_id: str | None = None
    #: The parsed error body (status >= 400).
    report: ErrorReport | None = None
    #: The decoded error body, its content type, its size and whether it was cut.
    body: bytes = b""
    body_type: str = ""
    body_size: int | None = None
    body_cut: bool = False
    response_headers: list[tuple[str, str]] | None = None
    exception: BaseException | None = None

    @classmethod
    def of(cls, call: Call, status: int | None, duration: float) -> _Observed:
        """What the request alone said, before the response adds to it."""
        return cls(
            status=status,
            duration=duration,
            flow_id=call.flow_id,
            flow_version=call.flow_version,
            execution_id=call.match.params.get("flowExecutionId"),
        )


def _status_outcome(status: int | None) -> str:
    if status is None:
        return "transport_error"
    if status >= 500:
        return "server_error"
    if status >= 400:
        return "client_error"
    return "success"


class Engine:
    """Builds the records of one instrumented client; thread-safe.

    ``internal_error(stage, exc)`` hears of every failure of flowscope's own logic; a record
    that cannot be built in full is replaced by a bare one, never by an exception.
    """

    def __init__(
        self,
        config: FlowScopeConfig,
        redactor: Redactor,
        internal_error: Callable[[str, BaseException], None],
    ) -> None:
        self.config = config
        self.redactor = redactor
        self.internal_error = internal_error
        self.routes = RouteTable(config.route_list)
        self._schemas: dict[str, Mapping[str, Any]] = dict(config.input_schemas)
        self._plain_ids = not config.redact_patterns
        self._lock = threading.Lock()

    # -- request side ------------------------------------------------------------------------

    def begin(self, request: httpx.Request, trace: tuple[str, str] | None = None) -> Call | None:
        """Match the route and note what was sent; ``None`` for calls that are not flow calls."""
        match = self.routes.match(request.method, request.url.path)
        if match is None:
            return None
        body: bytes | None
        try:
            body = request.content
        except Exception:  # a streaming upload: reading it here would consume it
            body = None
        size = len(body) if body is not None else _int(request.headers.get("content-length"))
        document = _loads(body) if match.operation == "launch" and body else _UNREAD
        flow_id, version = self._request_flow(match, document)
        return Call(
            match=match,
            method=request.method,
            url=str(request.url),
            path=request.url.path,
            request_headers=request.headers.multi_items(),
            request_body=body,
            request_size=size,
            # No header at all is itself a finding (the platform answers 415), unlike "unknown".
            request_type=request.headers.get("content-type") or ("" if body else None),
            request_document=document,
            trace=trace,
            started=time.perf_counter(),
            flow_id=flow_id,
            flow_version=version,
        )

    def _request_flow(self, match: RouteMatch, doc: Any) -> tuple[str, str | None]:
        op = match.operation
        if op == "token":
            return NONE, None
        if "flowId" in match.params:
            return match.params["flowId"], match.params.get("versionId")
        if op == "launch":
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
        picked = call.picked = _pick(headers)
        if not is_json_media(media_type(picked.get("content-type"))):
            return 0
        length = _int(picked.get("content-length"))
        if length is None or length > limit:
            return 0  # only small bodies: success responses are never held back
        return limit

    # -- the record --------------------------------------------------------------------------

    def finish(
        self, call: Call, status: int, headers: httpx.Headers, capture: Capture | None
    ) -> CallRecord:
        """The record of a call that got a response (``capture``: the body bytes read, if any)."""
        duration = time.perf_counter() - call.started
        try:
            observed = self._observe(call, status, headers, capture, duration)
            return self._redact(call, observed)
        except Exception as exc:
            self.internal_error("record", exc)
            return self._bare_record(call, status, duration, None)

    def fail(self, call: Call, exc: BaseException) -> CallRecord:
        """The record of a call whose transport raised."""
        duration = time.perf_counter() - call.started
        try:
            observed = _Observed.of(call, None, duration)
            observed.exception = exc
            return self._redact(call, observed)
        except Exception as inner:
            self.internal_error("record", inner)
            return self._bare_record(call, None, duration, exc)

    def _observe(
        self,
        call: Call,
        status: int,
        headers: httpx.Headers,
        capture: Capture | None,
        duration: float,
    ) -> _Observed:
        """Read what the response says. Nothing is redacted here, and nothing leaves."""
        observed = _Observed.of(call, status, duration)
        picked = call.picked if call.picked is not None else _pick(headers)
        observed.correlation_id = picked.get("inin-correlation-id")
        decoded: bytes | None = None
        complete = capture is not None and capture.complete
        cut = not complete
        if capture is not None:
            decoded, decode_cut = decode_content(
                capture.data,
                picked.get("content-encoding"),
                max_size=max(self.config.capture_limit_bytes, 1) * 4,
            )
            cut = cut or decode_cut

        if status < 400:
            doc = _loads(decoded) if decoded and complete else None
            if isinstance(doc, dict):
                self._from_success(call, doc, observed)
            return observed

        body = decoded if decoded is not None else b""
        report = parse_error_body(status, picked, body, max_text=self.config.capture_limit_bytes)
        observed.report = report
        observed.correlation_id = observed.correlation_id or report.correlation_id
        observed.body = body
        observed.body_type = picked.get("content-type", "")
        observed.body_size = _int(picked.get("content-length")) if cut else len(body)
        if observed.body_size is None:
            observed.body_size = capture.seen if capture is not None else 0
        observed.body_cut = cut
        observed.response_headers = headers.multi_items()
        return observed

    def _from_success(self, call: Call, doc: dict[str, Any], observed: _Observed) -> None:
        op = call.match.operation
        fv = doc.get("flowVersion")
        if isinstance(fv, dict):
            uri = fv.get("selfUri")
            m = _VERSION_URI.search(uri) if isinstance(uri, str) else None
            if m is not None and observed.flow_id in (UNKNOWN, MISSING):
                observed.flow_id = m.group(1)
            vid = fv.get("id") or (m.group(2) if m else None)
            if isinstance(vid, str):
                observed.flow_version = vid
        if op == "launch" and isinstance(doc.get("id"), str):
            observed.execution_id = doc["id"]
        if op == "get_flow" and self.config.learn_schemas:
            schema = doc.get("inputSchema")
            flow_id = observed.flow_id
            if isinstance(schema, dict) and flow_id not in (UNKNOWN, MISSING):
                with self._lock:
                    self._schemas[flow_id] = schema

    def _redact(self, call: Call, seen: _Observed) -> CallRecord:
        """The one redaction step: every value the record carries is made safe here."""
        redactor = self.redactor
        url = redactor.url(call.url)
        request_headers = redactor.headers(call.request_headers, where="header")
        paths = [*url.paths, *request_headers.paths]
        error: RecordedError | None = None
        response_body: CapturedBody | None = None
        if seen.report is not None:
            if seen.response_headers is not None:
                response_headers = redactor.headers(seen.response_headers, where="response.header")
                paths.extend(response_headers.paths)
            report = seen.report
            document = report.document if report.kind in _JSON_KINDS else _UNREAD
            body = self._redact_body(seen.body, seen.body_type, document, "response.body")
            paths.extend(body.paths)
            response_body = _cut(
                body.value,
                self.config.capture_limit_bytes,
                size=seen.body_size or 0,
                truncated=seen.body_cut,
                content_type=seen.body_type,
            )
            error = self._redact_error(seen.report)
        failed = seen.status is None or seen.status >= 400
        # The hints compare the fields the platform rejected with the keys that were sent.
        rejected = seen.report.fields if seen.report is not None else ()
        exc = seen.exception
        return CallRecord(
            operation=call.match.operation,
            template=call.match.template,
            method=call.method,
            flow_id=self._safe_id(seen.flow_id),
            flow_name=self.config.flow_names.get(seen.flow_id),
            flow_version=self._safe_optional(seen.flow_version),
            execution_id=self._safe_optional(seen.execution_id),
            url=url.value,
            status_code=seen.status,
            outcome=_status_outcome(seen.status),
            duration_s=seen.duration,
            error=error,
            exception_type=type(exc).__qualname__ if exc is not None else None,
            exception_message=redactor.text(str(exc)).value if exc is not None else None,
            correlation_id=self._safe_optional(seen.correlation_id),
            hints=tuple(self._hints(call, rejected)) if failed else (),
            redacted_paths=tuple(paths),
            request_body=self._request_capture(call) if failed else None,
            response_body=response_body,
            trace_id=call.trace[0] if call.trace else None,
            span_id=call.trace[1] if call.trace else None,
        )

    def _bare_record(
        self, call: Call, status: int | None, duration: float, exc: BaseException | None
    ) -> CallRecord:
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
            outcome=_status_outcome(status),
            duration_s=duration,
            exception_type=type(exc).__qualname__ if exc is not None else None,
        )

    def _redact_body(self, raw: bytes, content_type: str, document: Any, where: str) -> Redacted:
        """A body for display. A JSON body is redacted from the document already parsed (the
        error parser's, or the request's read for its flow id), never parsed again."""
        if document is _UNREAD or media_type(content_type) == _FORM:
            return self.redactor.body(raw, content_type, where=where)
        redacted = self.redactor.json(document, where=where)
        text = raw.decode("utf-8", errors="replace")
        if not redacted.paths:
            return Redacted(text, ())
        try:
            out = json.dumps(redacted.value, ensure_ascii=False, separators=(",", ":"))
        except (ValueError, TypeError, RecursionError):  # pragma: no cover - defensive
            return self.redactor.text(text, where=where)
        return Redacted(out, redacted.paths)

    def _redact_error(self, report: ErrorReport) -> RecordedError:
        text = self.redactor.text
        return RecordedError(
            kind=report.kind,
            code=text(report.code).value if report.code else report.code,
            message=text(report.message).value if report.message else report.message,
            fields=tuple(text(f).value for f in report.fields),
            message_params={k: text(str(v)).value for k, v in report.message_params.items()},
            retry_after=report.retry_after,
        )

    def _request_capture(self, call: Call) -> CapturedBody | None:
        if not self.config.capture_request_body or call.request_body is None:
            return None
        document = call.request_document
        if document is None:  # not JSON after all: redacted as the text it is
            document = _UNREAD
        red = self._redact_body(
            call.request_body, call.request_type or "", document, "request.body"
        )
        return _cut(
            red.value,
            self.config.capture_limit_bytes,
            size=len(call.request_body),
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

    def _safe_id(self, flow_id: str) -> str:
        """An id from the request or the network, as it may leave the process.

        Ids are chosen by callers and servers: one may be a JWT (which fits the plain-id
        alphabet) or ``access_token:...``, be megabytes long, hold a newline (a forged log line)
        or a lone surrogate (valid JSON, not UTF-8: the OTLP exporter would drop the whole batch).
        """
        if self._plain_ids and _PLAIN_ID.fullmatch(flow_id) and not flow_id.startswith("eyJ"):
            return flow_id  # a UUID or an opaque token: nothing in it can be a secret we know
        value = self.redactor.text(flow_id).value
        return printable(value) if isinstance(value, str) else REDACTED

    def _safe_optional(self, value: str | None) -> str | None:
        return None if value is None else self._safe_id(value)


def _cut(text: str, limit: int, *, size: int, truncated: bool, content_type: str) -> CapturedBody:
    data = text.encode("utf-8", "replace")
    if len(data) > limit:
        text = data[:limit].decode("utf-8", "ignore")
        truncated = True
    return CapturedBody(text=text, size=size, truncated=truncated, content_type=content_type)


# The response headers the engine reads (the error parser too); the rest only get redacted.
_PICKED = frozenset(
    {
        b"content-type",
        b"content-length",
        b"content-encoding",
        b"inin-correlation-id",
        b"retry-after",
    }
)


def _pick(headers: httpx.Headers) -> dict[str, str]:
    """The headers the engine reads, in one pass: ``httpx.Headers.get`` scans them all each time.

    A repeated header keeps its first value.
    """
    picked: dict[str, str] = {}
    for name, value in headers.raw:
        lower = name.lower()
        if lower in _PICKED:
            picked.setdefault(lower.decode("latin-1"), value.decode("latin-1"))
    return picked


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

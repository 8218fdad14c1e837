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
import math
import re
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from ._advice import AdviceMemory, FailedCall, advise, shared_memory
from ._codec import decode_content
from ._config import FlowScopeConfig
from ._errors import ErrorReport, parse_error_body
from ._executions import (
    ExecutionStore,
    PolledExecution,
    TrackedLaunch,
    declared_inputs,
    diagnose_failure,
    launch_shape,
    read_execution,
)
from ._hints import Hint, diagnose_launch
from ._record import CallRecord, CapturedBody, ExecutionOutcome, RateLimit, RecordedError
from ._redact import NO_DOCUMENT, REDACTED, CallRedaction, Redacted, Redactor, holds_card_number
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

# The success bodies worth reading, and only when small: they name the execution or the flow,
# or (token) how long the token lives.
_READ_SUCCESS = frozenset({"launch", "get_execution", "get_flow", "token"})
# Operations whose success shows that the flow exists on the host that answered.
_FLOW_ANSWERS = frozenset({"launch", "get_flow"})
_FLOW_DOCUMENT = "/api/v2/flows/{flowId}"


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
    #: The host name the call went to, as a label may show it.
    host: str
    #: ``host[:port]`` the call went to (never userinfo), for what earlier calls showed.
    origin: str = ""
    #: When it was sent, on the advice memory's clock.
    at: float = 0.0
    #: The response headers the engine reads, once the response is in (see :func:`_pick`).
    picked: dict[str, str] | None = None
    #: Redacts this call's request and removes its secrets from everything shown about it.
    redaction: CallRedaction | None = None


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
    #: The headers read in one pass (error responses).
    picked: dict[str, str] | None = None
    exception: BaseException | None = None
    ratelimit: RateLimit | None = None
    retry_after_s: float | None = None
    #: What a get_execution response said about the execution.
    polled: PolledExecution | None = None

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
        memory: AdviceMemory | None = None,
        executions: ExecutionStore | None = None,
    ) -> None:
        self.config = config
        #: The launched executions remembered until their outcome is seen (shared per process).
        self.executions = executions
        self.redactor = redactor
        self.internal_error = internal_error
        #: What earlier calls showed (tokens, flow types, hosts, call counts), for the hints.
        self.memory = memory if memory is not None else shared_memory()
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
        origin = request.url.netloc.decode("ascii", "replace")
        url = str(request.url)
        headers = request.headers.multi_items()
        # No header at all is itself a finding (the platform answers 415), unlike "unknown".
        request_type = request.headers.get("content-type") or ("" if body else None)
        return Call(
            match=match,
            method=request.method,
            url=url,
            path=request.url.path,
            request_headers=headers,
            request_body=body,
            request_size=size,
            request_type=request_type,
            request_document=document,
            trace=trace,
            started=time.perf_counter(),
            flow_id=flow_id,
            flow_version=version,
            host=printable(request.url.host),
            origin=origin,
            at=self.memory.call_made(origin),
            redaction=self.redactor.for_call(
                url,
                headers,
                body,
                request_type,
                NO_DOCUMENT if document is _UNREAD or document is None else document,
            ),
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
        if length is None and call.match.operation == "token":
            return min(limit, _TOKEN_REPLY_BYTES)  # a token reply is small, framed or not
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
        observed.ratelimit = _ratelimit(picked)
        if status == 429:
            observed.retry_after_s = _retry_after(picked.get("retry-after"), time.time())
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
            flow_id = call.flow_id
            if (
                200 <= status < 300
                and call.match.operation in _FLOW_ANSWERS
                and flow_id
                not in (
                    UNKNOWN,
                    MISSING,
                )
            ):
                self.memory.flow_answered(flow_id, call.origin)
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
        observed.picked = picked
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
        if op == "token":
            token, lifetime = doc.get("access_token"), _lifetime(doc.get("expires_in"))
            if isinstance(token, str) and token and lifetime is not None:
                self.memory.token_issued(token, lifetime, call.origin)
            return
        if op == "get_flow" and call.match.template == _FLOW_DOCUMENT:
            flow_type = doc.get("type")
            known = observed.flow_id not in (UNKNOWN, MISSING)
            if isinstance(flow_type, str) and flow_type and known:
                self.memory.flow_type(observed.flow_id, flow_type[:64])
        if op == "get_execution":
            observed.polled = read_execution(doc)
        if op == "get_flow" and self.config.learn_schemas:
            schema = doc.get("inputSchema")
            flow_id = observed.flow_id
            if isinstance(schema, dict) and flow_id not in (UNKNOWN, MISSING):
                with self._lock:
                    self._schemas[flow_id] = schema

    def _redact(self, call: Call, seen: _Observed) -> CallRecord:
        """The one redaction step: every value the record carries is made safe here.

        The call's own redaction also removes, from everything the response shows, each value
        its request had redacted (the echo rule).
        """
        redaction = _redaction(self.redactor, call)
        url = redaction.request_url
        request_headers = redaction.request_headers
        paths = [*url.paths, *request_headers.paths]
        error: RecordedError | None = None
        response_body: CapturedBody | None = None
        if seen.report is not None:
            if seen.response_headers is not None:
                response_headers = redaction.headers(
                    seen.response_headers, where="response.header"
                )
                paths.extend(response_headers.paths)
            body = self._redact_body(seen.body, seen.body_type, seen.report, redaction)
            paths.extend(body.paths)
            response_body = _cut(
                body.value,
                self.config.capture_limit_bytes,
                size=seen.body_size or 0,
                truncated=seen.body_cut,
                content_type=seen.body_type,
            )
            error = self._redact_error(seen.report, redaction)
        failed = seen.status is None or seen.status >= 400
        # The hints compare the fields the platform rejected with the keys that were sent.
        rejected = seen.report.fields if seen.report is not None else ()
        exc = seen.exception
        followed = self._follow_up(call, seen)
        hints = tuple(self._hints(call, seen, rejected)) if failed else followed.hints
        return CallRecord(
            operation=call.match.operation,
            template=call.match.template,
            method=call.method,
            flow_id=self._safe_id(seen.flow_id, redaction),
            flow_name=self.config.flow_names.get(seen.flow_id),
            flow_version=self._safe_optional(seen.flow_version, redaction),
            execution_id=self._safe_optional(seen.execution_id, redaction),
            url=url.value,
            status_code=seen.status,
            outcome=_status_outcome(seen.status),
            duration_s=seen.duration,
            error=error,
            exception_type=type(exc).__qualname__ if exc is not None else None,
            exception_message=redaction.text(str(exc)).value if exc is not None else None,
            exception_class=_qualified_name(exc) if exc is not None else None,
            exception_stacktrace=_stacktrace(exc, redaction) if exc is not None else None,
            correlation_id=self._safe_optional(seen.correlation_id, redaction),
            hints=hints,
            redacted_paths=tuple(paths),
            request_body=self._request_capture(call, redaction) if failed else None,
            response_body=response_body,
            trace_id=call.trace[0] if call.trace else None,
            span_id=call.trace[1] if call.trace else None,
            host=call.host,
            ratelimit=seen.ratelimit,
            retry_after_s=seen.retry_after_s,
            execution=followed.outcome,
            execution_tracked=followed.tracked,
            unobserved=followed.unobserved,
        )

    # -- executions ----------------------------------------------------------------------------

    def _follow_up(self, call: Call, seen: _Observed) -> _FollowUp:
        """Remember a launch, or join a poll to its launch and say whether its outcome counts.

        Sets ``seen.flow_id`` to the launch's flow on a poll of an execution launched here.
        """
        store = self.executions
        execution_id = seen.execution_id
        status = seen.status
        if store is None or execution_id is None or status is None or not 200 <= status < 300:
            return _NOTHING
        op = call.match.operation
        redaction = _redaction(self.redactor, call)
        if op == "launch":
            flow_id = self._safe_id(seen.flow_id, redaction)
            document = call.request_document
            launch = TrackedLaunch(
                execution_id=execution_id,
                flow_id=flow_id,
                flow_label=self.config.flow_names.get(seen.flow_id) or flow_id,
                trace_id=call.trace[0] if call.trace else None,
                span_id=call.trace[1] if call.trace else None,
                shape=launch_shape(document) if document is not _UNREAD else None,
                declared=declared_inputs(self._schemas.get(seen.flow_id)),
                remembered_at=0.0,
                # Its execution's error may quote an input (a PIN the flow could not use).
                secrets=redaction.request_body_secrets(),
            )
            return _FollowUp(tracked=True, unobserved=_labels(store.remember(launch)))
        polled = seen.polled
        if op != "get_execution" or polled is None:
            return _NOTHING
        forgotten: list[TrackedLaunch] = []
        counted = False
        if polled.terminal:

            def foreign() -> TrackedLaunch:
                flow_id = self._safe_id(seen.flow_id, redaction)
                label = self.config.flow_names.get(seen.flow_id) or flow_id
                return TrackedLaunch(
                    execution_id, flow_id, label, None, None, None, None, 0.0, launched_here=False
                )

            counted, launch, forgotten = store.settle(execution_id, foreign)
        else:
            found = store.lookup(execution_id)
            forgotten = store.expire()
            launch = found if found is not None else foreign_placeholder()
        if launch.launched_here:
            seen.flow_id = launch.flow_id
        # From here on (outcome, hints, captured headers) the poll also hides the launch's.
        redaction = call.redaction = redaction.joined(launch.secrets)
        outcome = self._outcome(polled, launch, counted, redaction)
        named = outcome.error.fields if outcome.error is not None else ()
        return _FollowUp(
            outcome=outcome,
            unobserved=_labels(forgotten),
            hints=tuple(self._execution_hints(launch, polled.status, named, redaction)),
        )

    def _outcome(
        self,
        polled: PolledExecution,
        launch: TrackedLaunch,
        counted: bool,
        redaction: CallRedaction,
    ) -> ExecutionOutcome:
        error: RecordedError | None = None
        error_body: str | None = None
        info = polled.error_info
        if info is not None:
            raw = json.dumps(info, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            status = info.get("status")
            report = parse_error_body(
                status if isinstance(status, int) and 400 <= status <= 599 else 500,
                {"content-type": "application/json"},
                raw,
                max_text=self.config.capture_limit_bytes,
            )
            error = self._redact_error(report, redaction)
            body = self._redact_body(raw, "application/json", report, redaction)
            error_body = _cut(
                body.value,
                self.config.capture_limit_bytes,
                size=len(raw),
                truncated=False,
                content_type="application/json",
            ).text
        reason = polled.completion_reason
        here = launch.launched_here
        return ExecutionOutcome(
            status=polled.status,
            terminal=polled.terminal,
            counted=counted,
            completion_reason=printable(redaction.text(reason).value) if reason else None,
            error=error,
            error_body=error_body,
            duration_s=polled.duration_s,
            launched_here=here,
            launch_trace_id=launch.trace_id if here else None,
            launch_span_id=launch.span_id if here else None,
        )

    def _execution_hints(
        self,
        launch: TrackedLaunch,
        status: str,
        named: tuple[str, ...],
        redaction: CallRedaction,
    ) -> list[Hint]:
        if not self.config.hints or not launch.launched_here:
            return []
        hints = diagnose_failure(launch, status, named)
        return [Hint(h.code, redaction.text(h.message).value, h.field) for h in hints]

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
            host=call.host,
        )

    def _redact_body(
        self, raw: bytes, content_type: str, report: ErrorReport, redaction: CallRedaction
    ) -> Redacted:
        """A response body for display. A JSON body is redacted from the document the error
        parser already read, never parsed again, and shown as the parser decoded it (in the
        charset the server named, when the parser kept all of the text): what is shown is what
        was searched."""
        where = "response.body"
        if report.kind not in _JSON_KINDS or media_type(content_type) == _FORM:
            return redaction.body(raw, content_type, where=where)
        source = None if report.text_truncated else report.text
        text = source if source is not None else raw.decode("utf-8", errors="replace")
        return redaction.document(text, report.document, where=where, source=source)

    def _redact_error(self, report: ErrorReport, redaction: CallRedaction) -> RecordedError:
        text = redaction.text
        # As one object, so a short value is removed where a sibling names its key.
        params = redaction.json({k: str(v) for k, v in report.message_params.items()}).value
        return RecordedError(
            kind=report.kind,
            code=text(report.code).value if report.code else report.code,
            message=text(report.message).value if report.message else report.message,
            fields=tuple(text(f).value for f in report.fields),
            message_params={str(k): str(v) for k, v in params.items()},
            retry_after=report.retry_after,
        )

    def _request_capture(self, call: Call, redaction: CallRedaction) -> CapturedBody | None:
        """The request body, redacted (JSON from the document read for its flow id)."""
        red = redaction.request_body
        if not self.config.capture_request_body or call.request_body is None or red is None:
            return None
        return _cut(
            red.value,
            self.config.capture_limit_bytes,
            size=len(call.request_body),
            truncated=False,
            content_type=call.request_type or "",
        )

    def _hints(
        self, call: Call, seen: _Observed, rejected_fields: tuple[str, ...] = ()
    ) -> list[Hint]:
        """The payload's hints (launches), then what the failure itself says to do next."""
        if not self.config.hints:
            return []
        hints: list[Hint] = []
        if call.match.operation == "launch":
            hints = diagnose_launch(
                call.request_body,
                content_type=call.request_type,
                path=call.path,
                body_size=call.request_size,
                input_schema=self._schemas.get(call.flow_id),
                rejected_fields=rejected_fields,
            )
        if seen.status is not None and seen.status >= 400:
            hints.extend(advise(self._failed_call(call, seen, seen.status), self.memory))
        text = _redaction(self.redactor, call).text
        return [Hint(h.code, text(h.message).value, h.field) for h in hints]

    def _failed_call(self, call: Call, seen: _Observed, status: int) -> FailedCall:
        """The raw facts :func:`advise` reads; they go no further than the hints."""
        report = seen.report
        document = report.document if report is not None else None
        limit = document.get("limit") if isinstance(document, dict) else None
        entity = document.get("entityName") if isinstance(document, dict) else None
        flow_id = call.flow_id if call.flow_id not in (UNKNOWN, MISSING, NONE) else None
        return FailedCall(
            operation=call.match.operation,
            template=call.match.template,
            host=call.origin,
            status=status,
            at=call.at,
            error_code=report.code if report is not None else None,
            message=report.message if report is not None else None,
            message_params=report.message_params if report is not None else {},
            limit=limit if isinstance(limit, dict) else None,
            entity_name=entity if isinstance(entity, str) else None,
            retry_after=report.retry_after if report is not None else None,
            rate_limit=seen.ratelimit,
            flow_id=flow_id,
            flow_version=call.flow_version,
            bearer=_bearer(call.request_headers),
        )

    def _safe_id(self, flow_id: str, redaction: CallRedaction) -> str:
        """An id from the request or the network, as it may leave the process.

        Ids are chosen by callers and servers: one may be a JWT (which fits the plain-id
        alphabet) or ``access_token:...``, be megabytes long, hold a newline (a forged log line)
        or a lone surrogate (valid JSON, not UTF-8: the OTLP exporter would drop the whole batch).
        """
        if (
            self._plain_ids
            and _PLAIN_ID.fullmatch(flow_id)
            and not flow_id.startswith("eyJ")
            and not (self.config.redact_pii and holds_card_number(flow_id))
        ):
            return flow_id  # a UUID or an opaque token: nothing in it can be a secret we know
        value = redaction.text(flow_id).value
        return printable(value) if isinstance(value, str) else REDACTED

    def _safe_optional(self, value: str | None, redaction: CallRedaction) -> str | None:
        return None if value is None else self._safe_id(value, redaction)


@dataclass(frozen=True, slots=True)
class _FollowUp:
    """What the execution store added to a call's record."""

    outcome: ExecutionOutcome | None = None
    tracked: bool = False
    unobserved: tuple[str, ...] = ()
    hints: tuple[Hint, ...] = ()


_NOTHING = _FollowUp()


def _redaction(redactor: Redactor, call: Call) -> CallRedaction:
    """The call's redaction (a :class:`Call` built by hand may lack one)."""
    if call.redaction is None:
        call.redaction = redactor.for_call(call.url, call.request_headers)
    return call.redaction


def _qualified_name(exc: BaseException) -> str:
    """``httpx.ConnectError``: the exception's type as OpenTelemetry's ``exception.type``."""
    cls = type(exc)
    module = cls.__module__
    return f"{module}.{cls.__qualname__}" if module and module != "builtins" else cls.__qualname__


def _stacktrace(exc: BaseException, redaction: CallRedaction) -> str:
    """The exception's traceback as ``exception.stacktrace`` shows it, redacted like its message
    (a chained exception's message may quote the request too)."""
    return str(redaction.text("".join(traceback.format_exception(exc))).value)


def foreign_placeholder() -> TrackedLaunch:
    """A poll of an execution not launched here (or already forgotten), still running."""
    return TrackedLaunch("", "", "", None, None, None, None, 0.0, launched_here=False)


def _labels(forgotten: list[TrackedLaunch]) -> tuple[str, ...]:
    return tuple(launch.flow_label for launch in forgotten)


def _cut(text: str, limit: int, *, size: int, truncated: bool, content_type: str) -> CapturedBody:
    data = text.encode("utf-8", "replace")
    if len(data) > limit:
        text = data[:limit].decode("utf-8", "ignore")
        truncated = True
    return CapturedBody(text=text, size=size, truncated=truncated, content_type=content_type)


# The response headers the engine reads (the error parser and the hints too); the rest only get
# redacted.
_PICKED = frozenset(
    {
        b"content-type",
        b"content-length",
        b"content-encoding",
        b"inin-correlation-id",
        b"retry-after",
        b"inin-ratelimit-allowed",
        b"inin-ratelimit-count",
        b"inin-ratelimit-reset",
    }
)
# A token reply without Content-Length is read up to this much (a JWT and three short fields).
_TOKEN_REPLY_BYTES = 16_384


def _bearer(headers: list[tuple[str, str]]) -> str | None:
    """The bearer token a request sent; ``""`` for an Authorization header of another kind."""
    for name, value in headers:
        if name.lower() == "authorization":
            scheme, _, token = value.strip().partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return None


def _lifetime(value: object) -> float | None:
    """``expires_in`` when it is a JSON number a duration can be: finite, not negative."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


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


def _ratelimit(picked: Mapping[str, str]) -> RateLimit | None:
    """The ``inin-ratelimit-*`` headers as numbers; ``None`` when the response had none.

    A value that is not a number is left out rather than guessed.
    """
    allowed = _count(picked.get("inin-ratelimit-allowed"))
    count = _count(picked.get("inin-ratelimit-count"))
    reset = _seconds(picked.get("inin-ratelimit-reset"))
    if allowed is None and count is None and reset is None:
        return None
    return RateLimit(allowed=allowed, count=count, reset_s=reset)


#: Larger counts are not counts: as an int64 span attribute or OTLP point they would fail the
#: export of the whole batch.
_MAX_COUNT = 2**53


def _count(value: str | None) -> int | None:
    number = _int(value.strip()) if value is not None else None
    return number if number is not None and 0 <= number < _MAX_COUNT else None


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if 0 <= seconds < _MAX_COUNT else None


def _retry_after(value: str | None, now: float) -> float | None:
    """``Retry-After`` in seconds: delay-seconds, or an HTTP date turned into the time left."""
    if value is None:
        return None
    seconds = _seconds(value)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        return None
    return max(0.0, when.timestamp() - now)


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

"""The flow API as a function from a request to a reply: no sockets, no threads of its own.

:meth:`FlowApi.handle` takes what an HTTP request carries (method, target, headers, body) and
returns a :class:`Reply`. The loopback server (``_http``) and :meth:`Sandbox.transport` are two
thin edges over the same model, so what a test sees in-process is what a client sees on the wire.

Adding a route: write a handler ``(api, call) -> Reply`` and add one :class:`Route` to
:data:`ROUTES`; a guarded route gets the bearer-token check and the per-token rate limit from
:meth:`FlowApi._guarded`, the one place they live. Adding a failure mode: an
:class:`~._errors.ErrorKind` in ``_errors``, raised as :class:`Refused` where the condition is
known (in ``_guarded`` for every API route, in a handler for one); a refusal from a handler
still carries the rate-limit headers.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import random
import threading
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from . import _documents as documents
from . import _errors as errors
from ._flows import SandboxFlow, make_output
from ._inputs import InputChecker, json_type

__all__ = ["MAX_BODY_BYTES", "ROUTES", "Call", "FlowApi", "Refused", "Reply", "Route"]

_log = logging.getLogger("flowscope.sandbox")

#: The platform refuses request bodies larger than this with 413.
MAX_BODY_BYTES = 512_000
_TOKEN_LIMIT_PER_MINUTE = 300
_WINDOW_SECONDS = 60.0
_MAX_EXECUTIONS = 100_000
_LAUNCH_KEYS = ("flowId", "flowVersion", "inputData", "name")

Header = tuple[str, str]


@dataclass(frozen=True)
class Reply:
    """What the API answers: the status, its headers in order, and the body bytes.

    The edges add only what belongs to the connection (``Date``, ``Content-Length``,
    ``Connection``); everything else a client sees is here.
    """

    status: int
    headers: tuple[Header, ...] = ()
    body: bytes = b""

    @classmethod
    def json(cls, status: int, document: object, *headers: Header) -> Reply:
        """A JSON reply, encoded compactly in UTF-8 as the platform sends it."""
        body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return cls(status, (("Content-Type", "application/json"), *headers), body)

    @classmethod
    def error(cls, body: errors.ErrorBody, *headers: Header) -> Reply:
        """An error body, sent with the status it names."""
        return cls.json(int(body["status"]), body, *headers)

    def with_headers(self, *headers: Header) -> Reply:
        """The same reply with ``headers`` appended."""
        return replace(self, headers=self.headers + headers)

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or ``None``."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)


class Refused(Exception):
    """Raised anywhere in a route to answer with ``reply`` instead."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply

    @classmethod
    def error(cls, body: errors.ErrorBody, *headers: Header) -> Refused:
        """Refuse with an error body from ``_errors``."""
        return cls(Reply.error(body, *headers))


@dataclass(frozen=True)
class Call:
    """One request as a route sees it."""

    method: str
    #: The request target as sent, path and query (``/api/v2/flows/x?deleted=true``).
    target: str
    path: str
    query: Mapping[str, list[str]]
    #: Header names in lower case.
    headers: Mapping[str, str]
    #: ``None`` when the body was too large for the edge to read (see ``_http``).
    body: bytes | None
    correlation_id: str
    #: Values of the route's ``{placeholders}``.
    params: Mapping[str, str] = field(default_factory=dict)
    #: The bearer token, on guarded routes once it is checked.
    token: str = ""


Handler = Callable[["FlowApi", Call], Reply]


@dataclass(frozen=True)
class Route:
    """One endpoint: ``template`` segments match literally, ``{name}`` matches any one segment.

    ``name`` is the key counted in :attr:`FlowApi.stats`; ``guarded`` routes need a bearer token
    and spend the token's rate limit.
    """

    method: str
    template: str
    name: str
    handler: Handler
    guarded: bool = True

    def match(self, method: str, segments: list[str]) -> dict[str, str] | None:
        """The placeholder values if this route serves ``method`` on ``segments``."""
        pattern = [part for part in self.template.split("/") if part]
        if method != self.method or len(pattern) != len(segments):
            return None
        params: dict[str, str] = {}
        for part, segment in zip(pattern, segments, strict=True):
            if part.startswith("{"):
                params[part.strip("{}")] = segment
            elif part != segment:
                return None
        return params


@dataclass
class _Execution:
    id: str
    name: str
    flow: SandboxFlow
    started: float  # monotonic
    launched_at: float  # wall clock
    #: ``None`` when the execution is going to fail.
    output: dict[str, Any] | None


@dataclass
class _Window:
    start: float
    count: int = 0


class FlowApi:
    """The sandbox's state and routes. Thread-safe: every critical section is tiny.

    The settings have no defaults here: :class:`Sandbox` holds them, in one place.

    ``clock`` (monotonic seconds) times token expiry, rate-limit windows and executions;
    ``wall_clock`` (epoch seconds) dates what the replies show. Both default to the real clocks.
    """

    def __init__(
        self,
        flows: Iterable[SandboxFlow],
        *,
        client_id: str,
        client_secret: str,
        rate_limit_per_minute: int,
        token_ttl: int,
        execution_seconds: float,
        seed: int | None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.flows = {flow.id: flow for flow in flows}
        self.client_id = client_id
        self.client_secret = client_secret
        self.rate_limit = rate_limit_per_minute
        self.token_ttl = token_ttl
        self.execution_seconds = execution_seconds
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._checkers = {flow.id: InputChecker(flow.input_schema) for flow in self.flows.values()}
        self._tokens: dict[str, float] = {}
        self._windows: dict[str, _Window] = {}
        self._executions: OrderedDict[str, _Execution] = OrderedDict()
        self._stats: Counter[str] = Counter()

    # -- the edges' entry points ----------------------------------------------------------------

    def handle(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes | None
    ) -> Reply:
        """Answer one request. Never raises: a failure of the sandbox itself is a 500 reply.

        ``body`` is ``None`` when the edge did not read it because it was far too large.
        """
        correlation_id = str(uuid.uuid4())
        parts = urlsplit(target)
        call = Call(
            method=method,
            target=target,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={name.lower(): value for name, value in headers.items()},
            body=body,
            correlation_id=correlation_id,
        )
        try:
            reply = self._route(call)
        except Refused as refused:
            reply = refused.reply
        except Exception:
            _log.exception("sandbox handler failed")
            reply = Reply.error(errors.INTERNAL_ERROR.body(correlation_id))
        return self._sent(reply, correlation_id)

    def refuse(self, status: int, message: str) -> Reply:
        """The reply to a request the edge could not read (bad framing, bad request line).

        In the platform's error shape and counted like any other reply.
        """
        correlation_id = str(uuid.uuid4())
        body = errors.error_body(status, errors.generic_code(status), message, correlation_id)
        return self._sent(Reply.error(body), correlation_id)

    # -- what the Sandbox exposes ---------------------------------------------------------------

    @property
    def stats(self) -> dict[str, int]:
        """``requests``; one key per route name, ``other``; one ``status_<code>`` per status."""
        with self._lock:
            return dict(self._stats)

    def issue_token(self) -> str:
        """A new valid bearer token, shaped like a JWT so that redaction of JWTs gets exercised."""
        claims = {
            "iss": "flowscope-sandbox",
            "sub": self.client_id,
            "jti": str(uuid.uuid4()),
            "exp": int(self._wall_clock() + self.token_ttl),
        }
        token = ".".join(
            _b64url(part)
            for part in (
                _compact({"alg": "HS256", "typ": "JWT"}),
                _compact(claims),
                uuid.uuid4().bytes + uuid.uuid4().bytes,
            )
        )
        with self._lock:
            self._tokens[token] = self._clock() + self.token_ttl
        return token

    def reset_rate_limit(self) -> None:
        """Forget every rate-limit window (API and token endpoint)."""
        with self._lock:
            self._windows.clear()

    # -- routing and the one guard ----------------------------------------------------------------

    def _route(self, call: Call) -> Reply:
        segments = [unquote(segment) for segment in call.path.split("/") if segment]
        for route in ROUTES:
            params = route.match(call.method, segments)
            if params is None:
                continue
            self._count(route.name)
            call = replace(call, params=params)
            if route.guarded:
                return self._guarded(route.handler, call)
            return route.handler(self, call)
        self._count("other")
        message = f"Resource not found: {call.method} {call.path}"
        raise Refused.error(errors.not_found(message, call.correlation_id))

    def _guarded(self, handler: Handler, call: Call) -> Reply:
        """Bearer token first, then the token's rate limit, then the route; its reply, refusals
        included, carries the rate-limit headers."""
        token = self._authorize(call)
        limits = self._spend(f"api:{token}", self.rate_limit, "org.app.user.rate.per.minute", call)
        try:
            reply = handler(self, replace(call, token=token))
        except Refused as refused:
            reply = refused.reply
        return reply.with_headers(*limits)

    def _authorize(self, call: Call) -> str:
        scheme, _, token = call.headers.get("authorization", "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Refused.error(errors.AUTHENTICATION_REQUIRED.body(call.correlation_id))
        with self._lock:
            expiry = self._tokens.get(token)
        if expiry is None:
            raise Refused.error(errors.BAD_CREDENTIALS.body(call.correlation_id))
        if self._clock() >= expiry:
            raise Refused.error(errors.CREDENTIALS_EXPIRED.body(call.correlation_id))
        return token

    def _spend(self, key: str, limit: int, limit_key: str, call: Call) -> tuple[Header, ...]:
        """Count one request in ``key``'s fixed one-minute window; the ``inin-ratelimit-*``
        headers when it is within ``limit``, a 429 (``Retry-After`` added) when not."""
        now = self._clock()
        with self._lock:
            window = self._windows.get(key)
            if window is None or now - window.start >= _WINDOW_SECONDS:
                window = self._windows[key] = _Window(now)
            window.count += 1
            count = window.count
            reset = max(1, math.ceil(window.start + _WINDOW_SECONDS - now))
        headers = (
            ("inin-ratelimit-count", str(count)),
            ("inin-ratelimit-allowed", str(limit)),
            ("inin-ratelimit-reset", str(reset)),
        )
        if count <= limit:
            return headers
        body = errors.too_many_requests(limit, reset, limit_key, call.correlation_id)
        raise Refused.error(body, ("Retry-After", str(reset)), *headers)

    def _sent(self, reply: Reply, correlation_id: str) -> Reply:
        self._count("requests", f"status_{reply.status}")
        return replace(reply, headers=(("ININ-Correlation-Id", correlation_id), *reply.headers))

    def _count(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._stats[key] += 1

    def _flow(self, flow_id: str, correlation_id: str, *, show_deleted: bool) -> SandboxFlow:
        flow = self.flows.get(flow_id)
        if flow is None:
            raise Refused.error(errors.not_found(f"Flow {flow_id} not found.", correlation_id))
        if flow.deleted and not show_deleted:
            raise Refused.error(errors.flow_deleted(flow, correlation_id))
        return flow

    def _flow_of(self, call: Call) -> SandboxFlow:
        """The flow a ``GET`` names; ``?deleted=true`` shows a deleted one."""
        show_deleted = (call.query.get("deleted") or [""])[0].lower() == "true"
        return self._flow(call.params["flowId"], call.correlation_id, show_deleted=show_deleted)

    # -- routes ---------------------------------------------------------------------------------

    def token(self, call: Call) -> Reply:
        """``POST /oauth/token``: client credentials, by Basic auth or in the form."""
        limits = self._spend("oauth", _TOKEN_LIMIT_PER_MINUTE, "oauth.token.rate", call)
        form = parse_qs((call.body or b"").decode("utf-8", "replace"))
        client_id, client_secret = _basic_credentials(call.headers.get("authorization", ""))
        if client_id is None:
            # RFC 6749 also allows the credentials in the form; the platform documents Basic.
            client_id = form.get("client_id", [""])[0] or None
            client_secret = form.get("client_secret", [""])[0] or None
        if client_id != self.client_id or client_secret != self.client_secret:
            refusal = errors.oauth_error("invalid_client", "client not found or bad secret")
            return Reply.json(401, refusal)
        grant = (form.get("grant_type") or [""])[0]
        if grant != "client_credentials":
            described = f"grant type {grant!r} is not supported" if grant else "grant_type missing"
            return Reply.json(400, errors.oauth_error("unsupported_grant_type", described))
        document = {
            "access_token": self.issue_token(),
            "token_type": "bearer",
            "expires_in": self.token_ttl,
        }
        return Reply.json(200, document, *limits)

    def launch(self, call: Call) -> Reply:
        """``POST /api/v2/flows/executions``: every check the platform makes, in its order."""
        cid = call.correlation_id
        document = _launch_document(call)
        unknown = [key for key in document if key not in _LAUNCH_KEYS]
        if unknown:
            raise Refused.error(errors.unknown_keys(unknown, cid))
        flow_id = document.get("flowId")
        if flow_id is None:
            raise Refused.error(errors.missing_field("flowId", cid))
        for key in ("flowId", "name"):
            if key in document and not isinstance(document[key], str):
                raise Refused.error(errors.invalid_value(key, "must be a string", cid))
        flow = self._flow(flow_id, cid, show_deleted=False)
        requested = document.get("flowVersion")
        if isinstance(requested, (int, float)) and not isinstance(requested, bool):
            requested = str(requested)  # Jackson would coerce a number to its text
        if requested is not None and requested != flow.version:
            reason = (
                f"version {requested} of flow {flow.name} is not published "
                f"(published: {flow.version})"
            )
            raise Refused.error(errors.invalid_value("flowVersion", reason, cid))
        inputs = document.get("inputData")
        if inputs is None:
            inputs = {}
        if not isinstance(inputs, dict):
            reason = f"must be a JSON object, not {_kind(inputs)}"
            raise Refused.error(errors.invalid_value("inputData", reason, cid))
        problems = self._checkers[flow.id].problems(inputs)
        if problems:
            raise Refused.error(errors.bad_inputs(flow, problems, cid))
        return Reply.json(200, self._start(flow, document.get("name"), inputs))

    def get_execution(self, call: Call) -> Reply:
        """``GET /api/v2/flows/executions/{executionId}``: running, then completed or failed."""
        execution_id = call.params["executionId"]
        with self._lock:
            execution = self._executions.get(execution_id)
        if execution is None:
            message = f"Flow execution {execution_id} not found."
            raise Refused.error(errors.not_found(message, call.correlation_id))
        flow = execution.flow
        result = documents.execution_document(execution.id, execution.name, flow)
        self_uri = result.pop("selfUri")
        result["dateLaunched"] = documents.iso(execution.launched_at)
        if self._clock() - execution.started < self.execution_seconds:
            result["status"] = "RUNNING"
        else:
            completed = execution.launched_at + self.execution_seconds
            result["dateCompleted"] = documents.iso(completed)
            if execution.output is None:
                result["status"] = "FAILED"
                result["flowErrorInfo"] = errors.flow_failed(flow, call.correlation_id)
            else:
                result["status"] = "COMPLETED"
                result["outputData"] = execution.output
        result["selfUri"] = self_uri
        return Reply.json(200, result)

    def get_flow(self, call: Call) -> Reply:
        """``GET /api/v2/flows/{flowId}``."""
        return Reply.json(200, documents.flow_document(self._flow_of(call)))

    def get_versions(self, call: Call) -> Reply:
        """``GET /api/v2/flows/{flowId}/versions``."""
        return Reply.json(200, documents.versions_page(self._flow_of(call)))

    def get_version(self, call: Call) -> Reply:
        """``GET /api/v2/flows/{flowId}/versions/{version}`` (``latest`` names the published)."""
        flow = self._flow_of(call)
        version = call.params["version"]
        if version not in (flow.version, "latest"):
            message = f"Version {version} of flow {flow.id} not found."
            raise Refused.error(errors.not_found(message, call.correlation_id))
        return Reply.json(200, documents.version_document(flow))

    def get_configuration(self, call: Call) -> Reply:
        """``GET /api/v2/flows/{flowId}/latestconfiguration``."""
        return Reply.json(200, documents.configuration_document(self._flow_of(call)))

    def _start(self, flow: SandboxFlow, name: object, inputs: dict[str, Any]) -> dict[str, Any]:
        launched_at = self._wall_clock()
        # Every random draw happens here, in launch order, so a seed replays the same outcomes
        # however the executions are polled.
        with self._lock:
            fails = self._rng.random() < flow.fail_rate
            execution_id = _execution_id(self._rng)
            output = None if fails else make_output(flow.output_schema, inputs, self._rng)
            shown = name if isinstance(name, str) and name else ""
            shown = shown or f"{flow.name} {documents.iso(launched_at)}"
            self._executions[execution_id] = _Execution(
                execution_id, shown, flow, self._clock(), launched_at, output
            )
            if len(self._executions) > _MAX_EXECUTIONS:
                self._executions.popitem(last=False)
        return documents.execution_document(execution_id, shown, flow)


#: Every endpoint, matched in order; the first match serves.
ROUTES: tuple[Route, ...] = (
    Route("POST", "/oauth/token", "token", FlowApi.token, guarded=False),
    Route("POST", "/api/v2/flows/executions", "launch", FlowApi.launch),
    Route("GET", "/api/v2/flows/executions/{executionId}", "get_execution", FlowApi.get_execution),
    Route("GET", "/api/v2/flows/{flowId}", "get_flow", FlowApi.get_flow),
    Route("GET", "/api/v2/flows/{flowId}/versions", "get_flow", FlowApi.get_versions),
    Route("GET", "/api/v2/flows/{flowId}/versions/{version}", "get_flow", FlowApi.get_version),
    Route(
        "GET", "/api/v2/flows/{flowId}/latestconfiguration", "get_flow", FlowApi.get_configuration
    ),
)


def _launch_document(call: Call) -> dict[str, Any]:
    """The launch body as a JSON object, or the 413/415/400 the platform answers instead."""
    cid, body = call.correlation_id, call.body
    if body is None or len(body) > MAX_BODY_BYTES:
        size = "more than 32 MiB" if body is None else f"{len(body)} bytes"
        raise Refused.error(errors.BODY_TOO_LARGE.body(cid, size=size, limit=MAX_BODY_BYTES))
    content_type = call.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        shown = content_type or "none"
        raise Refused.error(errors.UNSUPPORTED_MEDIA_TYPE.body(cid, contentType=shown))
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        message = "Unable to parse request body: it is not valid JSON."
        raise Refused.error(errors.bad_request(message, cid)) from None
    if not isinstance(document, dict):
        message = f"Invalid input: the body must be a JSON object, not {_kind(document)}."
        raise Refused.error(errors.bad_request(message, cid))
    return document


_KINDS = {"null": "null", "boolean": "a boolean", "integer": "a number", "number": "a number"}


def _kind(value: object) -> str:
    """A JSON value's type as a message says it (``an array``)."""
    name = json_type(value)
    return _KINDS.get(name) or ("an " if name[0] in "aeiou" else "a ") + name


def _compact(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _basic_credentials(header: str) -> tuple[str | None, str | None]:
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None, None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    client_id, sep, secret = decoded.partition(":")
    return (client_id, secret) if sep else (None, None)


def _execution_id(rng: random.Random) -> str:
    # Opaque 50-character ids, like the platform's longer execution ids (callers must not
    # assume UUIDs).
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(rng.choice(alphabet) for _ in range(50))

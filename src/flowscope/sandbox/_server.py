"""A loopback HTTP server that answers like the Genesys Cloud flow-execution API.

It serves ``POST /oauth/token``, ``POST /api/v2/flows/executions``,
``GET /api/v2/flows/executions/{id}`` and ``GET /api/v2/flows/{flowId}`` (with ``/versions`` and
``/latestconfiguration``), with the platform's status codes, error-body shape, correlation ids
and rate-limit headers.

The platform's error *codes* are generic and documented; the exact *messages* it returns for each
launch mistake are not published. The messages, ``details`` and ``messageParams`` below are this
sandbox's model of them, close enough to exercise error-body parsing and diagnosis, not a
transcript of production responses.

Stdlib only, and it imports nothing from flowscope: the library must never depend on it, and the
benchmarks need it to cost as little as possible.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import math
import random
import socket
import sys
import threading
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ._flows import InputProblem, SandboxFlow, check_input, default_flows, make_output

__all__ = ["MAX_BODY_BYTES", "Sandbox"]

_log = logging.getLogger("flowscope.sandbox")

#: The platform refuses request bodies larger than this with 413.
MAX_BODY_BYTES = 512_000
#: Bodies up to this size are read and discarded so the connection stays usable; beyond it the
#: sandbox answers 413 and closes the connection instead of reading on.
_DRAIN_LIMIT = 32 * 1024 * 1024
_TOKEN_LIMIT_PER_MINUTE = 300
_WINDOW_SECONDS = 60.0
_MAX_EXECUTIONS = 100_000
_LAUNCH_KEYS = ("flowId", "flowVersion", "inputData", "name")

_Headers = list[tuple[str, str]]


@dataclass
class _Reply:
    status: int
    body: object = None
    headers: _Headers = field(default_factory=list)


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


class _Refused(Exception):
    """Ends request handling early with an error reply."""

    def __init__(self, reply: _Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


class _State:
    """Everything the handlers share, behind one lock (every critical section is tiny)."""

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
    ) -> None:
        self.lock = threading.Lock()
        self.flows = {flow.id: flow for flow in flows}
        self.client_id = client_id
        self.client_secret = client_secret
        self.rate_limit = rate_limit_per_minute
        self.token_ttl = token_ttl
        self.execution_seconds = execution_seconds
        self.rng = random.Random(seed)
        self.tokens: dict[str, float] = {}
        self.windows: dict[str, _Window] = {}
        self.executions: OrderedDict[str, _Execution] = OrderedDict()
        self.stats: Counter[str] = Counter()

    def new_token(self) -> str:
        expires = time.time() + self.token_ttl
        header = {"alg": "HS256", "typ": "JWT"}
        claims = {
            "iss": "flowscope-sandbox",
            "sub": self.client_id,
            "jti": str(uuid.uuid4()),
            "exp": int(expires),
        }
        token = ".".join(
            _b64url(part)
            for part in (
                json.dumps(header, separators=(",", ":")).encode(),
                json.dumps(claims, separators=(",", ":")).encode(),
                uuid.uuid4().bytes + uuid.uuid4().bytes,
            )
        )
        with self.lock:
            self.tokens[token] = time.monotonic() + self.token_ttl
        return token

    def token_state(self, token: str) -> str:
        """``valid``, ``unknown`` or ``expired``."""
        with self.lock:
            expiry = self.tokens.get(token)
        if expiry is None:
            return "unknown"
        return "valid" if time.monotonic() < expiry else "expired"

    def take(self, key: str, limit: int) -> tuple[bool, int, int]:
        """Count one request in ``key``'s fixed one-minute window.

        Returns (allowed, count in window, seconds until the window resets).
        """
        now = time.monotonic()
        with self.lock:
            window = self.windows.get(key)
            if window is None or now - window.start >= _WINDOW_SECONDS:
                window = self.windows[key] = _Window(now)
            window.count += 1
            count = window.count
            reset = max(1, math.ceil(window.start + _WINDOW_SECONDS - now))
        return count <= limit, count, reset

    def count(self, *keys: str) -> None:
        with self.lock:
            for key in keys:
                self.stats[key] += 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: _State, verbose: bool) -> None:
        self.state = state
        self.verbose = verbose
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket, alive: bool) -> None:
        with self._connections_lock:
            if alive:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up mid-request are normal under load; the stdlib would print a
        # traceback to stderr for each.
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            _log.debug("connection from %s ended: %s", client_address, error)
        else:
            _log.exception("sandbox request from %s failed", client_address)

    def drop_connections(self) -> None:
        """Close kept-alive connections so a stopped sandbox stops answering on them too."""
        with self._connections_lock:
            connections = list(self._connections)
            self._connections.clear()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "flowscope-sandbox"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 120  # idle keep-alive connections give their thread back eventually
    server: _Server

    # -- plumbing -------------------------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, alive=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, alive=False)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            _log.info("%s %s", self.address_string(), format % args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Malformed request lines and the like: answer in the platform's shape, not HTML.
        self.close_connection = True
        state = self.server.state
        state.count("requests", f"status_{code}")
        correlation_id = str(uuid.uuid4())
        text = message or HTTPStatus(code).phrase
        self._write(
            _Reply(code, _error(code, _generic_code(code), text, correlation_id)), correlation_id
        )

    def _handle(self) -> None:
        correlation_id = str(uuid.uuid4())
        try:
            body = self._read_body(correlation_id)
            reply = self._route(body, correlation_id)
        except _Refused as refused:
            reply = refused.reply
        except Exception:
            _log.exception("sandbox handler failed")
            self.close_connection = True
            reply = _Reply(
                500,
                _error(500, "internal.server.error", "The sandbox failed.", correlation_id),
            )
        self.server.state.count("requests", f"status_{reply.status}")
        self._write(reply, correlation_id)

    def _write(self, reply: _Reply, correlation_id: str) -> None:
        payload = b"" if reply.body is None else _dumps(reply.body)
        phrase = _phrase(reply.status)
        lines = [
            f"{self.protocol_version} {reply.status} {phrase}",
            f"Date: {self.date_time_string()}",
            f"ININ-Correlation-Id: {correlation_id}",
        ]
        if reply.body is not None:
            lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(payload)}")
        lines.extend(f"{name}: {value}" for name, value in reply.headers)
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        # One write: a second small write would wait on the peer's delayed ACK.
        self.wfile.write(head + payload)
        if self.server.verbose:
            self.log_request(reply.status, len(payload))

    def _read_body(self, correlation_id: str) -> bytes | None:
        """The request body, or ``None`` when it is too large to be worth reading."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(correlation_id)
        length_text = self.headers.get("Content-Length")
        if not length_text:
            return b""
        try:
            length = int(length_text)
        except ValueError:
            self.close_connection = True
            raise _Refused(_bad_request("Invalid Content-Length header.", correlation_id)) from None
        if length < 0:
            self.close_connection = True
            raise _Refused(_bad_request("Invalid Content-Length header.", correlation_id))
        if length > _DRAIN_LIMIT:
            self.close_connection = True
            return None
        return self.rfile.read(length)

    def _read_chunked(self, correlation_id: str) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = self.rfile.readline(1024)
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                raise _Refused(
                    _bad_request("Malformed chunked request body.", correlation_id)
                ) from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > _DRAIN_LIMIT:
                self.close_connection = True
                return None
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)  # the CRLF after each chunk

    # -- routing --------------------------------------------------------------------------------

    def _route(self, body: bytes | None, correlation_id: str) -> _Reply:
        state = self.server.state
        parts = urlsplit(self.path)
        segments = [unquote(s) for s in parts.path.split("/") if s]
        method = self.command
        query = parse_qs(parts.query)

        if method == "POST" and segments == ["oauth", "token"]:
            state.count("token")
            return self._token(body, correlation_id)
        if segments[:3] == ["api", "v2", "flows"]:
            rest = segments[3:]
            if method == "POST" and rest == ["executions"]:
                state.count("launch")
                token = self._authorize(correlation_id)
                limits = self._rate_limit(token, correlation_id)
                reply = self._launch(body, correlation_id)
                reply.headers.extend(limits)
                return reply
            if method == "GET" and len(rest) == 2 and rest[0] == "executions":
                state.count("get_execution")
                token = self._authorize(correlation_id)
                limits = self._rate_limit(token, correlation_id)
                reply = self._get_execution(rest[1], correlation_id)
                reply.headers.extend(limits)
                return reply
            if method == "GET" and rest and rest[0] != "executions":
                state.count("get_flow")
                token = self._authorize(correlation_id)
                limits = self._rate_limit(token, correlation_id)
                reply = self._get_flow(rest, query, correlation_id)
                reply.headers.extend(limits)
                return reply
        state.count("other")
        return _not_found(f"Resource not found: {method} {parts.path}", correlation_id)

    def _authorize(self, correlation_id: str) -> str:
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _Refused(
                _Reply(
                    401,
                    _error(
                        401,
                        "authentication.required",
                        "No authentication bearer token specified in authorization header.",
                        correlation_id,
                    ),
                )
            )
        verdict = self.server.state.token_state(token)
        if verdict == "unknown":
            raise _Refused(
                _Reply(
                    401,
                    _error(401, "bad.credentials", "Invalid login credentials.", correlation_id),
                )
            )
        if verdict == "expired":
            raise _Refused(
                _Reply(
                    401,
                    _error(
                        401,
                        "credentials.expired",
                        "The supplied credentials are expired and cannot be used.",
                        correlation_id,
                    ),
                )
            )
        return token

    def _rate_limit(self, token: str, correlation_id: str) -> _Headers:
        state = self.server.state
        allowed, count, reset = state.take(f"api:{token}", state.rate_limit)
        headers = [
            ("inin-ratelimit-count", str(count)),
            ("inin-ratelimit-allowed", str(state.rate_limit)),
            ("inin-ratelimit-reset", str(reset)),
        ]
        if allowed:
            return headers
        raise _Refused(
            _Reply(
                429,
                _too_many(state.rate_limit, reset, "org.app.user.rate.per.minute", correlation_id),
                [("Retry-After", str(reset)), *headers],
            )
        )

    # -- endpoints ------------------------------------------------------------------------------

    def _token(self, body: bytes | None, correlation_id: str) -> _Reply:
        state = self.server.state
        allowed, count, reset = state.take("oauth", _TOKEN_LIMIT_PER_MINUTE)
        limits = [
            ("inin-ratelimit-count", str(count)),
            ("inin-ratelimit-allowed", str(_TOKEN_LIMIT_PER_MINUTE)),
            ("inin-ratelimit-reset", str(reset)),
        ]
        if not allowed:
            return _Reply(
                429,
                _too_many(_TOKEN_LIMIT_PER_MINUTE, reset, "oauth.token.rate", correlation_id),
                [("Retry-After", str(reset)), *limits],
            )
        form = parse_qs((body or b"").decode("utf-8", "replace"))
        client_id, client_secret = _basic_credentials(self.headers.get("Authorization", ""))
        if client_id is None:
            # RFC 6749 also allows the credentials in the form; the platform documents Basic.
            client_id = form.get("client_id", [""])[0] or None
            client_secret = form.get("client_secret", [""])[0] or None
        if client_id != state.client_id or client_secret != state.client_secret:
            return _Reply(401, _oauth_error("invalid_client", "client not found or bad secret"))
        grant = (form.get("grant_type") or [""])[0]
        if grant != "client_credentials":
            described = f"grant type {grant!r} is not supported" if grant else "grant_type missing"
            return _Reply(400, _oauth_error("unsupported_grant_type", described))
        return _Reply(
            200,
            {
                "access_token": state.new_token(),
                "token_type": "bearer",
                "expires_in": state.token_ttl,
            },
            limits,
        )

    def _launch(self, body: bytes | None, correlation_id: str) -> _Reply:
        state = self.server.state
        if body is None or len(body) > MAX_BODY_BYTES:
            size = "more than 32 MiB" if body is None else f"{len(body)} bytes"
            return _Reply(
                413,
                _error(
                    413,
                    "request.entity.too.large",
                    f"The request body is too large ({size}); the limit is {MAX_BODY_BYTES} bytes.",
                    correlation_id,
                    message_with_params="The request body is over the limit of {limit} bytes.",
                    params={"limit": str(MAX_BODY_BYTES)},
                ),
            )
        content_type = self.headers.get("Content-Type", "")
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type != "application/json":
            shown = content_type or "none"
            return _Reply(
                415,
                _error(
                    415,
                    "unsupported.media.type",
                    f"Unsupported Media Type: {shown}. Send the body as application/json.",
                    correlation_id,
                    message_with_params="Unsupported Media Type: {contentType}",
                    params={"contentType": shown},
                ),
            )
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return _Reply(
                400,
                _error(
                    400,
                    "bad.request",
                    "Unable to parse request body: it is not valid JSON.",
                    correlation_id,
                ),
            )
        if not isinstance(document, dict):
            return _Reply(
                400,
                _error(
                    400,
                    "bad.request",
                    f"Invalid input: the body must be a JSON object, not {_kind(document)}.",
                    correlation_id,
                ),
            )
        unknown = [key for key in document if key not in _LAUNCH_KEYS]
        if unknown:
            return _Reply(400, _unknown_keys(unknown, correlation_id))

        flow_id = document.get("flowId")
        if flow_id is None:
            return _Reply(
                400,
                _error(
                    400,
                    "bad.request",
                    "Invalid input: flowId is required.",
                    correlation_id,
                    details=[{"errorCode": "MISSING_FIELD", "fieldName": "flowId"}],
                ),
            )
        for key in ("flowId", "name"):
            if key in document and not isinstance(document[key], str):
                return _Reply(400, _invalid_value(key, "must be a string", correlation_id))
        flow = state.flows.get(flow_id)
        if flow is None:
            return _not_found(f"Flow {flow_id} not found.", correlation_id)
        if flow.deleted:
            return _Reply(410, _flow_deleted(flow, correlation_id))
        requested = document.get("flowVersion")
        if requested is not None:
            if isinstance(requested, (int, float)) and not isinstance(requested, bool):
                requested = str(requested)  # Jackson would coerce a number to its text
            if requested != flow.version:
                return _Reply(
                    400,
                    _invalid_value(
                        "flowVersion",
                        f"version {requested} of flow {flow.name} is not published "
                        f"(published: {flow.version})",
                        correlation_id,
                    ),
                )
        inputs = document.get("inputData")
        if inputs is None:
            inputs = {}
        if not isinstance(inputs, dict):
            return _Reply(
                400,
                _invalid_value(
                    "inputData", f"must be a JSON object, not {_kind(inputs)}", correlation_id
                ),
            )
        problems = check_input(flow.input_schema, inputs)
        if problems:
            return _Reply(400, _bad_inputs(flow, problems, correlation_id))

        launched_at = time.time()
        name = document.get("name") or f"{flow.name} {_iso(launched_at)}"
        # Every random draw happens here, in launch order, so a seed replays the same outcomes
        # however the executions are polled.
        with state.lock:
            fails = state.rng.random() < flow.fail_rate
            execution_id = _execution_id(state.rng)
            output = None if fails else make_output(flow.output_schema, inputs, state.rng)
            state.executions[execution_id] = _Execution(
                execution_id, name, flow, time.monotonic(), launched_at, output
            )
            if len(state.executions) > _MAX_EXECUTIONS:
                state.executions.popitem(last=False)
        return _Reply(
            200,
            {
                "id": execution_id,
                "name": name,
                "flowVersion": _version_ref(flow),
                "selfUri": f"/api/v2/flows/executions/{execution_id}",
            },
        )

    def _get_execution(self, execution_id: str, correlation_id: str) -> _Reply:
        state = self.server.state
        with state.lock:
            execution = state.executions.get(execution_id)
        if execution is None:
            return _not_found(f"Flow execution {execution_id} not found.", correlation_id)
        flow = execution.flow
        result: dict[str, Any] = {
            "id": execution.id,
            "name": execution.name,
            "flowVersion": _version_ref(flow),
            "dateLaunched": _iso(execution.launched_at),
        }
        if time.monotonic() - execution.started < state.execution_seconds:
            result["status"] = "RUNNING"
        else:
            result["dateCompleted"] = _iso(execution.launched_at + state.execution_seconds)
            if execution.output is None:
                result["status"] = "FAILED"
                result["flowErrorInfo"] = _error(
                    500,
                    "internal.server.error",
                    f"Flow {flow.name} failed: a data action returned an error.",
                    correlation_id,
                    message_with_params="Flow {flowName} failed: a data action returned an error.",
                    params={"flowName": flow.name},
                    details=[{"errorCode": "DATA_ACTION_FAILED", "entityId": flow.id}],
                )
            else:
                result["status"] = "COMPLETED"
                result["outputData"] = execution.output
        result["selfUri"] = f"/api/v2/flows/executions/{execution.id}"
        return _Reply(200, result)

    def _get_flow(
        self, rest: list[str], query: Mapping[str, list[str]], correlation_id: str
    ) -> _Reply:
        flow = self.server.state.flows.get(rest[0])
        if flow is None:
            return _not_found(f"Flow {rest[0]} not found.", correlation_id)
        if flow.deleted and (query.get("deleted") or [""])[0].lower() != "true":
            return _Reply(410, _flow_deleted(flow, correlation_id))
        tail = rest[1:]
        if not tail:
            return _Reply(200, _flow_document(flow))
        if tail == ["versions"]:
            return _Reply(
                200,
                {
                    "entities": [_version_document(flow)],
                    "pageSize": 25,
                    "pageNumber": 1,
                    "total": 1,
                    "pageCount": 1,
                },
            )
        if len(tail) == 2 and tail[0] == "versions":
            if tail[1] not in (flow.version, "latest"):
                return _not_found(f"Version {tail[1]} of flow {flow.id} not found.", correlation_id)
            return _Reply(200, _version_document(flow))
        if tail == ["latestconfiguration"]:
            return _Reply(200, _configuration_document(flow))
        return _not_found(f"Resource not found: GET {self.path}", correlation_id)


class Sandbox:
    """The flow API on a loopback port, served from a background thread.

    ``port=0`` picks a free port when :meth:`start` binds. Use it as a context manager so the
    socket is always released::

        with Sandbox(seed=1) as sandbox:
            httpx.post(f"{sandbox.url}/oauth/token", ...)
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        flows: Iterable[SandboxFlow] | None = None,
        client_id: str = "sandbox-client",
        client_secret: str = "sandbox-secret",
        rate_limit_per_minute: int = 3000,
        token_ttl: int = 86400,
        execution_seconds: float = 0.3,
        seed: int | None = None,
        verbose: bool = False,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.client_id = client_id
        self.client_secret = client_secret
        self.verbose = verbose
        self._state = _State(
            default_flows() if flows is None else flows,
            client_id=client_id,
            client_secret=client_secret,
            rate_limit_per_minute=rate_limit_per_minute,
            token_ttl=token_ttl,
            execution_seconds=execution_seconds,
            seed=seed,
        )
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port once started (the requested one before)."""
        if self._server is not None:
            return int(self._server.server_address[1])
        return self._requested_port

    @property
    def url(self) -> str:
        """Base URL for both the API and the token endpoint, e.g. ``http://127.0.0.1:53211``."""
        if self._server is None and self._requested_port == 0:
            raise RuntimeError("the sandbox picks its port when started; call start() first")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def flows(self) -> list[SandboxFlow]:
        """The flows this sandbox serves."""
        return list(self._state.flows.values())

    @property
    def stats(self) -> dict[str, int]:
        """A snapshot of what was served.

        ``requests``; one key per route (``token``, ``launch``, ``get_execution``, ``get_flow``,
        ``other``); one ``status_<code>`` per status sent.
        """
        with self._state.lock:
            return dict(self._state.stats)

    def start(self) -> Sandbox:
        """Bind and serve in a daemon thread; returns ``self`` so it chains."""
        if self._server is not None:
            raise RuntimeError("sandbox already started")
        server = _Server((self.host, self._requested_port), self._state, self.verbose)
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"flowscope-sandbox-{server.server_address[1]}",
            daemon=True,
        )
        self._server, self._thread = server, thread
        thread.start()
        _log.debug("sandbox listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving, close the listening socket and every open connection, join the thread."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.drop_connections()
        if thread is not None:
            thread.join()
        self._server = self._thread = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def issue_token(self) -> str:
        """A valid bearer token, without the HTTP round trip or the token rate limit."""
        return self._state.new_token()

    def reset_rate_limit(self) -> None:
        """Forget every rate-limit window (API and token endpoint)."""
        with self._state.lock:
            self._state.windows.clear()


# -- bodies ---------------------------------------------------------------------------------------


def _error(
    status: int,
    code: str,
    message: str,
    correlation_id: str,
    *,
    message_with_params: str | None = None,
    params: Mapping[str, str] | None = None,
    details: list[dict[str, Any]] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "message": message,
        "code": code,
        "status": status,
        "messageWithParams": message_with_params or message,
        "messageParams": dict(params or {}),
        "contextId": correlation_id,
        "details": details or [],
        "errors": errors or [],
    }


def _generic_code(status: int) -> str:
    return {
        400: "bad.request",
        401: "authentication.required",
        404: "not.found",
        408: "request.timeout",
        413: "request.entity.too.large",
        415: "unsupported.media.type",
        429: "too.many.requests",
        503: "service.unavailable",
    }.get(status, "bad.request" if status < 500 else "internal.server.error")


def _bad_request(message: str, correlation_id: str) -> _Reply:
    return _Reply(400, _error(400, "bad.request", message, correlation_id))


def _not_found(message: str, correlation_id: str) -> _Reply:
    return _Reply(404, _error(404, "not.found", message, correlation_id))


def _oauth_error(error: str, description: str) -> dict[str, str]:
    return {"error": error, "description": description, "error_description": description}


def _too_many(limit: int, reset: int, key: str, correlation_id: str) -> dict[str, Any]:
    body = _error(
        429,
        "too.many.requests",
        f"Rate limit exceeded the maximum of {limit} requests in 60 seconds. "
        f"Retry the request in {reset} seconds.",
        correlation_id,
        message_with_params="Rate limit exceeded the maximum of {limit} requests in 60 seconds.",
        params={"limit": str(limit), "retryAfter": str(reset)},
    )
    body["limit"] = {"key": key, "namespace": "platform.api", "value": limit}
    return body


def _unknown_keys(keys: list[str], correlation_id: str) -> dict[str, Any]:
    details = [{"errorCode": "UNRECOGNIZED_FIELD", "fieldName": key} for key in keys]
    first = keys[0]
    nested = _error(
        400,
        "invalid.value",
        f'Unrecognized field "{first}": a launch body takes only '
        "flowId, flowVersion, inputData and name.",
        correlation_id,
        message_with_params='Unrecognized field "{field}"',
        params={"field": first},
        details=[details[0]],
    )
    return _error(
        400,
        "bad.request",
        "Invalid input",
        correlation_id,
        message_with_params="Invalid input: unrecognized field(s) {fields}",
        params={"fields": ", ".join(keys)},
        details=details,
        errors=[nested],
    )


def _invalid_value(field_name: str, reason: str, correlation_id: str) -> dict[str, Any]:
    return _error(
        400,
        "invalid.value",
        f"Invalid value for {field_name}: {reason}.",
        correlation_id,
        message_with_params="Invalid value for {field}",
        params={"field": field_name},
        details=[{"errorCode": "INVALID_VALUE", "fieldName": field_name}],
    )


def _bad_inputs(
    flow: SandboxFlow, problems: list[InputProblem], correlation_id: str
) -> dict[str, Any]:
    fields = [f"inputData.{problem.key}" for problem in problems]
    nested = [
        _error(
            400,
            "invalid.value",
            problem.message,
            correlation_id,
            message_with_params="Invalid value for {field}",
            params={"field": field_name},
            details=[{"errorCode": problem.error_code, "fieldName": field_name}],
        )
        for problem, field_name in zip(problems, fields, strict=True)
    ]
    return _error(
        400,
        "invalid.value",
        f"The input data does not match the input schema of flow {flow.name} "
        f"version {flow.version}: {'; '.join(problem.message for problem in problems)}.",
        correlation_id,
        message_with_params="Invalid input data for flow {flowId} version {flowVersion}: {fields}",
        params={"flowId": flow.id, "flowVersion": flow.version, "fields": ", ".join(fields)},
        details=[
            {"errorCode": problem.error_code, "fieldName": field_name}
            for problem, field_name in zip(problems, fields, strict=True)
        ],
        errors=nested,
    )


def _flow_deleted(flow: SandboxFlow, correlation_id: str) -> dict[str, Any]:
    body = _error(
        410,
        "architect.flow.deleted",
        f"Flow {flow.name} ({flow.id}) has been deleted.",
        correlation_id,
        message_with_params="Flow {flowId} has been deleted.",
        params={"flowId": flow.id},
    )
    body["entityId"] = flow.id
    body["entityName"] = flow.name
    return body


def _version_ref(flow: SandboxFlow) -> dict[str, str]:
    return {
        "id": flow.version,
        "name": flow.version,
        "selfUri": f"/api/v2/flows/{flow.id}/versions/{flow.version}",
    }


def _flow_document(flow: SandboxFlow) -> dict[str, Any]:
    return {
        "id": flow.id,
        "name": flow.name,
        "type": "workflow",
        "active": not flow.deleted,
        "deleted": flow.deleted,
        "publishedVersion": _version_ref(flow),
        "selfUri": f"/api/v2/flows/{flow.id}",
    }


def _version_document(flow: SandboxFlow) -> dict[str, Any]:
    return {
        "id": flow.version,
        "name": flow.version,
        "commitVersion": flow.version,
        "configurationVersion": flow.version,
        "type": "PUBLISH",
        "secure": False,
        "debug": False,
        "inputSchema": flow.input_schema,
        "outputSchema": flow.output_schema,
        "flow": {"id": flow.id, "name": flow.name, "selfUri": f"/api/v2/flows/{flow.id}"},
        "selfUri": f"/api/v2/flows/{flow.id}/versions/{flow.version}",
    }


def _configuration_document(flow: SandboxFlow) -> dict[str, Any]:
    inputs = set(flow.input_schema.get("properties") or {})
    outputs = set(flow.output_schema.get("properties") or {})
    variables = [
        {"name": name, "isInput": name in inputs, "isOutput": name in outputs}
        for name in sorted(inputs | outputs)
    ]
    return {
        "id": flow.id,
        "name": flow.name,
        "type": "workflow",
        "version": flow.version,
        "variables": variables,
        "inputSchema": flow.input_schema,
        "outputSchema": flow.output_schema,
    }


# -- small helpers --------------------------------------------------------------------------------


def _dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


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


def _iso(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""

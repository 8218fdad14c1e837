"""What to do next when a flow call fails for a reason other than its payload.

The payload hints (``_hints``) read what was sent; these read what came back and what flowscope
has seen earlier in this process: the tokens the token endpoint issued, the flow types
``GET /api/v2/flows/{id}`` named, the hosts each flow answered on, and how many calls went to
each host. A hint says only what the call or that memory showed; a fact it lacks is left out,
never guessed. Pure: no httpx, no OpenTelemetry. :class:`AdviceMemory` is the only state, bounded
and thread-safe; :func:`advise` is a function of a :class:`FailedCall` and a memory.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ._hints import Hint
from ._vocabulary import printable

__all__ = [
    "ADVICE_CODES",
    "LAUNCHABLE_FLOW_TYPES",
    "NOT_LAUNCHABLE_FLOW_TYPES",
    "OPERATION_PERMISSIONS",
    "AdviceMemory",
    "FailedCall",
    "RateLimitView",
    "TokenSeen",
    "advise",
    "shared_memory",
]

#: Every code :func:`advise` gives, stable across releases (the README's hint table lists them).
ADVICE_CODES: tuple[str, ...] = (
    "auth-token-invalid",
    "auth-client-invalid",
    "permission-missing",
    "flow-not-found",
    "flow-deleted",
    "flow-type-not-launchable",
    "rate-limited",
    "server-error",
)

#: The permission each operation needs (the platform's names).
OPERATION_PERMISSIONS: Mapping[str, str] = {
    "launch": "architect:flow:launch",
    "get_execution": "architect:flowExecution:view",
    "get_flow": "architect:flow:view",
}

#: Flow types (``GET /api/v2/flows/{id}`` ``type``, any case) the launch API starts.
LAUNCHABLE_FLOW_TYPES = frozenset({"workflow"})
#: Flow types that start with an interaction or are called from other flows, never launched on
#: their own. A type in neither set (a new one) gets no hint: flowscope does not know.
NOT_LAUNCHABLE_FLOW_TYPES = frozenset(
    {
        "inboundcall",
        "inboundchat",
        "inboundemail",
        "inboundshortmessage",
        "inqueuecall",
        "inqueueemail",
        "inqueueshortmessage",
        "outboundcall",
        "securecall",
        "bot",
        "digitalbot",
        "voice",
        "voicemail",
        "voicesurvey",
        "surveyinvite",
        "speech",
        "commonmodule",
    }
)

_TOKEN_LIFETIME_FACT = (
    "client-credentials tokens live for the token reply's expires_in "
    "(86,400 s by default, set per OAuth client)"
)
_NEW_TOKEN = (
    "get a new one with POST /oauth/token (grant_type=client_credentials) and retry, and renew "
    "tokens before their expires_in runs out"
)
_OAUTH_CLIENT_CODES = frozenset({"invalid_client", "unauthorized_client"})
_PERMISSION = re.compile(r"\b[A-Za-z][A-Za-z0-9]*:[A-Za-z*][A-Za-z0-9*]*:[A-Za-z*][A-Za-z0-9*]*\b")
_WINDOW_WORDS = {"second": 1.0, "minute": 60.0, "hour": 3600.0}
_PER_WINDOW = re.compile(r"per[._-]?(second|minute|hour)\b", re.IGNORECASE)
_LAUNCH_TEMPLATE = "/api/v2/flows/executions"
_MAX_SHOWN = 80
_MAX_PERMISSIONS = 5


# -- what one call showed ---------------------------------------------------------------------


class RateLimitView(Protocol):
    """What :func:`advise` reads of a rate-limit reading: any object with these three fields."""

    @property
    def allowed(self) -> int | None: ...
    @property
    def count(self) -> int | None: ...
    @property
    def reset_s(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class FailedCall:
    """What a failed flow call showed, as it came: nothing here is redacted, nothing leaves.

    ``flow_id`` is ``None`` when the call named none (a sentinel); ``bearer`` is the token the
    call sent (``""`` for an Authorization header that is not a bearer token, ``None`` for
    none); ``at`` is when it was sent, on the memory's clock.
    """

    operation: str
    template: str
    host: str
    status: int
    at: float
    error_code: str | None = None
    message: str | None = None
    message_params: Mapping[str, str] = field(default_factory=dict)
    #: The error body's ``limit`` object (``key``, ``namespace``, ``value``) on a 429.
    limit: Mapping[str, Any] | None = None
    entity_name: str | None = None
    retry_after: str | None = None
    rate_limit: RateLimitView | None = None
    flow_id: str | None = None
    flow_version: str | None = None
    bearer: str | None = None


# -- what flowscope has seen --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenSeen:
    """A token flowscope saw issued: when (memory clock), for how long, by which host."""

    issued_at: float
    expires_in: float
    host: str


class AdviceMemory:
    """What earlier calls in this process showed, for the hints of later ones.

    Bounded (oldest forgotten first) and thread-safe. Tokens are kept as a keyed hash, never
    as the token: the key is random per memory, so the hash is no stable fingerprint either.
    """

    def __init__(
        self,
        *,
        max_tokens: int = 1024,
        max_flows: int = 10_000,
        max_hosts: int = 64,
        max_window_s: int = 300,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._key = os.urandom(16)
        self._lock = threading.Lock()
        self._max_tokens = max_tokens
        self._max_flows = max_flows
        self._max_hosts = max_hosts
        self._max_window = max_window_s
        self._tokens: OrderedDict[bytes, TokenSeen] = OrderedDict()
        self._types: OrderedDict[str, str] = OrderedDict()
        self._hosts: OrderedDict[str, tuple[str, ...]] = OrderedDict()
        #: host -> per-second buckets ``[second, calls]``, oldest first.
        self._calls: OrderedDict[str, deque[list[int]]] = OrderedDict()

    def now(self) -> float:
        """The memory's clock (monotonic seconds)."""
        return self._clock()

    def _digest(self, token: str) -> bytes:
        return hmac.new(self._key, token.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()

    def token_issued(self, token: str, expires_in: float, host: str) -> None:
        """The token endpoint ``host`` issued ``token`` for ``expires_in`` seconds, just now."""
        seen = TokenSeen(self._clock(), expires_in, host)
        digest = self._digest(token)
        with self._lock:
            _put(self._tokens, digest, seen, self._max_tokens)

    def token(self, token: str) -> TokenSeen | None:
        """How flowscope saw ``token`` issued, or ``None`` if it did not."""
        digest = self._digest(token)
        with self._lock:
            return self._tokens.get(digest)

    def flow_type(self, flow_id: str, flow_type: str) -> None:
        """``GET /api/v2/flows/{flow_id}`` said the flow is of type ``flow_type``."""
        with self._lock:
            _put(self._types, flow_id, flow_type, self._max_flows)

    def type_of(self, flow_id: str) -> str | None:
        """The flow's type as last seen, or ``None``."""
        with self._lock:
            return self._types.get(flow_id)

    def flow_answered(self, flow_id: str, host: str) -> None:
        """A call about ``flow_id`` succeeded on ``host`` (up to 4 hosts kept per flow)."""
        with self._lock:
            hosts = self._hosts.get(flow_id, ())
            if hosts[-1:] == (host,):
                self._hosts.move_to_end(flow_id)
                return
            kept = (*(h for h in hosts if h != host), host)[-4:]
            _put(self._hosts, flow_id, kept, self._max_flows)

    def hosts_of(self, flow_id: str) -> tuple[str, ...]:
        """The hosts ``flow_id`` answered on, most recent last."""
        with self._lock:
            return self._hosts.get(flow_id, ())

    def call_made(self, host: str) -> float:
        """Count one call to ``host`` now; returns now (memory clock)."""
        now = self._clock()
        second = math.floor(now)
        with self._lock:
            buckets = self._calls.get(host)
            if buckets is None:
                buckets = deque()
                _put(self._calls, host, buckets, self._max_hosts)
            if buckets and buckets[-1][0] == second:
                buckets[-1][1] += 1
            else:
                buckets.append([second, 1])
            while buckets and buckets[0][0] <= second - self._max_window:
                buckets.popleft()
        return now

    def calls_within(self, host: str, seconds: float, at: float) -> int | None:
        """Calls to ``host`` in the ``seconds`` up to ``at`` (whole seconds; the current one
        counts); ``None`` when the window is longer than the memory keeps."""
        if seconds > self._max_window:
            return None
        start = math.floor(at) - math.ceil(seconds) + 1
        with self._lock:
            buckets = self._calls.get(host)
            if buckets is None:
                return 0
            return sum(calls for second, calls in buckets if start <= second <= at)


def _put(store: OrderedDict[Any, Any], key: Any, value: Any, bound: int) -> None:
    store[key] = value
    store.move_to_end(key)
    while len(store) > bound:
        store.popitem(last=False)


_SHARED = AdviceMemory()


def shared_memory() -> AdviceMemory:
    """The memory every instrumented client in the process shares (a token fetched on one
    client and used on another is still recognised)."""
    return _SHARED


# -- the hints ----------------------------------------------------------------------------------


def advise(call: FailedCall, memory: AdviceMemory) -> list[Hint]:
    """The hints for a failed call, from what it showed and what ``memory`` holds (at most one
    per code; none for a status this module has nothing true to say about)."""
    status = call.status
    if status < 400:
        return []
    hint: Hint | None = None
    if call.operation == "token":
        if status == 401 or (status == 400 and call.error_code in _OAUTH_CLIENT_CODES):
            hint = _client_invalid(call)
    elif status == 401:
        hint = _token_invalid(call, memory)
    elif status == 403:
        hint = _permission_missing(call)
    elif status == 404:
        hint = _flow_not_found(call, memory)
    elif status == 410:
        hint = _flow_deleted(call)
    if status == 429:
        hint = _rate_limited(call, memory)
    elif status >= 500:
        hint = _server_error(call)
    hints = [hint] if hint is not None else []
    not_launchable = _type_not_launchable(call, memory)
    if not_launchable is not None:
        hints.append(not_launchable)
    return hints


def _client_invalid(call: FailedCall) -> Hint:
    said = f" ({_show(call.error_code)})" if call.error_code else ""
    return Hint(
        "auth-client-invalid",
        f"the token endpoint on {call.host} refused the client credentials{said}: check the "
        "OAuth client's id and secret (Admin > Integrations > OAuth, grant type Client "
        f"Credentials), and that {call.host} is the login host of the org's region (an org "
        "on api.mypurecloud.ie gets its tokens from login.mypurecloud.ie); then request the "
        "token again",
    )


def _token_invalid(call: FailedCall, memory: AdviceMemory) -> Hint:
    said = (
        f"the API refused the call's token ({_show(call.error_code)})"
        if call.error_code
        else ("the API refused the call's token")
    )
    if call.bearer is None:
        return Hint(
            "auth-token-invalid",
            "the call carried no Authorization header: send 'Authorization: Bearer "
            f"<access_token>'; {_TOKEN_LIFETIME_FACT}; get one with POST /oauth/token "
            "(grant_type=client_credentials)",
        )
    if not call.bearer:
        return Hint(
            "auth-token-invalid",
            f"{said}: its Authorization header is not 'Bearer <access_token>'; "
            f"{_TOKEN_LIFETIME_FACT}; get one with POST /oauth/token "
            "(grant_type=client_credentials)",
        )
    seen = memory.token(call.bearer)
    if seen is None:
        fact = (
            "flowscope did not see this token issued (another client or process fetched it), "
            "so it cannot tell whether it had expired"
        )
    else:
        age = max(0.0, call.at - seen.issued_at)
        issued = (
            f"flowscope saw this token issued {_duration(age)} before this call with "
            f"expires_in {_duration(seen.expires_in)}"
        )
        if age >= seen.expires_in:
            late = age - seen.expires_in
            fact = f"{issued}: it had passed its expires_in " + (
                f"{_duration(late)} earlier" if late >= 1 else "when the call was sent"
            )
        else:
            fact = f"{issued}, so it had not yet passed its expires_in"
            other = _other_region(seen.host, call.host)
            if other:
                fact += (
                    f"; it was issued by {seen.host} but sent to {call.host}: a token works "
                    "only in the region whose login host issued it"
                )
            else:
                fact += ": a token refused before its expiry was revoked, or belongs to another org"
    return Hint("auth-token-invalid", f"{said}; {fact}. {_cap(_TOKEN_LIFETIME_FACT)}: {_NEW_TOKEN}")


def _permission_missing(call: FailedCall) -> Hint:
    named = _permissions_named(call)
    needed = OPERATION_PERMISSIONS.get(call.operation)
    where = (
        "add it to a role granted to the OAuth client (Admin > Roles / Permissions, then the "
        "client's Roles tab), in the division that holds the flow, then retry"
    )
    if named:
        shown = ", ".join(named)
        plural = "them" if len(named) > 1 else "it"
        message = (
            f"the OAuth client lacks a permission for this call: the error names {shown}; "
            + where.replace("add it", f"add {plural}")
        )
    elif needed is not None:
        message = (
            f"the OAuth client lacks a permission for this call; the error names none, and a "
            f"{call.operation} needs {needed}: {where}"
        )
    else:
        message = (
            "the OAuth client lacks a permission for this call and the error names none: "
            "compare the client's roles with the permissions the endpoint documents"
        )
    return Hint("permission-missing", message)


def _permissions_named(call: FailedCall) -> list[str]:
    found: dict[str, None] = {}
    for value in call.message_params.values():
        found.update(dict.fromkeys(_PERMISSION.findall(str(value))))
    if not found and call.message:
        found.update(dict.fromkeys(_PERMISSION.findall(call.message)))
    return [_show(name) for name in list(found)[:_MAX_PERMISSIONS]]


def _flow_not_found(call: FailedCall, memory: AdviceMemory) -> Hint | None:
    flow_id = call.flow_id
    if flow_id is None:
        return None
    if call.operation == "launch":
        if call.template != _LAUNCH_TEMPLATE:
            return None  # a launch on another path: the payload hints say where the id goes
    elif call.operation != "get_flow":
        return None
    shown = _show(flow_id)
    hosts = memory.hosts_of(flow_id)
    others = [host for host in hosts if host != call.host]
    if others:
        there = others[-1]
        return Hint(
            "flow-not-found",
            f"flow {shown} is not found on {call.host}, but flowscope saw it answer on {there}: "
            f"the org is there; send the call to {there}, the API host of the org's region",
        )
    version = call.flow_version if "{versionId}" in call.template else None
    if version is not None and call.host in hosts:
        return Hint(
            "flow-not-found",
            f"flow {shown} answered on {call.host} before, but version {_show(version)} is not "
            f"found: list the versions with GET /api/v2/flows/{shown}/versions and use one of "
            "them",
        )
    return Hint(
        "flow-not-found",
        f"no flow {shown} is found in the org on {call.host}: check the id (in Architect, the "
        "UUID in the flow's page address; or GET /api/v2/flows?name=<name>) and that "
        f"{call.host} is the API host of the org's region",
    )


def _flow_deleted(call: FailedCall) -> Hint | None:
    if call.operation not in ("launch", "get_flow") or call.flow_id is None:
        return None
    shown = _show(call.flow_id)
    name = f"{_show(call.entity_name)} ({shown})" if call.entity_name else shown
    return Hint(
        "flow-deleted",
        f"flow {name} was deleted: restore it in Architect and publish it again, or launch the "
        "flow that replaced it by its new id (GET /api/v2/flows?name=<name> finds it)",
    )


def _type_not_launchable(call: FailedCall, memory: AdviceMemory) -> Hint | None:
    # A refusal for auth, permission, existence, size, media type or load has its own cause.
    if call.operation != "launch" or call.flow_id is None or call.status >= 500:
        return None
    if call.status in (401, 403, 404, 410, 413, 415, 429):
        return None
    flow_type = memory.type_of(call.flow_id)
    if flow_type is None or flow_type.lower() not in NOT_LAUNCHABLE_FLOW_TYPES:
        return None
    shown = _show(call.flow_id)
    return Hint(
        "flow-type-not-launchable",
        f"flow {shown} is of type {_show(flow_type)} (GET /api/v2/flows/{shown} said so): "
        "POST /api/v2/flows/executions starts only flow types that support it, such as "
        "workflow; inbound, in-queue, outbound, bot and survey flows start from an interaction, "
        "and common modules from other flows. Put the logic in a workflow and launch that one",
    )


def _rate_limited(call: FailedCall, memory: AdviceMemory) -> Hint:
    parts: list[str] = []
    limit = call.limit or {}
    key = limit.get("key") if isinstance(limit.get("key"), str) else None
    value = _count(limit.get("value"))
    headers = call.rate_limit
    allowed = value if value is not None else (headers.allowed if headers else None)
    window = _window(key)
    if allowed is not None:
        per = f" per {_duration(window)}" if window is not None else ""
        named = f" ({_show(key)})" if key else ""
        parts.append(f"the limit{named} is {_plural(allowed, 'request')}{per}")
    elif key:
        parts.append(f"the limit {_show(key)} was reached")
    if headers is not None and headers.count is not None:
        of = f" of {headers.allowed}" if headers.allowed is not None else ""
        parts.append(f"inin-ratelimit-count says {headers.count}{of} used")
    wait = _seconds(call.retry_after)
    if wait is not None:
        parts.append(f"Retry-After asks for {_duration(wait)}")
    elif call.retry_after:
        parts.append(f"Retry-After is {_show(call.retry_after)}")
    elif headers is not None and headers.reset_s is not None:
        parts.append(f"the window resets in {_duration(headers.reset_s)} (inin-ratelimit-reset)")
    span = window if window is not None else 60.0
    sent = memory.calls_within(call.host, span, call.at)
    if sent is not None:
        parts.append(
            f"this process sent {_plural(sent, 'flow call')} to {call.host} in the last "
            f"{_duration(span)}"
        )
    said = "; ".join(parts) if parts else "the response says nothing of the limit"
    pause = f"wait {_duration(wait)}" if wait is not None else "wait for the window to reset"
    pace = (
        f"keep under {allowed} per {_duration(window)}"
        if allowed is not None and window is not None
        else "spread the calls out"
    )
    advice = f"{pause} before the next call, then {pace} (a queue or a token bucket)"
    if call.operation == "token":
        advice += "; reuse a token until its expires_in instead of requesting one per call"
    return Hint("rate-limited", f"rate limited: {said}. Next: {advice}")


def _server_error(call: FailedCall) -> Hint:
    code = f" {_show(call.error_code)}" if call.error_code else ""
    what = "timed out" if call.status == 504 or call.error_code == "request.timeout" else "failed"
    wait = _seconds(call.retry_after)
    after = f", not before the Retry-After of {_duration(wait)}" if wait is not None else ""
    message = (
        f"the platform {what} ({call.status}{code}): usually transient; retry with exponential "
        f"backoff (1 s, 2 s, 4 s, a few attempts){after}; if it persists, give Genesys support "
        "the correlation id"
    )
    if call.operation == "launch":
        message += (
            ". A launch that failed this way may still have started the flow: a retried launch "
            "can start it twice, so retry launches only where a second execution is harmless"
        )
    return Hint("server-error", message)


# -- small readers and writers ------------------------------------------------------------------


def _count(value: object) -> int | None:
    """A non-negative whole number from a header or JSON value."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _seconds(value: object) -> float | None:
    """Seconds from a header such as ``Retry-After: 37`` (the HTTP-date form is not read)."""
    if not isinstance(value, str):
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _window(key: str | None) -> float | None:
    """The window a limit key names (``org.app.user.rate.per.minute`` is 60 s)."""
    if not key:
        return None
    match = _PER_WINDOW.search(key)
    return _WINDOW_WORDS[match.group(1).lower()] if match else None


def _duration(seconds: float) -> str:
    if seconds < 1:
        return "0 s" if seconds == 0 else "less than 1 s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h".replace(".0 h", " h")


def _show(value: str | None) -> str:
    """A server- or caller-chosen value as a hint may quote it: one line, bounded."""
    text = printable(" ".join(str(value).split()), _MAX_SHOWN + 1)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _other_region(login_host: str, api_host: str) -> bool:
    """Whether a token from ``login_host`` was sent to an API host of another region."""
    login = login_host.lower()
    api = api_host.lower()
    if not (login.startswith("login.") and api.startswith("api.")):
        return False  # not the platform's naming (a proxy, a sandbox): nothing to compare
    return login.removeprefix("login.") != api.removeprefix("api.")

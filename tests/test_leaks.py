"""Leak hunting: secrets placed wherever they occur in practice never leave the process.

Each example draws a secret, a call (launch, get execution, token, or a path flowscope does not
know) and a set of places to put the secret in, sends it through an instrumented client, and
then searches everything flowscope makes for the secret and every 6-character piece of it:
the exported spans (name, attributes, events, status), the ``flowscope`` log records (message,
traceback and the structured ``extra``), the metrics exposition (classic and OpenMetrics, with
exemplars) and, for the loopback examples, the OTLP/HTTP bytes a collector receives.

Header capture (``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_*=".*"``) is on for every example:
it is where the OpenTelemetry instrumentation alone would leak the most.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import gzip
import json
import logging
import random
import re
import string
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from flowscope import AsyncFlowScopeTransport, FlowMetrics, FlowScopeConfig, FlowScopeTransport
from flowscope._redact import REDACTED

from .conftest import LogCapture, report_lines
from .otlp_receiver import OTLPReceiver, any_value, iter_strings, span_attributes
from .servers import LoopbackServer, Reply, ScriptedServer

ALPHABET = string.ascii_letters + string.digits + "-_"
# Every secret starts with a capital and a digit: a token, never a prose word. (Free text keeps
# "bearer token" and "Basic authentication"; a credential that is only lower-case or
# Title-case letters and under 16 characters reads as prose, as SECURITY.md says.)
PREFIX = "Q7"
PIECE = 6

LAUNCH = "/api/v2/flows/executions"
EXECUTION = "/api/v2/flows/executions/0b7f1c9e-exec"
TOKEN = "/oauth/token"
UNMATCHED = "/api/v2/users/me"
FLOW_ID = "6e1a4b2c-0c7d-4d59-9f6e-2b0a1d2f3c4d"
JWT_HEAD = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"

SECRET_KEYS = (
    "client_secret",
    "clientSecret",
    "CLIENT_SECRET",
    "accessToken",
    "AccessToken",
    "access_token",
    "refresh_token",
    "refreshToken",
    "REFRESH_TOKEN",
    "password",
    "Password",
    "PASSWORD",
    "id_token",
    "apiKey",
    "api_key",
    "private_key",
    "jwt",
)
PII_KEYS = ("email", "customerEmail", "phoneNumber", "ssn")
TOKEN_HEADERS = ("X-Api-Token", "X-Auth-Token", "X-Refresh-Token", "X-Session-Token", "X-Token")
QUERY_NAMES = ("access_token", "code", "sig", "refresh_token", "id_token")
FORM_NAMES = ("client_secret", "refresh_token", "code", "password", "code_verifier")

REQUEST_PLACES = {
    "launch": (
        *("bearer", "basic", "cookie", "header", "query", "userinfo"),
        *("json", "pii", "flow_id"),
    ),
    "get_execution": ("bearer", "basic", "cookie", "header", "query", "userinfo"),
    "token": ("basic", "cookie", "header", "query", "form"),
    "unmatched": ("bearer", "basic", "cookie", "header", "query", "userinfo"),
}
RESPONSE_PLACES = {
    "launch": ("set_cookie", "header", "jwt", "bearer", "pair", "json"),
    "get_execution": ("set_cookie", "header", "jwt", "bearer", "pair", "json"),
    "token": ("set_cookie", "header", "jwt", "bearer", "pair", "oauth"),
    "unmatched": ("set_cookie", "header", "jwt", "bearer", "pair", "json"),
}
ERROR_TEXTS = (
    "proxy refused Authorization: Bearer {s}",
    "GET https://api.example.invalid/api/v2/flows?access_token={s} failed",
    "bad token {jwt}",
    "client_secret={s} rejected",
    'upstream said {{"refresh_token": "{s}"}}',
    "authentication failed for bearer {s}",
)

secrets = st.one_of(
    st.lists(st.sampled_from(ALPHABET), min_size=12, max_size=40, unique=True).map("".join),
    st.text(alphabet=ALPHABET, min_size=12, max_size=40),
).map(lambda s: PREFIX + s)


@dataclass
class Scenario:
    op: str
    status: int
    secret: str
    request_places: frozenset[str]
    response_places: frozenset[str]
    key: str
    path: tuple[tuple[str, str], ...]  # nesting of the JSON secret: ("dict", name) / ("list", "")
    header: str
    query: str
    form: str
    pii: str
    pii_variant: str
    gzip: bool
    error_text: str
    #: Strings that must not appear (the secret, and encodings of it such as a Basic credential).
    needles: list[str] = field(default_factory=list)

    @property
    def jwt(self) -> str:
        # A JWT whose payload and signature carry the secret.
        return f"{JWT_HEAD}.{self.secret}.{self.secret[::-1]}"

    def config(self) -> FlowScopeConfig:
        return FlowScopeConfig(redact_keys=(self.pii,))


def _case_variants(key: str) -> st.SearchStrategy[str]:
    return st.sampled_from(
        (key, key.lower(), key.upper(), f"Flow.{key}", f"Flow.{key[:1].upper()}{key[1:]}")
    )


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    op = draw(st.sampled_from(sorted(REQUEST_PLACES)))
    status = draw(st.sampled_from((200, 400, 401, 403, 404, 429, 500, 503)))
    response_choices = RESPONSE_PLACES[op] if status >= 400 else ("set_cookie", "header")
    request_places = draw(st.frozensets(st.sampled_from(REQUEST_PLACES[op]), max_size=4))
    response_places = draw(st.frozensets(st.sampled_from(response_choices), max_size=3))
    if not request_places and not response_places:
        request_places = frozenset({draw(st.sampled_from(REQUEST_PLACES[op]))})
    pii = draw(st.sampled_from(PII_KEYS))
    return Scenario(
        op=op,
        status=status,
        secret=draw(secrets),
        request_places=request_places,
        response_places=response_places,
        key=draw(st.sampled_from(SECRET_KEYS)),
        path=tuple(
            draw(
                st.lists(
                    st.one_of(
                        st.tuples(
                            st.just("dict"),
                            st.sampled_from(("data", "Flow.payload", "items", "x", "nested")),
                        ),
                        st.just(("list", "")),
                    ),
                    max_size=8,
                )
            )
        ),
        header=draw(st.sampled_from(TOKEN_HEADERS)),
        query=draw(st.sampled_from(QUERY_NAMES)),
        form=draw(st.sampled_from(FORM_NAMES)),
        pii=pii,
        pii_variant=draw(_case_variants(pii)),
        gzip=draw(st.booleans()),
        error_text=draw(st.sampled_from(ERROR_TEXTS)),
    )


def _nest(value: Any, path: Iterable[tuple[str, str]]) -> Any:
    for kind, name in reversed(list(path)):
        value = {name: value} if kind == "dict" else [1, value]
    return value


def _basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def build_request(sc: Scenario, base: str) -> dict[str, Any]:
    """The keyword arguments of ``client.request`` for this scenario."""
    s, places = sc.secret, sc.request_places
    sc.needles = [s]
    path = {"launch": LAUNCH, "get_execution": EXECUTION, "token": TOKEN, "unmatched": UNMATCHED}[
        sc.op
    ]
    url = base + path
    headers: dict[str, str] = {}
    params: dict[str, str] = {"page": "2"}
    if "userinfo" in places:
        scheme, rest = url.split("://", 1)
        url = f"{scheme}://client-id:{s}@{rest}"
        sc.needles.append(_basic("client-id", s))
    if "bearer" in places:
        headers["Authorization"] = f"Bearer {s}"
    elif "basic" in places:
        headers["Authorization"] = f"Basic {_basic('client-id', s)}"
        sc.needles.append(_basic("client-id", s))
    if "cookie" in places:
        headers["Cookie"] = f"theme=dark; session={s}"
    if "header" in places:
        headers[sc.header] = s
    if "query" in places:
        params[sc.query] = s
    kwargs: dict[str, Any] = {"method": "GET", "url": url, "headers": headers, "params": params}
    if sc.op == "launch":
        inputs: dict[str, Any] = {"Flow.customerId": "c-42"}
        if "json" in places:
            inputs["Flow.settings"] = _nest({sc.key: s}, sc.path)
        if "pii" in places:
            inputs[sc.pii_variant] = s
        flow_id = sc.jwt if "flow_id" in places else FLOW_ID
        kwargs.update(method="POST", json={"flowId": flow_id, "inputData": inputs})
    elif sc.op == "token":
        form = {"grant_type": "client_credentials", "client_id": "client-id"}
        if "form" in places:
            form[sc.form] = s
        kwargs.update(method="POST", data=form)
    return kwargs


def build_response(sc: Scenario) -> tuple[int, list[tuple[str, str]], bytes]:
    s, places = sc.secret, sc.response_places
    headers = [("Content-Type", "application/json"), ("ININ-Correlation-Id", "corr-7")]
    if "set_cookie" in places:
        headers.append(("Set-Cookie", f"sid={s}; Path=/; HttpOnly"))
    if "header" in places:
        headers.append((sc.header, s))
    if sc.status < 400:
        doc: dict[str, Any] = {"id": "exec-1", "flowVersion": {"id": "2.0"}}
    else:
        messages = []
        if "jwt" in places:
            messages.append(f"token {sc.jwt} is expired")
        if "bearer" in places:
            messages.append(f"Authorization: Bearer {s} was rejected")
        if "pair" in places:
            messages.append(sc.error_text.format(s=s, jwt=sc.jwt))
        doc = {
            "message": "; ".join(messages) or "Invalid input",
            "code": "bad.request",
            "status": sc.status,
            "contextId": "ctx-1",
            "details": [{"errorCode": "INVALID", "fieldName": "inputData"}],
        }
        if "json" in places:
            doc["errors"] = [_nest({sc.key: s, "code": "invalid.value"}, sc.path)]
        if "oauth" in places:
            doc = {"error": "invalid_grant", "error_description": f"refresh_token={s} is expired"}
    body = json.dumps(doc).encode()
    if sc.gzip:
        body = gzip.compress(body)
        headers.append(("Content-Encoding", "gzip"))
    return sc.status, headers, body


def pieces(needle: str) -> set[str]:
    """The needle and its 6-character pieces, except runs such as ``000000``."""
    out = {needle}
    for i in range(len(needle) - PIECE + 1):
        piece = needle[i : i + PIECE]
        if len(set(piece)) >= 4:
            out.add(piece)
    return out


def _control_secret(secret: str) -> str:
    """Another secret of the same shape: what stays the same is vocabulary, not the secret."""
    rest = secret[len(PREFIX) :]
    return PREFIX + "".join(ALPHABET[(ALPHABET.index(c) + 17) % len(ALPHABET)] for c in rest)


Texts = dict[str, str]


def hunt(sc: Scenario, texts: Texts, run: Callable[[Scenario], Texts]) -> int:
    """Assert nothing of the secret is in ``texts``; return the number of bytes searched.

    A piece found is checked against a control run of the same call with another secret:
    words that every run prints (``conten`` of ``content_type``) are not a leak, and the
    generator does try such words.
    """
    hits = [
        (piece, name, haystack)
        for needle in sc.needles
        for piece in pieces(needle)
        for name, haystack in texts.items()
        if piece in haystack
    ]
    if hits:
        control = run(replace(sc, secret=_control_secret(sc.secret), needles=[]))
        hits = [
            hit
            for hit in hits
            if hit[0] in sc.needles or not any(hit[0] in t for t in control.values())
        ]
    for piece, name, haystack in hits:
        at = haystack.index(piece)
        context = haystack[max(at - 120, 0) : at + 60]
        raise AssertionError(f"{piece!r} of a secret leaked into {name}: {context!r}")
    return sum(len(h) for h in texts.values())


# -- what flowscope makes ------------------------------------------------------------------------


def spans_text(exporter: InMemorySpanExporter) -> str:
    return "\n".join(span.to_json(indent=None) for span in exporter.get_finished_spans())


_FORMATTER = logging.Formatter("%(levelname)s %(name)s %(message)s")


def logs_text(records: list[logging.LogRecord]) -> str:
    parts = []
    for record in records:
        parts.append(_FORMATTER.format(record))
        parts.append(json.dumps(getattr(record, "flowscope", None), default=str))
    return "\n".join(parts)


def metrics_text(registry: CollectorRegistry) -> str:
    # OpenMetrics: the same label values as the classic format, plus the exemplars.
    return generate_openmetrics(registry).decode()


_EXPORTER = InMemorySpanExporter()
_PROVIDER = TracerProvider()  # shared: building one per example costs more than the call
_PROVIDER.add_span_processor(SimpleSpanProcessor(_EXPORTER))


class Outputs:
    """One run's spans, metrics and log records."""

    def __init__(self, logs: LogCapture) -> None:
        self.exporter = _EXPORTER
        self.provider = _PROVIDER
        _EXPORTER.clear()
        self.registry = CollectorRegistry()
        self.metrics = FlowMetrics(self.registry)
        self.logs = logs
        logs.records.clear()

    def texts(self) -> Texts:
        assert self.exporter.get_finished_spans(), "no span was exported"
        return {
            "spans": spans_text(self.exporter),
            "logs": logs_text(self.logs.records),
            "metrics": metrics_text(self.registry),
        }

    def __enter__(self) -> Outputs:
        return self

    def __exit__(self, *exc: object) -> None:
        _EXPORTER.clear()


@pytest.fixture(scope="module")
def capture_headers() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST", ".*")
        mp.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_RESPONSE", ".*")
        yield


@pytest.fixture(scope="module")
def logs() -> Iterator[LogCapture]:
    handler = LogCapture()
    log = logging.getLogger("flowscope")
    old = log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    yield handler
    log.removeHandler(handler)
    log.setLevel(old)


class Figures:
    examples = 0
    bytes_searched = 0
    #: Of which the echo hunts (a server quoting back what it was sent).
    echo_examples = 0
    echo_bytes_searched = 0


@pytest.fixture(scope="module", autouse=True)
def report_figures(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if Figures.examples:
        report_lines(
            request,
            [
                f"\nleak hunt: {Figures.examples} examples, "
                f"{Figures.bytes_searched:,} bytes searched; of which echoes: "
                f"{Figures.echo_examples} examples, {Figures.echo_bytes_searched:,} bytes"
            ],
        )


def _mock(sc: Scenario, seen: list[httpx.Request]) -> httpx.MockTransport:
    status, headers, body = build_response(sc)

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return httpx.Response(status, headers=headers, content=body)

    return httpx.MockTransport(handler)


def _check_travelled(sc: Scenario, seen: list[httpx.Request], response: httpx.Response) -> None:
    """The secret really was in the call: the property is never vacuous."""
    if sc.request_places:
        request = seen[0]
        wire = str(request.url) + repr(request.headers.raw) + request.content.decode()
        assert any(n in wire for n in sc.needles), "the secret was not in the request"
    if sc.response_places:
        assert sc.secret in response.text + repr(response.headers.raw)


def _count(searched: int) -> None:
    Figures.examples += 1
    Figures.bytes_searched += searched


def _count_echo(searched: int) -> None:
    _count(searched)
    Figures.echo_examples += 1
    Figures.echo_bytes_searched += searched


def run_sync(sc: Scenario, logs: LogCapture) -> Texts:
    seen: list[httpx.Request] = []
    with Outputs(logs) as outputs:
        transport = FlowScopeTransport(
            _mock(sc, seen),
            config=sc.config(),
            tracer_provider=outputs.provider,
            metrics=outputs.metrics,
        )
        with httpx.Client(transport=transport) as client:
            response = client.request(**build_request(sc, "http://127.0.0.1:9"))
        _check_travelled(sc, seen, response)
        return outputs.texts()


def run_async(sc: Scenario, logs: LogCapture) -> Texts:
    seen: list[httpx.Request] = []

    async def call(outputs: Outputs) -> httpx.Response:
        transport = AsyncFlowScopeTransport(
            _mock(sc, seen),
            config=sc.config(),
            tracer_provider=outputs.provider,
            metrics=outputs.metrics,
        )
        async with httpx.AsyncClient(transport=transport) as client:
            return await client.request(**build_request(sc, "http://127.0.0.1:9"))

    with Outputs(logs) as outputs:
        response = asyncio.run(call(outputs))
        _check_travelled(sc, seen, response)
        return outputs.texts()


def run_transport_error(sc: Scenario, logs: LogCapture) -> Texts:
    text = sc.error_text.format(s=sc.secret, jwt=sc.jwt)

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(text, request=request)

    with Outputs(logs) as outputs:
        transport = FlowScopeTransport(
            httpx.MockTransport(handler),
            config=sc.config(),
            tracer_provider=outputs.provider,
            metrics=outputs.metrics,
        )
        with httpx.Client(transport=transport) as client, pytest.raises(httpx.ConnectError) as err:
            client.request(**build_request(sc, "http://127.0.0.1:9"))
        assert str(err.value) == text  # the caller's exception is untouched
        span = outputs.exporter.get_finished_spans()[0]
        assert "exception" in [e.name for e in span.events]
        assert span.status.status_code.name == "ERROR"
        return outputs.texts()


def hunt_settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@hunt_settings(1200)
@given(sc=scenarios())
def test_secrets_anywhere_in_a_call_never_reach_spans_logs_or_metrics(
    sc: Scenario, capture_headers: None, logs: LogCapture
) -> None:
    run = functools.partial(run_sync, logs=logs)
    _count(hunt(sc, run(sc), run))


@hunt_settings(400)
@given(sc=scenarios())
def test_secrets_through_the_async_client_never_leave_the_process(
    sc: Scenario, capture_headers: None, logs: LogCapture
) -> None:
    run = functools.partial(run_async, logs=logs)
    _count(hunt(sc, run(sc), run))


@hunt_settings(300)
@given(sc=scenarios())
def test_secrets_in_transport_error_messages_never_leave_the_process(
    sc: Scenario, capture_headers: None, logs: LogCapture
) -> None:
    run = functools.partial(run_transport_error, logs=logs)
    _count(hunt(sc, run(sc), run))


# -- the same over real loopback HTTP, exported over OTLP ----------------------------------------


@pytest.fixture(scope="module")
def receiver() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as r:
        yield r


@pytest.fixture(scope="module")
def loopback() -> Iterator[ScriptedServer]:
    with ScriptedServer() as s:
        yield s


def run_otlp(
    sc: Scenario, logs: LogCapture, receiver: OTLPReceiver, loopback: ScriptedServer
) -> Texts:
    receiver.clear()
    logs.records.clear()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=receiver.endpoint)))
    registry = CollectorRegistry()
    status, headers, body = build_response(sc)
    kwargs = build_request(sc, loopback.url)
    loopback.replies[httpx.URL(kwargs["url"]).path] = Reply(status, headers, body)
    try:
        transport = FlowScopeTransport(
            # Plain HTTP on loopback: no need to load a CA bundle for every example.
            httpx.HTTPTransport(verify=False),
            config=sc.config(),
            tracer_provider=provider,
            metrics=FlowMetrics(registry),
        )
        with httpx.Client(transport=transport) as client:
            response = client.request(**kwargs)
        assert response.status_code == status
        assert response.content == (gzip.decompress(body) if sc.gzip else body)
        assert provider.force_flush(10_000)
    finally:
        provider.shutdown()
    spans = receiver.wait_for_spans(1)
    assert len(spans) == 1
    return {
        "otlp": receiver.all_bytes().decode("latin-1"),
        "otlp spans": "\n".join(s for span in spans for s in iter_strings(span)),
        "logs": logs_text(logs.records),
        "metrics": metrics_text(registry),
    }


@hunt_settings(100)
@given(sc=scenarios())
def test_secrets_never_reach_the_otlp_wire(
    sc: Scenario,
    capture_headers: None,
    logs: LogCapture,
    receiver: OTLPReceiver,
    loopback: ScriptedServer,
) -> None:
    run = functools.partial(run_otlp, logs=logs, receiver=receiver, loopback=loopback)
    _count(hunt(sc, run(sc), run))


# -- example-based checks of the same promise ----------------------------------------------------


def test_pii_keys_from_the_environment_are_redacted_in_flow_inputs(
    logs: LogCapture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWSCOPE_REDACT_KEYS", "customerEmail, ssn")
    email = "Q7jane.doe-4821@example.invalid"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"code": "bad.request", "message": "Invalid input"})

    with Outputs(logs) as outputs:
        transport = FlowScopeTransport(
            httpx.MockTransport(handler),
            config=FlowScopeConfig.from_env(),
            tracer_provider=outputs.provider,
            metrics=outputs.metrics,
        )
        body = {"flowId": FLOW_ID, "inputData": {"Flow.customerEmail": email, "Flow.SSN": "Q7x"}}
        with httpx.Client(transport=transport) as client:
            client.post(f"http://127.0.0.1:9{LAUNCH}", json=body)
        texts = outputs.texts()
    sent = texts["spans"].replace("\\", "")
    assert '"Flow.SSN":"[REDACTED]"' in sent
    assert '"Flow.customerEmail":"[REDACTED]"' in sent
    for name, text in texts.items():
        assert email not in text, name
        assert "jane.doe" not in text, name


def test_captured_headers_keep_the_scheme_and_lose_the_credential(
    capture_headers: None, logs: LogCapture
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Set-Cookie": "sid=Q7cookieValue99; Path=/"})

    with Outputs(logs) as outputs:
        transport = FlowScopeTransport(
            httpx.MockTransport(handler), tracer_provider=outputs.provider, metrics=outputs.metrics
        )
        with httpx.Client(transport=transport) as client:
            client.get(
                f"http://127.0.0.1:9{UNMATCHED}",
                headers={"Authorization": "Bearer Q7bearerValue99", "X-Trace-Note": "plain"},
            )
        attributes = dict(outputs.exporter.get_finished_spans()[0].attributes or {})
    assert list(attributes["http.request.header.authorization"]) == ["Bearer [REDACTED]"]
    assert list(attributes["http.request.header.x_trace_note"]) == ["plain"]
    assert list(attributes["http.response.header.set_cookie"]) == ["[REDACTED]"]


def test_a_secret_in_the_flow_id_is_redacted_in_spans_and_metric_labels(logs: LogCapture) -> None:
    jwt = f"{JWT_HEAD}.Q7payloadXyz123.Q7signatureAbc456"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"code": "not.found", "message": "no such flow"})

    with Outputs(logs) as outputs:
        transport = FlowScopeTransport(
            httpx.MockTransport(handler), tracer_provider=outputs.provider, metrics=outputs.metrics
        )
        with httpx.Client(transport=transport) as client:
            client.post(f"http://127.0.0.1:9{LAUNCH}", json={"flowId": jwt})
        attributes = dict(outputs.exporter.get_finished_spans()[0].attributes or {})
        exposition = metrics_text(outputs.registry)
    assert attributes["flow.id"] == "[REDACTED]"
    assert 'flow="[REDACTED]"' in exposition
    assert "Q7payload" not in exposition


# -- echoes: a server that quotes back what it was sent -----------------------------------------
#
# APIs quote the values they reject: in the message, in messageWithParams/messageParams, in
# details[].entityName, in nested errors[], in an OAuth error_description, in a 401 that names
# the token, even in a response header. The echo server below reads whatever a call sent
# (headers, cookies, query, JSON leaves at any depth, form fields, the secret inside a Basic
# credential) and quotes every value back in the shapes a plan drawn by hypothesis asks for.
# flowscope must remove each value it redacted on the way out wherever it comes back, and
# must leave ids, field names, order numbers and clock readings exactly as they were.

ECHO_PLACES = ("message", "params", "details", "nested", "bare")
# Keys as flows and callers spell them: with or without "Flow.", any case or separator.
ECHO_KEYS = {
    "token": SECRET_KEYS,
    "pin": ("Flow.pin", "pin", "PIN", "cardPin", "Flow.PINCode", "pin_number"),
    "cvv": ("Flow.cvv", "CVV2", "cvc", "Flow.securityCode", "card_cvv"),
    "card": ("Flow.cardNumber", "card_number", "PAN", "Flow.creditCard", "CCNumber", "cardNo"),
    "card_typo": ("Flow.cardNumber", "card_number", "Flow.PAN"),
    "ssn": ("Flow.ssn", "SSN", "socialSecurityNumber", "Flow.customer_ssn"),
    "answer": ("securityAnswer", "Flow.security_answer", "SecurityQuestionAnswer"),
    "email": ("Flow.customerEmail", "customerEmail", "CUSTOMER_EMAIL"),
}
ECHO_JSON_KINDS = (*ECHO_KEYS, "note_card", "account")
ECHO_USER_KEY = "customerEmail"
ECHO_PATTERN = r"acct=(?P<secret>[0-9]{8})"
CARD_PREFIXES = ("4", "51", "55", "2221", "2720", "34", "37", "6011", "65", "35", "36", "62")


def _luhn_digit(body: str) -> str:
    """The check digit that makes ``body`` + digit Luhn-valid."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:  # doubled once the check digit is appended
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str((10 - total % 10) % 10)


def _card(body: str, *, valid: bool, style: str) -> str:
    check = _luhn_digit(body)
    digits = body + (check if valid else str((int(check) + 1) % 10))
    if style == "plain":
        return digits
    sep = " " if style == "spaced" else "-"
    return sep.join(digits[i : i + 4] for i in range(0, len(digits), 4))


def _shift_digits(text: str, by: int = 3) -> str:
    return "".join(str((int(c) + by) % 10) if c.isdigit() else c for c in text)


@dataclass(frozen=True)
class Value:
    """A value one call sends: a secret (never exported) or a survivor (exported unchanged)."""

    kind: str
    text: str
    #: The digits of a card number, when the value is one (control values keep Luhn validity).
    card_body: str = ""
    card_valid: bool = False
    card_style: str = "plain"

    @property
    def secret(self) -> bool:
        return self.kind not in ("order", "clock", "note_order")

    def control(self) -> Value:
        """A value of the same kind, shape and length, sharing nothing with this one."""
        if self.card_body:
            body = self.card_body[:1] + _shift_digits(self.card_body[1:])
            card = _card(body, valid=self.card_valid, style=self.card_style)
            text = self.text.replace(
                _card(self.card_body, valid=self.card_valid, style=self.card_style), card
            )
            return replace(self, text=text, card_body=body)
        if self.kind == "token":
            return replace(self, text=_control_secret(self.text))
        shifted = (
            ALPHABET[(ALPHABET.index(c) + 17) % len(ALPHABET)] if c in ALPHABET else c
            for c in self.text[len(PREFIX) :]
        )
        if self.kind in ("answer", "email"):
            return replace(self, text=self.text[: len(PREFIX)] + "".join(shifted))
        return replace(self, text=_shift_digits(self.text))


def _tokens() -> st.SearchStrategy[Value]:
    return secrets.map(lambda s: Value("token", s))


def _digit_run(length: int) -> st.SearchStrategy[str]:
    """``length`` digits, not all the same (drawn as one integer: cheaper than a text)."""

    def spell(n: int) -> str:
        text = str(n).zfill(length)
        return text if len(set(text)) > 1 else text[:-1] + str((int(text[-1]) + 1) % 10)

    return st.integers(0, 10**length - 1).map(spell)


def _digits(kind: str, low: int, high: int) -> st.SearchStrategy[Value]:
    return st.integers(low, high).flatmap(_digit_run).map(lambda s: Value(kind, s))


@st.composite
def _cards(draw: st.DrawFn, *, valid: bool) -> Value:
    prefix = draw(st.sampled_from(CARD_PREFIXES))
    length = draw(st.sampled_from((13, 15, 16, 16, 16, 19)))
    body = prefix + draw(_digit_run(length - 1 - len(prefix)))
    style = draw(st.sampled_from(("plain", "spaced", "dashed")))
    kind = "card" if valid else "card_typo"
    return Value(kind, _card(body, valid=valid, style=style), body, valid, style)


def _value(kind: str) -> st.SearchStrategy[Value]:
    if kind == "token":
        return _tokens()
    if kind == "pin":
        return _digits("pin", 4, 6)
    if kind == "cvv":
        return _digits("cvv", 3, 4)
    if kind == "card":
        return _cards(valid=True)
    if kind == "card_typo":
        return _cards(valid=False)
    if kind == "ssn":
        return _digits("ssn", 9, 9).map(
            lambda v: replace(v, text=f"{v.text[:3]}-{v.text[3:5]}-{v.text[5:]}")
        )
    if kind == "answer":
        return st.text(string.ascii_letters, min_size=5, max_size=14).map(
            lambda s: Value("answer", "Q7" + s + "1987")
        )
    if kind == "email":
        return st.text(string.ascii_lowercase, min_size=4, max_size=12).map(
            lambda s: Value("email", f"q7{s}.doe+{s[::-1]}@example.invalid")
        )
    if kind == "note_card":
        return _cards(valid=True).map(lambda v: replace(v, kind="note_card"))
    if kind == "account":
        return _digits("account", 8, 8)
    raise AssertionError(kind)  # pragma: no cover


@st.composite
def _order_numbers(draw: st.DrawFn) -> str:
    digits = draw(_digit_run(16))
    if _luhn_digit(digits[:-1]) == digits[-1]:
        digits = digits[:-1] + str((int(digits[-1]) + 1) % 10)
    return digits


def _hex_ids() -> st.SearchStrategy[str]:
    return st.uuids().map(str)


@dataclass
class EchoPlan:
    """How the echo server answers: what status, and where each value it received goes."""

    status: int
    places: list[frozenset[str]]
    depth: int
    correlation_id: str
    context_id: str
    #: Index of the received value quoted in an ``X-Request-Echo`` response header.
    echo_header: int | None
    #: Field names the last reply listed (details[].fieldName, nested too).
    fields: set[str] = field(default_factory=set)
    #: Accept the launch (200), and quote what it sent in its execution's ``flowErrorInfo``
    #: when it is polled (200, FAILED): the poll itself sends none of it.
    execution: bool = False


@dataclass
class EchoScenario:
    op: str  # launch, get_execution, token
    plan: EchoPlan
    flow_id: str
    execution_id: str
    order: str
    clock: str
    order_in_note: str
    json_values: list[tuple[str, Value, tuple[tuple[str, str], ...]]]  # (key, value, nesting)
    header_values: dict[str, Value]  # bearer / basic / api_key / cookie / query / form_*
    header_name: str
    query_name: str
    form_name: str
    pin_as_number: bool

    def values(self) -> list[Value]:
        return [v for _, v, _ in self.json_values] + list(self.header_values.values())

    def secrets(self) -> list[Value]:
        return [v for v in self.values() if v.secret]

    def control(self) -> EchoScenario:
        """The same call with every secret replaced by another of the same shape."""
        return replace(
            self,
            json_values=[(k, v.control(), p) for k, v, p in self.json_values],
            header_values={k: v.control() for k, v in self.header_values.items()},
        )

    def config(self) -> FlowScopeConfig:
        return FlowScopeConfig(redact_keys=(ECHO_USER_KEY,), redact_patterns=(ECHO_PATTERN,))


_NESTING = st.lists(
    st.one_of(
        st.tuples(st.just("dict"), st.sampled_from(("data", "Flow.payment", "items", "x"))),
        st.just(("list", "")),
    ),
    max_size=5,
).map(tuple)


@st.composite
def echo_scenarios(draw: st.DrawFn, *, sdk: bool = False, launch: bool = False) -> EchoScenario:
    """A call whose values all come back in its error; ``sdk``: only what the Genesys SDK sends
    (a bearer token, the launch body; Basic and a fixed form for the token call); ``launch``:
    launches only."""
    op = "launch" if launch else draw(st.sampled_from(("launch", "get_execution", "token")))
    json_values: list[tuple[str, Value, tuple[tuple[str, str], ...]]] = []
    if op == "launch":
        for kind in draw(st.lists(st.sampled_from(ECHO_JSON_KINDS), min_size=1, max_size=6)):
            value = draw(_value(kind))
            key = draw(st.sampled_from(ECHO_KEYS.get(kind, ("Flow.notes",))))
            json_values.append((key, value, draw(_NESTING)))
    headers: dict[str, Value] = {}
    places = draw(
        st.frozensets(
            st.sampled_from(("auth", "api_key", "cookie", "query")),
            min_size=0 if json_values else 1,
        )
    )
    if sdk:
        places = frozenset({"auth"})
    if op == "token":
        headers["basic"] = draw(_tokens())
        forms = () if sdk else draw(st.frozensets(st.sampled_from(("form_secret", "form_refresh"))))
        for name in forms:
            headers[name] = draw(_tokens())
    elif "auth" in places:
        headers["bearer"] = draw(_tokens())
    for name in ("api_key", "cookie", "query"):
        if name in places:
            headers[name] = draw(_tokens())
    status = draw(st.sampled_from((400, 401) if op == "token" else (400, 401, 403, 404, 422, 500)))
    plan = EchoPlan(
        status=status,
        places=draw(
            st.lists(
                st.frozensets(st.sampled_from(ECHO_PLACES), min_size=1), min_size=1, max_size=8
            )
        ),
        depth=draw(st.integers(1, 4)),
        correlation_id=draw(_hex_ids()),
        context_id=draw(_hex_ids()),
        echo_header=draw(st.none() | st.integers(0, 20)),
    )
    return EchoScenario(
        op=op,
        plan=plan,
        flow_id=draw(_hex_ids()),
        execution_id=draw(_hex_ids()),
        order=draw(_order_numbers()),
        clock=str(draw(st.integers(1_420_070_400_000, 2_199_999_999_999))),
        order_in_note=_card(draw(_order_numbers())[:-1], valid=False, style="spaced"),
        json_values=json_values,
        header_values=headers,
        header_name=draw(st.sampled_from(("X-Api-Key", "X-Auth-Token", "X-Session-Token"))),
        query_name=draw(st.sampled_from(("access_token", "code", "sig", "apikey"))),
        form_name=draw(st.sampled_from(("client_secret", "client_assertion_secret"))),
        pin_as_number=draw(st.booleans()),
    )


# -- the echo server ------------------------------------------------------------------------------

_ECHO_CODES = {
    400: "bad.request",
    401: "bad.credentials",
    403: "missing.permissions",
    404: "not.found",
    422: "invalid.value",
    500: "internal.server.error",
}
_ACCOUNT_IN_TEXT = re.compile(r"acct=([0-9]{8})")


def _leaves(value: Any, path: str, key: str) -> Iterator[tuple[str, str, str]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, f"{path}.{k}" if path else k, k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, f"{path}[{i}]", key)
    elif isinstance(value, str):
        yield key, path, value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield key, path, str(value)


def received_values(target: str, headers: Any, body: bytes) -> list[tuple[str, str, str]]:
    """(key, field name, value) for everything a request carried, as an API would name it."""
    items: list[tuple[str, str, str]] = []
    for name, value in headers.items():
        low = name.lower()
        if low == "authorization":
            scheme, _, cred = value.partition(" ")
            items.append(("Authorization", "header.Authorization", cred))
            if scheme.lower() == "basic":
                client_id, _, secret = base64.b64decode(cred).decode().partition(":")
                items += [
                    ("client_id", "client_id", client_id),
                    ("client_secret", "client_secret", secret),
                ]
        elif low == "cookie":
            for part in value.split(";"):
                cookie, _, cookie_value = part.strip().partition("=")
                items.append((cookie, f"cookie.{cookie}", cookie_value))
        elif low.startswith("x-"):
            items.append((name, f"header.{name}", value))
    items += [(k, f"query.{k}", v) for k, v in parse_qsl(urlsplit(target).query)]
    ctype = headers.get("content-type", "")
    if body and "json" in ctype:
        items += list(_leaves(json.loads(body), "", ""))
    elif body and "form" in ctype:
        items += [(k, k, v) for k, v in parse_qsl(body.decode())]
    # An API that reads "acct=..." out of a note quotes the account number alone.
    items += [
        ("account", fld, m.group(1))
        for _, fld, v in list(items)
        for m in _ACCOUNT_IN_TEXT.finditer(v)
    ]
    return [item for item in items if item[2]]


def echo_reply(
    plan: EchoPlan, op: str, items: list[tuple[str, str, str]]
) -> tuple[int, list[tuple[str, str]], bytes]:
    """The error a server that quotes its input would send, in the shapes the plan asks for."""
    headers = [("Content-Type", "application/json"), ("ININ-Correlation-Id", plan.correlation_id)]
    plan.fields = set()
    if plan.echo_header is not None and items:
        echoed = items[plan.echo_header % len(items)][2]
        if len(echoed) >= 4:  # a header does not name the key a short value was sent under
            headers.append(("X-Request-Echo", echoed))
    if op == "token":
        text = "; ".join(f"{key} '{value}' was not accepted" for key, _, value in items)
        doc: dict[str, Any] = {
            "error": "invalid_client",
            "description": text,
            "error_description": text,
        }
        return plan.status, headers, json.dumps(doc).encode()
    messages: list[str] = []
    template: list[str] = []
    params: dict[str, str] = {}
    details: list[dict[str, Any]] = []
    nested: list[dict[str, Any]] = []
    for i, (key, fld, value) in enumerate(items):
        places = plan.places[i % len(plan.places)]
        if len(value) < 4:  # short values are found only where the key is named
            places = places - {"bare"} or frozenset({"details"})
        if "message" in places:
            messages.append(f"{key}: expected another value, got string '{value}'")
        if "bare" in places:
            messages.append(f"rejected value '{value}'")
        if "params" in places:
            params[f"field{i}"], params[f"value{i}"] = key, value
            template.append(f"invalid value {{value{i}}} for {{field{i}}}")
        if "details" in places:
            details.append(
                {
                    "errorCode": "invalid.value",
                    "fieldName": fld,
                    "entityId": plan.context_id,
                    "entityName": value,
                }
            )
            plan.fields.add(fld)
        if "nested" in places:
            inner: dict[str, Any] = {
                "code": "invalid.value",
                "status": 400,
                "message": f"{fld} was '{value}'",
                "details": [{"errorCode": "invalid.value", "fieldName": fld, "entityName": value}],
            }
            for _ in range(plan.depth - 1):
                inner = {
                    "code": "bad.request",
                    "status": 400,
                    "message": "see errors",
                    "errors": [inner],
                }
            nested.append(inner)
            plan.fields.add(fld)
    doc = {
        "code": _ECHO_CODES[plan.status],
        "status": plan.status,
        "contextId": plan.context_id,
        "messageWithParams": "; ".join(template) or "invalid input",
        "messageParams": params,
        "details": details,
        "errors": nested,
    }
    tokens = [v for k, _, v in items if k == "Authorization"]
    if plan.status == 401 and tokens:
        messages.insert(0, f"the bearer token {tokens[0]} is invalid or expired")
        headers.append(
            ("WWW-Authenticate", f'Bearer error="invalid_token", error_description="{tokens[0]}"')
        )
    if messages:
        doc["message"] = "; ".join(messages)
    return plan.status, headers, json.dumps(doc).encode()


class _EchoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: EchoServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path
        op = "token" if path == TOKEN else "launch" if path == LAUNCH else "get_execution"
        plan = self.server.plan
        assert plan is not None
        items = received_values(self.path, self.headers, body)
        if plan.execution:
            status, headers, data = self.server.execution_reply(plan, op, items)
        else:
            status, headers, data = echo_reply(plan, op, items)
        self.send_response_only(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    do_GET = do_POST = _serve


class EchoServer(LoopbackServer):
    """Answers every call with an error quoting what the call sent (see ``echo_reply``)."""

    def __init__(self) -> None:
        super().__init__(_EchoHandler)
        self.plan: EchoPlan | None = None
        self.launched: list[tuple[str, str, str]] = []

    def execution_reply(
        self, plan: EchoPlan, op: str, items: list[tuple[str, str, str]]
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """A launch accepted, then its execution FAILED with an error quoting the launch."""
        if op == "launch":
            self.launched = items
            body = {"id": plan.context_id, "name": "echo", "status": "RUNNING"}
            return 200, [("Content-Type", "application/json")], json.dumps(body).encode()
        _, headers, data = echo_reply(plan, "launch", self.launched)
        info = json.loads(data)
        info["status"] = 500
        execution = {
            "id": plan.context_id,
            "status": "FAILED",
            "dateLaunched": "2026-01-01T10:00:00.000Z",
            "dateCompleted": "2026-01-01T10:00:02.000Z",
            "flowErrorInfo": info,
        }
        return 200, headers, json.dumps(execution).encode()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


# -- sending an echo scenario ---------------------------------------------------------------------

ECHO_CLIENT_ID = "client-7"


def launch_inputs(sc: EchoScenario) -> dict[str, Any]:
    inputs: dict[str, Any] = {
        "Flow.customerId": "c-42",
        "Flow.orderNumber": sc.order,
        "Flow.requestedAt": sc.clock,
        "Flow.orderNote": f"order {sc.order_in_note} shipped",
    }
    for i, (key, value, nesting) in enumerate(sc.json_values):
        leaf: Any = value.text
        if value.kind == "note_card":
            leaf = f"please charge {value.text} today"
        elif value.kind == "account":
            leaf = f"please update acct={value.text} today"
        elif value.kind == "pin" and sc.pin_as_number and value.text[0] != "0":
            leaf = int(value.text)
        inputs[f"Flow.group{i}"] = _nest({key: leaf}, nesting)
    return inputs


def echo_request(sc: EchoScenario, base: str) -> dict[str, Any]:
    """The keyword arguments of ``client.request`` for this scenario."""
    h = sc.header_values
    headers: dict[str, str] = {}
    params: dict[str, str] = {"pageSize": "25"}
    if "bearer" in h:
        headers["Authorization"] = f"Bearer {h['bearer'].text}"
    if "basic" in h:
        headers["Authorization"] = f"Basic {_basic(ECHO_CLIENT_ID, h['basic'].text)}"
    if "api_key" in h:
        headers[sc.header_name] = h["api_key"].text
    if "cookie" in h:
        headers["Cookie"] = f"theme=dark; session={h['cookie'].text}"
    if "query" in h:
        params[sc.query_name] = h["query"].text
    kwargs: dict[str, Any] = {"headers": headers, "params": params}
    if sc.op == "launch":
        body = {"flowId": sc.flow_id, "name": "echo", "inputData": launch_inputs(sc)}
        kwargs.update(method="POST", url=base + LAUNCH, json=body)
    elif sc.op == "get_execution":
        kwargs.update(method="GET", url=f"{base}{LAUNCH}/{sc.execution_id}")
    else:
        form = {"grant_type": "client_credentials", "client_id": ECHO_CLIENT_ID}
        if "form_secret" in h:
            form[sc.form_name] = h["form_secret"].text
        if "form_refresh" in h:
            form.update(grant_type="refresh_token", refresh_token=h["form_refresh"].text)
        kwargs.update(method="POST", url=base + TOKEN, data=form)
    return kwargs


class _LetterIds(IdGenerator):
    """Trace and span ids spelt with a-f only, so a digit in an export is never part of an id,
    and the same in every run (``reset``), so a run and its control run share them: letters
    of an id that happen to spell a piece of a secret are then vocabulary, not a leak."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        # Not the module's random: hypothesis seeds that one for every example.
        self._rng = random.Random(1)

    def generate_span_id(self) -> int:
        return int("".join(self._rng.choices("abcdef", k=16)), 16)

    def generate_trace_id(self) -> int:
        return int("".join(self._rng.choices("abcdef", k=32)), 16)


@dataclass
class EchoRun:
    texts: Texts
    attributes: dict[str, Any]
    events: dict[str, dict[str, Any]]
    #: Every event's name, in order (``events`` keeps the last of each name).
    event_names: list[str]
    #: The span status: OTLP code (2 is ERROR) and message.
    status: tuple[int, str]
    #: What the caller got back (the body, or the SDK exception's body).
    response_text: str
    exposition: str


class EchoRig:
    """The echo server, the OTLP receiver and the tracer that exports to it, for one module."""

    def __init__(self, server: EchoServer, receiver: OTLPReceiver, logs: LogCapture) -> None:
        self.server = server
        self.receiver = receiver
        self.logs = logs
        self.ids = _LetterIds()
        self.provider = TracerProvider(id_generator=self.ids)
        # Exported as each span ends, so a call's bytes are at the receiver when it returns.
        self.provider.add_span_processor(
            SimpleSpanProcessor(OTLPSpanExporter(endpoint=receiver.endpoint))
        )

    def run(
        self, sc: EchoScenario, send: Callable[[EchoScenario, FlowMetrics], str], spans: int = 1
    ) -> EchoRun:
        """One call (or ``spans`` calls: its attributes and events are the last one's)."""
        self.receiver.clear()
        self.logs.records.clear()
        self.ids.reset()
        self.server.plan = sc.plan
        registry = CollectorRegistry()
        response_text = send(sc, FlowMetrics(registry))
        exported = self.receiver.wait_for_spans(spans)
        assert len(exported) == spans
        span = exported[-1]
        classic = generate_latest(registry).decode()
        return EchoRun(
            texts={
                "otlp wire": self.receiver.all_bytes().decode("latin-1"),
                "otlp spans": "\n".join(text for s in exported for text in iter_strings(s)),
                "logs": logs_text(self.logs.records),
                "metrics": classic,
                "openmetrics": metrics_text(registry),
            },
            attributes=span_attributes(span),
            events={
                e.name: {kv.key: any_value(kv.value) for kv in e.attributes} for e in span.events
            },
            event_names=[e.name for e in span.events],
            status=(span.status.code, span.status.message),
            response_text=response_text,
            exposition=classic,
        )


def send_sync(rig: EchoRig, sc: EchoScenario, metrics: FlowMetrics) -> str:
    transport = FlowScopeTransport(
        httpx.HTTPTransport(verify=False),
        config=sc.config(),
        tracer_provider=rig.provider,
        metrics=metrics,
    )
    with httpx.Client(transport=transport) as client:
        response = client.request(**echo_request(sc, rig.server.url))
    assert response.status_code == sc.plan.status
    return response.text


def send_async(rig: EchoRig, sc: EchoScenario, metrics: FlowMetrics) -> str:
    async def call() -> httpx.Response:
        transport = AsyncFlowScopeTransport(
            httpx.AsyncHTTPTransport(verify=False),
            config=sc.config(),
            tracer_provider=rig.provider,
            metrics=metrics,
        )
        async with httpx.AsyncClient(transport=transport) as client:
            return await client.request(**echo_request(sc, rig.server.url))

    response = asyncio.run(call())
    assert response.status_code == sc.plan.status
    return response.text


def send_sdk(rig: EchoRig, sc: EchoScenario, metrics: FlowMetrics) -> str:
    from PureCloudPlatformClientV2 import ApiClient, ArchitectApi, FlowExecutionLaunchRequest
    from PureCloudPlatformClientV2.rest import ApiException

    from flowscope.genesys import FlowScopeHttpClient

    api = ApiClient(host=rig.server.url)
    http = FlowScopeHttpClient(
        httpx.Client(verify=False),
        config=sc.config(),
        tracer_provider=rig.provider,
        metrics=metrics,
        max_retries=0,
    )
    api.set_http_client(http)
    try:
        with pytest.raises(ApiException) as raised:
            if sc.op == "token":
                api.get_client_credentials_token(ECHO_CLIENT_ID, sc.header_values["basic"].text)
            else:
                api.access_token = sc.header_values["bearer"].text
                architect = ArchitectApi(api)
                if sc.op == "launch":
                    launch = FlowExecutionLaunchRequest()
                    launch.flow_id = sc.flow_id
                    launch.name = "echo"
                    launch.input_data = launch_inputs(sc)
                    architect.post_flows_executions(launch)
                else:
                    architect.get_flows_execution(sc.execution_id)
    finally:
        http.client.close()
    assert raised.value.status == sc.plan.status
    return str(raised.value.body)


# -- looking for what came back -------------------------------------------------------------------

# Measurements (durations, timestamps) in expositions and log records: numbers flowscope
# computes, never text from a call. Digit-only needles are not looked for inside them.
_MEASUREMENT = re.compile(r"(?<![\w.])[0-9]+\.[0-9]+(?:e[+-]?[0-9]+)?")


def _needles(sc: EchoScenario) -> list[str]:
    out: list[str] = []
    for v in sc.secrets():
        out.append(v.text)
        if v.card_body or v.kind == "ssn":
            out.append(v.text.replace(" ", "").replace("-", ""))
    if "basic" in sc.header_values:
        out.append(_basic(ECHO_CLIENT_ID, sc.header_values["basic"].text))
    return out


def _found(needle: str, texts: Texts) -> list[tuple[str, str, str, int]]:
    """(piece, text name, text, where) for every place ``needle`` or a piece of it shows."""
    digits = needle.replace(" ", "").replace("-", "").isdigit()
    hits = []
    for name, text in texts.items():
        if digits:
            text = _MEASUREMENT.sub("#", text)
        if len(needle) >= PIECE:
            hits += [(p, name, text, text.index(p)) for p in pieces(needle) if p in text]
        elif name != "otlp wire":  # a short number is looked for as a whole token, not in binary
            match = re.search(rf"(?<![0-9A-Za-z]){re.escape(needle)}(?![0-9A-Za-z])", text)
            if match:
                hits.append((needle, name, text, match.start()))
    return hits


def echo_hunt(sc: EchoScenario, run: EchoRun, rerun: Callable[[EchoScenario], EchoRun]) -> int:
    """Assert no secret of ``sc`` shows anywhere; return the number of bytes searched.

    What also shows in a run of the same call with other secrets of the same shape is
    vocabulary (a status code, a port, a field name), not a leak.
    """
    hits = [(needle, hit) for needle in _needles(sc) for hit in _found(needle, run.texts)]
    if hits:
        control = rerun(sc.control()).texts
        hits = [(needle, hit) for needle, hit in hits if not _found(hit[0], control)]
    for needle, (piece, name, text, at) in hits:
        context = text[max(at - 160, 0) : at + 80]
        raise AssertionError(f"{piece!r} of {needle!r} leaked into {name}: {context!r}")
    return sum(len(t) for t in run.texts.values())


def check_echo_run(sc: EchoScenario, run: EchoRun) -> None:
    """The call really echoed its secrets, and everything that is not a secret survived."""
    for v in sc.secrets():
        assert v.text in run.response_text, f"the server did not echo {v.kind} {v.text!r}"
    assert "flowscope_internal_errors_total{" not in run.exposition
    attrs = run.attributes
    assert attrs["genesys.correlation_id"] == sc.plan.correlation_id
    error_body = run.events["flow.error.body"]["body"]
    assert REDACTED in error_body or not sc.secrets()
    if sc.op == "token":
        return
    assert sorted(attrs.get("flow.error.fields", [])) == sorted(sc.plan.fields)
    for name in sc.plan.fields:
        assert f'field="{name}"' in run.exposition
    if sc.op == "get_execution":
        assert attrs["flow.execution.id"] == sc.execution_id
        return
    assert attrs["flow.id"] == sc.flow_id
    request_body = run.events["flow.request.body"]["body"]
    survivors = (sc.flow_id, sc.order, sc.clock, f"order {sc.order_in_note} shipped")
    for text in survivors:
        assert text in request_body, (text, request_body)
        assert text in error_body, (text, error_body)
    for _, v, _ in sc.json_values:
        if v.kind == "note_card":
            assert f"please charge {REDACTED} today" in request_body
            assert f"please charge {REDACTED} today" in error_body


# -- the echo hunts -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def echo_rig(logs: LogCapture, receiver: OTLPReceiver) -> Iterator[EchoRig]:
    with EchoServer() as server:
        rig = EchoRig(server, receiver, logs)
        yield rig
        rig.provider.shutdown()


def _echo_example(
    sc: EchoScenario, rig: EchoRig, send: Callable[[EchoRig, EchoScenario, FlowMetrics], str]
) -> None:
    def rerun(s: EchoScenario) -> EchoRun:
        return rig.run(s, functools.partial(send, rig))

    run = rerun(sc)
    check_echo_run(sc, run)
    _count_echo(echo_hunt(sc, run, rerun))


@hunt_settings(900)
@given(sc=echo_scenarios())
def test_echoed_secrets_never_leave_the_process(
    sc: EchoScenario, capture_headers: None, echo_rig: EchoRig
) -> None:
    _echo_example(sc, echo_rig, send_sync)


@hunt_settings(500)
@given(sc=echo_scenarios())
def test_echoed_secrets_never_leave_the_process_through_the_async_client(
    sc: EchoScenario, capture_headers: None, echo_rig: EchoRig
) -> None:
    _echo_example(sc, echo_rig, send_async)


@hunt_settings(400)
@given(sc=echo_scenarios(sdk=True))
def test_echoed_secrets_never_leave_the_process_through_the_genesys_sdk(
    sc: EchoScenario, capture_headers: None, echo_rig: EchoRig
) -> None:
    _echo_example(sc, echo_rig, send_sdk)


def send_failing(rig: EchoRig, sc: EchoScenario, metrics: FlowMetrics) -> str:
    """The connection fails, and the exception quotes everything the request carried (as a
    proxy or a protocol library may: ``Illegal header value b'...'``)."""

    def handler(request: httpx.Request) -> httpx.Response:
        values = received_values(str(request.url), request.headers, request.read())
        raise httpx.RemoteProtocolError(
            "peer rejected " + "; ".join(f"{key}={value!r}" for key, _, value in values),
            request=request,
        )

    transport = FlowScopeTransport(
        httpx.MockTransport(handler),
        config=sc.config(),
        tracer_provider=rig.provider,
        metrics=metrics,
    )
    with (
        httpx.Client(transport=transport) as client,
        pytest.raises(httpx.RemoteProtocolError) as err,
    ):
        client.request(**echo_request(sc, "http://127.0.0.1:9"))
    return str(err.value)


@hunt_settings(200)
@given(sc=echo_scenarios())
def test_secrets_quoted_by_a_transport_exception_never_leave_the_process(
    sc: EchoScenario, capture_headers: None, echo_rig: EchoRig
) -> None:
    def rerun(s: EchoScenario) -> EchoRun:
        return echo_rig.run(s, functools.partial(send_failing, echo_rig))

    run = rerun(sc)
    for v in sc.secrets():  # the caller's exception is untouched and quotes every secret
        assert v.text in run.response_text
    assert "flowscope_internal_errors_total{" not in run.exposition
    exception = run.events["exception"]
    # One exception event, written from the call's record; the tracer does not add its own.
    assert run.event_names.count("exception") == 1
    assert exception["exception.type"] == "httpx.RemoteProtocolError"
    assert REDACTED in exception["exception.message"] or not sc.secrets()
    assert exception["exception.stacktrace"].endswith(
        f"httpx.RemoteProtocolError: {exception['exception.message']}\n"
    )
    assert run.status == (2, f"RemoteProtocolError: {exception['exception.message']}")
    assert "flowscope_transport_errors_total{" in run.exposition
    if sc.op == "launch":
        assert run.attributes["flow.id"] == sc.flow_id
    _count_echo(echo_hunt(sc, run, rerun))


def send_launch_and_poll(rig: EchoRig, sc: EchoScenario, metrics: FlowMetrics) -> str:
    """The launch is accepted; its poll finds it FAILED, quoting everything the launch sent."""
    transport = FlowScopeTransport(
        httpx.HTTPTransport(), config=sc.config(), tracer_provider=rig.provider, metrics=metrics
    )
    launch = echo_request(sc, rig.server.url)
    poll = echo_request(replace(sc, op="get_execution"), rig.server.url)
    poll["url"] = f"{rig.server.url}{LAUNCH}/{sc.plan.context_id}"
    with httpx.Client(transport=transport) as client:
        assert client.request(**launch).status_code == 200
        response = client.request(**poll)
    assert response.status_code == 200
    return response.text


def _launch_echo_scenarios() -> st.SearchStrategy[EchoScenario]:
    return echo_scenarios(launch=True).map(
        lambda sc: replace(sc, plan=replace(sc.plan, execution=True))
    )


@hunt_settings(300)
@given(sc=_launch_echo_scenarios())
def test_launch_secrets_quoted_by_the_execution_error_never_leave_the_process(
    sc: EchoScenario, capture_headers: None, echo_rig: EchoRig
) -> None:
    def rerun(s: EchoScenario) -> EchoRun:
        return echo_rig.run(s, functools.partial(send_launch_and_poll, echo_rig), spans=2)

    run = rerun(sc)
    for v in sc.secrets():  # the caller's poll is untouched and quotes every secret
        assert v.text in run.response_text, f"the server did not echo {v.kind} {v.text!r}"
    assert "flowscope_internal_errors_total{" not in run.exposition
    assert run.attributes["flow.execution.status"] == "FAILED"
    assert run.attributes["flow.execution.id"] == sc.plan.context_id
    assert run.attributes["flow.id"] == sc.flow_id  # the poll counts under the launch's flow
    error = run.events["flow.execution.error"]["body"]
    assert REDACTED in error or not sc.secrets()
    assert json.loads(error)["contextId"] == sc.plan.context_id
    code = _ECHO_CODES[sc.plan.status]
    assert f'flowscope_executions_total{{error_code="{code}",flow="{sc.flow_id}"' in run.exposition
    _count_echo(echo_hunt(sc, run, rerun))


# -- the echo rule and payment data, as a user reads them -----------------------------------------


def _launch_over_loopback(
    logs: LogCapture,
    loopback: ScriptedServer,
    reply: Reply,
    inputs: dict[str, Any] | None,
    headers: dict[str, str] | None = None,
) -> tuple[httpx.Response, ReadableSpan, str]:
    """A launch with ``inputs`` (``None``: no ``inputData``) through flowscope, answered with
    ``reply``: what the caller got, the launch's span and the Prometheus exposition (the log
    records stay in ``logs``)."""
    loopback.replies[LAUNCH] = reply
    body: dict[str, Any] = {"flowId": FLOW_ID}
    if inputs is not None:
        body["inputData"] = inputs
    with Outputs(logs) as outputs:
        transport = FlowScopeTransport(
            httpx.HTTPTransport(), tracer_provider=outputs.provider, metrics=outputs.metrics
        )
        with httpx.Client(transport=transport) as client:
            response = client.post(loopback.url + LAUNCH, json=body, headers=headers)
        return response, outputs.exporter.get_finished_spans()[0], metrics_text(outputs.registry)


PIN_ECHO_BODY = {
    "message": "Flow.pin: expected number, got string '4921'",
    "code": "invalid.value",
    "status": 400,
    "contextId": "c0ffee00-4921-4b2a-9e51-000000004921",
    "messageWithParams": "invalid value {value} for {field}",
    "messageParams": {"field": "Flow.cvv", "value": "123"},
    "details": [
        {"errorCode": "invalid.value", "fieldName": "inputData.Flow.cvv", "entityName": "123"},
        {"errorCode": "invalid.value", "fieldName": "inputData.Flow.orderNumber"},
    ],
    "errors": [{"code": "invalid.value", "message": "token Q7t0kenValue-55 is not allowed here"}],
}


def test_a_pin_cvv_and_token_quoted_in_an_error_are_redacted_where_a_user_reads_them(
    logs: LogCapture, loopback: ScriptedServer
) -> None:
    inputs = {
        "Flow.pin": "4921",
        "Flow.cvv": "123",
        "Flow.orderNumber": "4111111111111112",
        "Flow.notes": "charge 4111 1111 1111 1111 please",
    }
    response, span, exposition = _launch_over_loopback(
        logs,
        loopback,
        Reply(
            400,
            [("Content-Type", "application/json"), ("ININ-Correlation-Id", "corr-4921")],
            json.dumps(PIN_ECHO_BODY).encode(),
        ),
        inputs,
        headers={"Authorization": "Bearer Q7t0kenValue-55"},
    )
    record = logs.records[-1]
    assert response.json() == PIN_ECHO_BODY  # the caller gets every byte
    attributes = dict(span.attributes or {})
    assert (
        attributes["flow.error.message"] == "Flow.pin: [REDACTED] number, got string '[REDACTED]'"
    )
    assert list(attributes["flow.error.fields"]) == [
        "inputData.Flow.cvv",
        "inputData.Flow.orderNumber",
    ]
    assert attributes["genesys.correlation_id"] == "corr-4921"
    assert span.status.description == (
        "400 invalid.value: Flow.pin: [REDACTED] number, got string '[REDACTED]' "
        "[fields: inputData.Flow.cvv, inputData.Flow.orderNumber]"
    )
    events = {e.name: dict(e.attributes or {}) for e in span.events}
    assert json.loads(events["flow.error.body"]["body"]) == {
        **PIN_ECHO_BODY,
        "message": "Flow.pin: [REDACTED] number, got string '[REDACTED]'",
        "messageParams": {"field": "Flow.cvv", "value": "[REDACTED]"},
        "details": [
            {
                "errorCode": "invalid.value",
                "fieldName": "inputData.Flow.cvv",
                "entityName": "[REDACTED]",
            },
            {"errorCode": "invalid.value", "fieldName": "inputData.Flow.orderNumber"},
        ],
        "errors": [{"code": "invalid.value", "message": "token [REDACTED] is not allowed here"}],
    }
    assert json.loads(events["flow.request.body"]["body"])["inputData"] == {
        "Flow.pin": "[REDACTED]",
        "Flow.cvv": "[REDACTED]",
        "Flow.orderNumber": "4111111111111112",
        "Flow.notes": "charge [REDACTED] please",
    }
    report = record.flowscope  # type: ignore[attr-defined]
    assert report["error"]["message_params"] == {"field": "Flow.cvv", "value": "[REDACTED]"}
    assert record.getMessage().endswith(
        "-> 400 invalid.value: Flow.pin: [REDACTED] number, got string '[REDACTED]' "
        "[fields: inputData.Flow.cvv, inputData.Flow.orderNumber] "
        f"(correlation id corr-4921, trace id {report['trace_id']})"
    )
    assert 'field="inputData.Flow.orderNumber"' in exposition


def test_redact_pii_false_from_the_environment_keeps_payment_data_readable(
    logs: LogCapture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWSCOPE_REDACT_PII", "false")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"code": "bad.request", "message": "card 4111111111111111"})

    with Outputs(logs) as outputs:
        transport = FlowScopeTransport(
            httpx.MockTransport(handler),
            config=FlowScopeConfig.from_env(),
            tracer_provider=outputs.provider,
            metrics=outputs.metrics,
        )
        inputs = {"Flow.pin": "4921", "Flow.notes": "card 4111111111111111"}
        with httpx.Client(transport=transport) as client:
            client.post(
                f"http://127.0.0.1:9{LAUNCH}", json={"flowId": FLOW_ID, "inputData": inputs}
            )
        span = outputs.exporter.get_finished_spans()[0]
    events = {e.name: dict(e.attributes or {}) for e in span.events}
    assert json.loads(events["flow.request.body"]["body"])["inputData"] == inputs
    assert dict(span.attributes or {})["flow.error.message"] == "card 4111111111111111"


def test_a_response_header_quoting_the_token_is_redacted_in_the_captured_attribute(
    logs: LogCapture, loopback: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_RESPONSE", ".*")
    response, span, _ = _launch_over_loopback(
        logs,
        loopback,
        Reply(
            400,
            [("Content-Type", "application/json"), ("X-Request-Echo", "seen Q7t0kenValue-55")],
            json.dumps({"code": "bad.request", "message": "Invalid input"}).encode(),
        ),
        None,
        headers={"Authorization": "Bearer Q7t0kenValue-55"},
    )
    assert response.headers["X-Request-Echo"] == "seen Q7t0kenValue-55"  # the caller's, intact
    attributes = dict(span.attributes or {})
    assert list(attributes["http.response.header.x_request_echo"]) == ["seen [REDACTED]"]


SECURITY_ANSWER = "Größe-Müller"


def _launch_with_a_security_answer(
    logs: LogCapture, loopback: ScriptedServer, reply: Reply
) -> tuple[httpx.Response, ReadableSpan]:
    """A launch whose ``Flow.securityAnswer`` has non-ASCII letters, answered with ``reply``."""
    response, span, _ = _launch_over_loopback(
        logs, loopback, reply, {"Flow.securityAnswer": SECURITY_ANSWER}
    )
    return response, span


def test_an_echo_in_a_latin1_error_body_is_redacted_and_the_body_shown_as_decoded(
    logs: LogCapture, loopback: ScriptedServer
) -> None:
    """A server that answers in ISO-8859-1 (and says so) quotes a secret with non-ASCII letters:
    the body is shown as its charset decodes it, and the secret is removed from it."""
    error = {"code": "bad.request", "message": f"security answer '{SECURITY_ANSWER}' is wrong"}
    sent = json.dumps(error, ensure_ascii=False).encode("latin-1")
    response, span = _launch_with_a_security_answer(
        logs,
        loopback,
        Reply(400, [("Content-Type", "application/json; charset=iso-8859-1")], sent),
    )
    assert response.content == sent
    events = {e.name: dict(e.attributes or {}) for e in span.events}
    assert json.loads(events["flow.error.body"]["body"]) == {
        "code": "bad.request",
        "message": "security answer '[REDACTED]' is wrong",
    }
    assert dict(span.attributes or {})["flow.error.message"] == (
        "security answer '[REDACTED]' is wrong"
    )


def test_secret_inputs_quoted_by_the_execution_error_are_redacted_on_every_poll(
    logs: LogCapture, loopback: ScriptedServer
) -> None:
    """The launch's PIN, CVV and a password in a note are not sent again by the poll, but its
    execution's error quotes them: they are removed from the poll's span, attributes and event
    alike."""
    error_info = {
        "code": "flow.data.action.failed",
        "message": "Flow.pin 4921 is not a number; cvv 123 rejected; login Q7hunter2x failed",
        "messageParams": {"value": "4921"},
    }
    execution = {
        "id": "exec-1",
        "status": "FAILED",
        "dateLaunched": "2026-01-01T10:00:00.000Z",
        "dateCompleted": "2026-01-01T10:00:02.000Z",
        "flowErrorInfo": error_info,
    }
    json_type = [("Content-Type", "application/json")]
    loopback.replies[LAUNCH] = Reply(200, json_type, json.dumps({"id": "exec-1"}).encode())
    loopback.replies[LAUNCH + "/exec-1"] = Reply(200, json_type, json.dumps(execution).encode())
    inputs = {
        "Flow.pin": "4921",
        "Flow.cvv": "123",
        "Flow.customerId": "c-42",
        "Flow.notes": "password=Q7hunter2x",  # found by a rule in free text, not by its key
    }
    with Outputs(logs) as outputs:
        transport = FlowScopeTransport(
            httpx.HTTPTransport(), tracer_provider=outputs.provider, metrics=outputs.metrics
        )
        with httpx.Client(transport=transport) as client:
            client.post(loopback.url + LAUNCH, json={"flowId": FLOW_ID, "inputData": inputs})
            polled = [client.get(loopback.url + LAUNCH + "/exec-1") for _ in range(2)]
        spans = outputs.exporter.get_finished_spans()
    assert [p.json() for p in polled] == [execution, execution]  # the caller gets every byte
    polls = [s for s in spans if (s.attributes or {}).get("flow.operation") == "get_execution"]
    assert len(polls) == 2
    for poll in polls:
        attributes = dict(poll.attributes or {})
        assert attributes["flow.execution.error.message"] == (
            "Flow.pin [REDACTED] is not a number; cvv [REDACTED] rejected; login [REDACTED] failed"
        )
        events = [dict(e.attributes or {}) for e in poll.events if e.name == "flow.execution.error"]
        assert [json.loads(str(e["body"])) for e in events] == [
            {
                "code": "flow.data.action.failed",
                "message": "Flow.pin [REDACTED] is not a number; cvv [REDACTED] rejected; "
                "login [REDACTED] failed",
                "messageParams": {"value": "[REDACTED]"},
            }
        ]


@pytest.mark.parametrize(
    ("charset", "encoding", "shown"),
    [
        ("iso-8859-1", "latin-1", "Antwort für [REDACTED] ist falsch"),  # named and sent alike
        ("iso-8859-1", "utf-8", "Antwort fÃ¼r [REDACTED] ist falsch"),
        ("utf-8", "latin-1", "Antwort f\ufffdr [REDACTED] ist falsch"),
        ("windows-1252", "utf-8", "Antwort fÃ¼r [REDACTED] ist falsch"),
    ],
)
def test_an_echo_in_a_text_body_is_redacted_whatever_charset_it_names_and_is_sent_in(
    logs: LogCapture, loopback: ScriptedServer, charset: str, encoding: str, shown: str
) -> None:
    """The body is shown as the charset it names decodes it; the answer is removed in the form
    it comes back in, garbled too when the server names one charset and sends another."""
    text = f"Antwort für {SECURITY_ANSWER} ist falsch"
    response, span = _launch_with_a_security_answer(
        logs,
        loopback,
        Reply(400, [("Content-Type", f"text/plain; charset={charset}")], text.encode(encoding)),
    )
    assert response.content == text.encode(encoding)
    events = {e.name: dict(e.attributes or {}) for e in span.events}
    assert events["flow.error.body"]["body"] == shown

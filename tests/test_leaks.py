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
import string
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from flowscope import AsyncFlowScopeTransport, FlowMetrics, FlowScopeConfig, FlowScopeTransport

from .conftest import LogCapture, report_lines
from .otlp_receiver import OTLPReceiver, iter_strings
from .servers import Reply, ScriptedServer

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


@pytest.fixture(scope="module", autouse=True)
def report_figures(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if Figures.examples:
        report_lines(
            request,
            [
                f"\nleak hunt: {Figures.examples} examples, "
                f"{Figures.bytes_searched:,} bytes searched"
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

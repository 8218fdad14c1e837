"""The I/O edge: httpx transports that open the call's span (through the OpenTelemetry
instrumentation) and let flowscope observe the exchange without changing it.

Layering, outermost first::

    FlowScopeTransport -> OpenTelemetry transport (owns the CLIENT span) -> _Observe -> yours

``_Observe`` runs inside the span: it matches the route, forwards the request, reads at most
``capture_limit_bytes`` of an error body and hands the caller a response that replays those bytes
and then the rest of the original stream.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import httpx
from opentelemetry.instrumentation.httpx import (
    AsyncOpenTelemetryTransport,
    SyncOpenTelemetryTransport,
)
from opentelemetry.instrumentation.utils import suppress_http_instrumentation

from ._config import FlowScopeConfig
from ._engine import CURRENT_SPAN, LAST_RECORD, Call, Engine
from ._sinks import status_description
from ._tracer import GuardedTracerProvider

if TYPE_CHECKING:
    from opentelemetry.trace import Span, TracerProvider

    from ._metrics import FlowMetrics

__all__ = ["AsyncFlowScopeTransport", "FlowScopeTransport"]

logger = logging.getLogger("flowscope")


# -- streams that replay what was read, then the rest --------------------------------------------


class _ReplayStream(httpx.SyncByteStream):
    """Yields the chunks already read, then the rest of the original stream, unchanged.

    If reading the original failed part-way, the same exception is raised at the same place
    the caller would have met it.
    """

    def __init__(
        self,
        chunks: list[bytes],
        rest: Iterator[bytes] | None,
        error: BaseException | None,
        original: httpx.SyncByteStream,
    ) -> None:
        self._chunks = chunks
        self._rest = rest
        self._error = error
        self._original = original

    def __iter__(self) -> Iterator[bytes]:
        chunks, self._chunks = self._chunks, []
        yield from chunks
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        if self._rest is not None:
            rest, self._rest = self._rest, None
            yield from rest

    def close(self) -> None:
        self._original.close()


class _AsyncReplayStream(httpx.AsyncByteStream):
    """The async twin of :class:`_ReplayStream`."""

    def __init__(
        self,
        chunks: list[bytes],
        rest: AsyncIterator[bytes] | None,
        error: BaseException | None,
        original: httpx.AsyncByteStream,
    ) -> None:
        self._chunks = chunks
        self._rest = rest
        self._error = error
        self._original = original

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks, self._chunks = self._chunks, []
        for chunk in chunks:
            yield chunk
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        if self._rest is not None:
            rest, self._rest = self._rest, None
            async for chunk in rest:
                yield chunk

    async def aclose(self) -> None:
        await self._original.aclose()


def _rebuild(
    response: httpx.Response, stream: httpx.SyncByteStream | httpx.AsyncByteStream
) -> httpx.Response:
    # A new Response (not the read one) keeps `.elapsed`, streaming and `.json()` working.
    return httpx.Response(
        response.status_code,
        headers=response.headers,
        stream=stream,
        extensions=response.extensions,
    )


class _Tee:
    """Bookkeeping shared by the sync and async readers."""

    __slots__ = ("chunks", "complete", "error", "limit", "seen")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.chunks: list[bytes] = []
        self.seen = 0
        self.complete = False
        self.error: BaseException | None = None

    def add(self, chunk: bytes) -> bool:
        """Keep a chunk; True when enough has been read."""
        self.chunks.append(chunk)
        self.seen += len(chunk)
        return self.seen > self.limit

    @property
    def captured(self) -> bytes:
        return b"".join(self.chunks)[: self.limit]


# -- the observing layer (inside the span) -------------------------------------------------------


class _Observe(httpx.BaseTransport):
    def __init__(self, transport: httpx.BaseTransport, engine: Engine) -> None:
        self._transport = transport
        self._engine = engine

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        engine = self._engine
        span = _take_span()
        call = _begin(engine, request, span)
        if call is None:
            return _forward(self._transport, request)
        try:
            response = _forward(self._transport, request)
        except BaseException as exc:
            _fail(engine, call, exc)
            raise
        limit = _read_limit(engine, call, response)
        if limit <= 0:
            _finish(engine, call, response, None)
            return response
        tee = _Tee(limit)
        original = response.stream
        assert isinstance(original, httpx.SyncByteStream)
        iterator = iter(original)
        try:
            for chunk in iterator:
                if tee.add(chunk):
                    break
            else:
                tee.complete = True
        except Exception as exc:  # the caller meets it when it reads the body
            tee.error = exc
        rest = None if tee.complete or tee.error else iterator
        replay = _rebuild(response, _ReplayStream(tee.chunks, rest, tee.error, original))
        _finish(engine, call, response, tee)
        return replay

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> _Observe:
        self._transport.__enter__()
        return self

    def __exit__(self, *args: Any) -> None:
        self._transport.__exit__(*args)


class _AsyncObserve(httpx.AsyncBaseTransport):
    def __init__(self, transport: httpx.AsyncBaseTransport, engine: Engine) -> None:
        self._transport = transport
        self._engine = engine

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        engine = self._engine
        span = _take_span()
        call = _begin(engine, request, span)
        if call is None:
            return await _aforward(self._transport, request)
        try:
            response = await _aforward(self._transport, request)
        except BaseException as exc:
            _fail(engine, call, exc)
            raise
        limit = _read_limit(engine, call, response)
        if limit <= 0:
            _finish(engine, call, response, None)
            return response
        tee = _Tee(limit)
        original = response.stream
        assert isinstance(original, httpx.AsyncByteStream)
        iterator = original.__aiter__()
        try:
            async for chunk in iterator:
                if tee.add(chunk):
                    break
            else:
                tee.complete = True
        except Exception as exc:
            tee.error = exc
        rest = None if tee.complete or tee.error else iterator
        replay = _rebuild(response, _AsyncReplayStream(tee.chunks, rest, tee.error, original))
        _finish(engine, call, response, tee)
        return replay

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def __aenter__(self) -> _AsyncObserve:
        await self._transport.__aenter__()
        return self

    async def __aexit__(self, *args: Any) -> None:
        await self._transport.__aexit__(*args)


def _forward(transport: httpx.BaseTransport, request: httpx.Request) -> httpx.Response:
    if hasattr(transport.handle_request, "__wrapped__"):
        # The OpenTelemetry httpx instrumentor has patched this transport too (globally or
        # per client): one call gets one span, the one flowscope enriches.
        with suppress_http_instrumentation():
            return transport.handle_request(request)
    return transport.handle_request(request)


async def _aforward(transport: httpx.AsyncBaseTransport, request: httpx.Request) -> httpx.Response:
    if hasattr(transport.handle_async_request, "__wrapped__"):
        with suppress_http_instrumentation():
            return await transport.handle_async_request(request)
    return await transport.handle_async_request(request)


# Each step below is guarded: flowscope failing must never change what the caller gets.


def _take_span() -> Span | None:
    span = CURRENT_SPAN.get()
    if span is not None:
        CURRENT_SPAN.set(None)
    return span


def _begin(engine: Engine, request: httpx.Request, span: Span | None) -> Call | None:
    try:
        return engine.begin(request, span)
    except Exception as exc:
        engine.internal_error("request", exc)
        return None


def _read_limit(engine: Engine, call: Call, response: httpx.Response) -> int:
    try:
        return engine.read_limit(call, response.status_code, response.headers)
    except Exception as exc:
        engine.internal_error("capture", exc)
        return 0


def _finish(engine: Engine, call: Call, response: httpx.Response, tee: _Tee | None) -> None:
    try:
        if tee is None:
            engine.finish(call, response.status_code, response.headers, None, False, 0)
        else:
            engine.finish(
                call,
                response.status_code,
                response.headers,
                tee.captured,
                tee.complete,
                tee.seen,
            )
    except Exception as exc:
        engine.internal_error("record", exc)


def _fail(engine: Engine, call: Call, exc: BaseException) -> None:
    try:
        engine.fail(call, exc)
    except Exception as inner:
        engine.internal_error("record", inner)


# -- hooks given to the OpenTelemetry transport --------------------------------------------------


def _request_hook(span: Span, request: Any) -> None:
    CURRENT_SPAN.set(span)


async def _async_request_hook(span: Span, request: Any) -> None:
    CURRENT_SPAN.set(span)


def _response_hook(span: Span, request: Any, response: Any) -> None:
    # The instrumentation resets the span status after our layer returns; set ours last.
    record = LAST_RECORD.get()
    if record is None:
        return
    LAST_RECORD.set(None)
    if record.status_code is not None and record.status_code >= 400 and span.is_recording():
        from opentelemetry.trace import StatusCode

        span.set_status(StatusCode.ERROR, status_description(record))


async def _async_response_hook(span: Span, request: Any, response: Any) -> None:
    _response_hook(span, request, response)


def _stable_semconv(transport: Any) -> None:
    """Use the stable HTTP attribute names (``url.full``...) whatever the global opt-in says."""
    try:
        from opentelemetry.instrumentation._semconv import _report_new, _StabilityMode

        if not _report_new(transport._sem_conv_opt_in_mode):
            transport._sem_conv_opt_in_mode = _StabilityMode.HTTP
    except Exception:  # a future instrumentation may move this; its defaults still work
        logger.debug("could not opt the httpx instrumentation into stable semconv", exc_info=True)


# -- the public transports -----------------------------------------------------------------------


class FlowScopeTransport(httpx.BaseTransport):
    """An ``httpx.BaseTransport`` that records every flow call it carries.

    Wraps ``transport`` (default ``httpx.HTTPTransport()``); calls that match no route pass
    through with only the plain OpenTelemetry span.
    """

    def __init__(
        self,
        transport: httpx.BaseTransport | None = None,
        *,
        config: FlowScopeConfig | None = None,
        tracer_provider: TracerProvider | None = None,
        metrics: FlowMetrics | None = None,
        _engine: Engine | None = None,
    ) -> None:
        self.wrapped = transport if transport is not None else httpx.HTTPTransport()
        self.engine = _engine or Engine(config, metrics)
        self._otel = SyncOpenTelemetryTransport(
            _Observe(self.wrapped, self.engine),
            tracer_provider=GuardedTracerProvider(tracer_provider, self.engine),
            request_hook=_request_hook,
            response_hook=_response_hook,
        )
        _stable_semconv(self._otel)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._otel.handle_request(request)

    def close(self) -> None:
        self._otel.close()

    def __enter__(self) -> FlowScopeTransport:
        self.wrapped.__enter__()
        return self

    def __exit__(self, *args: Any) -> None:
        self.wrapped.__exit__(*args)


class AsyncFlowScopeTransport(httpx.AsyncBaseTransport):
    """The ``httpx.AsyncBaseTransport`` twin of :class:`FlowScopeTransport`."""

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        config: FlowScopeConfig | None = None,
        tracer_provider: TracerProvider | None = None,
        metrics: FlowMetrics | None = None,
        _engine: Engine | None = None,
    ) -> None:
        self.wrapped = transport if transport is not None else httpx.AsyncHTTPTransport()
        self.engine = _engine or Engine(config, metrics)
        self._otel = AsyncOpenTelemetryTransport(
            _AsyncObserve(self.wrapped, self.engine),
            tracer_provider=GuardedTracerProvider(tracer_provider, self.engine),
            request_hook=_async_request_hook,
            response_hook=_async_response_hook,
        )
        _stable_semconv(self._otel)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._otel.handle_async_request(request)

    async def aclose(self) -> None:
        await self._otel.aclose()

    async def __aenter__(self) -> AsyncFlowScopeTransport:
        await self.wrapped.__aenter__()
        return self

    async def __aexit__(self, *args: Any) -> None:
        await self.wrapped.__aexit__(*args)

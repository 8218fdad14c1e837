"""The I/O edge: httpx transports that open the call's span (through the OpenTelemetry
instrumentation) and let flowscope observe the exchange without changing it.

Layering, outermost first::

    FlowScopeTransport -> OpenTelemetry transport (owns the CLIENT span) -> _Observe -> yours

``_Observe`` runs inside the span: it matches the route, forwards the request, reads at most
``capture_limit_bytes`` of an error body and hands the caller a response that replays those bytes
and then the rest of the original stream. It hands the exchange to the engine, which returns the
call's record, and the record to the sinks (span, metrics, log, ``on_record``). The record then
rides on the response it describes until the OpenTelemetry response hook sets the span status
from it and takes it off.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import httpx
from opentelemetry.instrumentation.utils import suppress_http_instrumentation

from ._config import FlowScopeConfig
from ._engine import Call, Capture
from ._otel import RECORD_EXTENSION, call_span, opentelemetry_transport, trace_ids
from ._pipeline import Pipeline
from ._record import CallRecord

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

    from ._metrics import FlowMetrics

__all__ = ["AsyncFlowScopeTransport", "FlowScopeTransport"]

TransportT = TypeVar("TransportT", httpx.BaseTransport, httpx.AsyncBaseTransport)

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
    def __init__(self, transport: httpx.BaseTransport, pipeline: Pipeline) -> None:
        self._transport = transport
        self._pipeline = pipeline

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        pipeline = self._pipeline
        call = _begin(pipeline, request)
        if call is None:
            return _forward(self._transport, request)
        try:
            response = _forward(self._transport, request)
        except BaseException as exc:
            _fail(pipeline, call, exc)
            raise
        limit = _read_limit(pipeline, call, response)
        if limit <= 0:
            return _finish(pipeline, call, response, None)
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
        return _finish(pipeline, call, replay, tee)

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> _Observe:
        self._transport.__enter__()
        return self

    def __exit__(self, *args: Any) -> None:
        self._transport.__exit__(*args)


class _AsyncObserve(httpx.AsyncBaseTransport):
    def __init__(self, transport: httpx.AsyncBaseTransport, pipeline: Pipeline) -> None:
        self._transport = transport
        self._pipeline = pipeline

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        pipeline = self._pipeline
        call = _begin(pipeline, request)
        if call is None:
            return await _aforward(self._transport, request)
        try:
            response = await _aforward(self._transport, request)
        except BaseException as exc:
            _fail(pipeline, call, exc)
            raise
        limit = _read_limit(pipeline, call, response)
        if limit <= 0:
            return _finish(pipeline, call, response, None)
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
        return _finish(pipeline, call, replay, tee)

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


def _begin(pipeline: Pipeline, request: httpx.Request) -> Call | None:
    try:
        return pipeline.engine.begin(request, trace_ids(call_span()))
    except Exception as exc:
        pipeline.internal_error("request", exc)
        return None


def _read_limit(pipeline: Pipeline, call: Call, response: httpx.Response) -> int:
    try:
        return pipeline.engine.read_limit(call, response.status_code, response.headers)
    except Exception as exc:
        pipeline.internal_error("capture", exc)
        return 0


def _finish(
    pipeline: Pipeline, call: Call, response: httpx.Response, tee: _Tee | None
) -> httpx.Response:
    """Build the record, hand it to the sinks, and let it ride on the response it describes."""
    capture = None if tee is None else Capture(tee.captured, tee.complete, tee.seen)
    try:
        record = pipeline.engine.finish(call, response.status_code, response.headers, capture)
    except Exception as exc:
        pipeline.internal_error("record", exc)
        return response
    pipeline.sinks.publish(record)
    response.extensions[RECORD_EXTENSION] = record
    return response


def _fail(pipeline: Pipeline, call: Call, exc: BaseException) -> None:
    try:
        record = pipeline.engine.fail(call, exc)
    except Exception as inner:
        pipeline.internal_error("record", inner)
        return
    pipeline.sinks.publish(record)


# -- the public transports -----------------------------------------------------------------------


class _Wrapper(Generic[TransportT]):
    """What both public transports share: the layers around the wrapped transport."""

    wrapped: TransportT

    def __init__(
        self,
        transport: TransportT | None = None,
        *,
        config: FlowScopeConfig | None = None,
        tracer_provider: TracerProvider | None = None,
        metrics: FlowMetrics | None = None,
        on_record: Callable[[CallRecord], None] | None = None,
        _pipeline: Pipeline | None = None,
    ) -> None:
        self.wrapped = transport if transport is not None else self._default_transport()
        pipeline = _pipeline or Pipeline(config, metrics, on_record)
        self._otel: Any = opentelemetry_transport(
            self._observer(pipeline), tracer_provider, pipeline.redactor, pipeline.internal_error
        )

    def _default_transport(self) -> TransportT:
        raise NotImplementedError

    def _observer(self, pipeline: Pipeline) -> httpx.BaseTransport | httpx.AsyncBaseTransport:
        raise NotImplementedError


class FlowScopeTransport(_Wrapper[httpx.BaseTransport], httpx.BaseTransport):
    """An ``httpx.BaseTransport`` that records every flow call it carries.

    Wraps ``transport`` (default ``httpx.HTTPTransport()``); calls that match no route pass
    through with only the plain OpenTelemetry span. ``on_record(record)`` is called once per flow
    call with its :class:`CallRecord`, after the span, metrics and log sinks; an exception in it
    is counted in ``flowscope_internal_errors_total{stage="sink"}`` and never reaches the caller.
    Also takes ``config``, ``tracer_provider`` and ``metrics``, as :func:`flowscope.instrument`.
    """

    def _default_transport(self) -> httpx.BaseTransport:
        return httpx.HTTPTransport()

    def _observer(self, pipeline: Pipeline) -> httpx.BaseTransport:
        return _Observe(self.wrapped, pipeline)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response: httpx.Response = self._otel.handle_request(request)
        return response

    def close(self) -> None:
        self._otel.close()

    def __enter__(self) -> FlowScopeTransport:
        self.wrapped.__enter__()
        return self

    def __exit__(self, *args: Any) -> None:
        self.wrapped.__exit__(*args)


class AsyncFlowScopeTransport(_Wrapper[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport):
    """The ``httpx.AsyncBaseTransport`` twin of :class:`FlowScopeTransport`."""

    def _default_transport(self) -> httpx.AsyncBaseTransport:
        return httpx.AsyncHTTPTransport()

    def _observer(self, pipeline: Pipeline) -> httpx.AsyncBaseTransport:
        return _AsyncObserve(self.wrapped, pipeline)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response: httpx.Response = await self._otel.handle_async_request(request)
        return response

    async def aclose(self) -> None:
        await self._otel.aclose()

    async def __aenter__(self) -> AsyncFlowScopeTransport:
        await self.wrapped.__aenter__()
        return self

    async def __aexit__(self, *args: Any) -> None:
        await self.wrapped.__aexit__(*args)

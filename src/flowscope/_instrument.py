"""Instrument an existing ``httpx.Client`` / ``httpx.AsyncClient`` in place."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, overload

import httpx

from ._config import FlowScopeConfig
from ._pipeline import Pipeline
from ._record import CallRecord
from ._transport import AsyncFlowScopeTransport, FlowScopeTransport

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

    from ._labels import MetricsSink

__all__ = ["instrument", "uninstrument", "wait_for_executions"]

ClientT = TypeVar("ClientT", httpx.Client, httpx.AsyncClient)

_ORIGINALS = "_flowscope_originals"
_SETTINGS = "_flowscope_settings"


@dataclass(frozen=True, eq=False)
class _Settings:
    """What a client was instrumented with; providers and metrics compare by identity."""

    config: FlowScopeConfig
    tracer_provider: Any
    metrics: Any
    on_record: Any

    def differences(self, other: _Settings) -> list[str]:
        """The names of the settings that differ (never their values: configs hold secrets)."""
        names = []
        if self.config != other.config:
            names.append("config")
        if self.tracer_provider is not other.tracer_provider:
            names.append("tracer_provider")
        if self.metrics is not other.metrics:
            names.append("metrics")
        if self.on_record != other.on_record:  # == so the same bound method twice is the same
            names.append("on_record")
        return names


def instrument(
    client: ClientT,
    *,
    config: FlowScopeConfig | None = None,
    tracer_provider: TracerProvider | None = None,
    metrics: MetricsSink | None = None,
    on_record: Callable[[CallRecord], None] | None = None,
) -> ClientT:
    """Wrap the client's transport and every mounted transport; returns the same client.

    Calling it again on an instrumented client with the same settings does nothing; with
    different ones it raises ``ValueError`` rather than silently keeping the first (call
    :func:`uninstrument` first to change them). The client's event hooks, mounts, auth, base URL
    and timeouts are untouched; they run exactly as before.

    ``on_record(record)`` is called once per flow call with its :class:`CallRecord`, after the
    span, metrics and log sinks: the way to act on calls in code (count them, collect failures,
    forward them elsewhere). An exception in it is counted in
    ``flowscope_internal_errors_total{stage="sink"}`` and never reaches the caller.
    """
    settings = _Settings(config or FlowScopeConfig(), tracer_provider, metrics, on_record)
    if getattr(client, _ORIGINALS, None) is not None:
        current = getattr(client, _SETTINGS, None)
        differ = current.differences(settings) if current is not None else []
        if differ:
            raise ValueError(
                f"this client is already instrumented with different settings "
                f"({', '.join(differ)}); call flowscope.uninstrument(client) first to change them"
            )
        return client
    pipeline = Pipeline(config, metrics, on_record)
    wrap: Any
    if isinstance(client, httpx.AsyncClient):
        wrap = AsyncFlowScopeTransport
    elif isinstance(client, httpx.Client):
        wrap = FlowScopeTransport
    else:
        raise TypeError(
            f"instrument() takes an httpx.Client or httpx.AsyncClient, not {type(client).__name__}"
        )

    def wrapped(transport: Any) -> Any:
        if transport is None or isinstance(
            transport, (FlowScopeTransport, AsyncFlowScopeTransport)
        ):
            return transport
        return wrap(transport, tracer_provider=tracer_provider, _pipeline=pipeline)

    originals = (client._transport, dict(client._mounts))
    client._transport = wrapped(client._transport)
    client._mounts = {pattern: wrapped(t) for pattern, t in client._mounts.items()}
    setattr(client, _ORIGINALS, originals)
    setattr(client, _SETTINGS, settings)
    return client


def is_instrumented(client: httpx.Client | httpx.AsyncClient) -> bool:
    """Whether :func:`instrument` has wrapped this client (and it was not undone)."""
    return getattr(client, _ORIGINALS, None) is not None


def uninstrument(client: httpx.Client | httpx.AsyncClient) -> None:
    """Put back the transports :func:`instrument` replaced."""
    originals = getattr(client, _ORIGINALS, None)
    if originals is None:
        return
    transport, mounts = originals
    client._transport = transport
    client._mounts = mounts
    setattr(client, _ORIGINALS, None)
    setattr(client, _SETTINGS, None)


def _followers(client: httpx.Client | httpx.AsyncClient) -> list[Any]:
    transports = [client._transport, *client._mounts.values()]
    found: list[Any] = []
    for transport in transports:
        follower = getattr(transport, "follower", None)
        if follower is not None and all(follower is not seen for seen in found):
            found.append(follower)
    return found


@overload
def wait_for_executions(
    client: httpx.AsyncClient, timeout: float | None = ...
) -> Awaitable[bool]: ...


@overload
def wait_for_executions(client: httpx.Client, timeout: float | None = ...) -> bool: ...


def wait_for_executions(
    client: httpx.Client | httpx.AsyncClient, timeout: float | None = 60.0
) -> bool | Awaitable[bool]:
    """Wait until every execution launched through ``client`` has been followed to its outcome.

    For a batch job that launches flows and exits: with ``follow_executions=True``, call it
    before closing the client so that each outcome is counted (and pushed, or scraped). Returns
    ``False`` if ``timeout`` seconds passed first (an execution still unfinished is then counted
    ``__unobserved__`` when it is forgotten). For an ``httpx.AsyncClient`` it returns an
    awaitable: ``await flowscope.wait_for_executions(client)``. Without ``follow_executions``
    there is nothing to wait for and it returns ``True`` at once.
    """
    followers = _followers(client)
    if isinstance(client, httpx.AsyncClient):

        async def wait_all() -> bool:
            results = [await f.wait_idle(timeout) for f in followers]
            return all(results)

        return wait_all()
    return all([f.wait_idle(timeout) for f in followers])

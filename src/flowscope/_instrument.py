"""Instrument an existing ``httpx.Client`` / ``httpx.AsyncClient`` in place."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from ._config import FlowScopeConfig
from ._engine import Engine
from ._transport import AsyncFlowScopeTransport, FlowScopeTransport

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

    from ._metrics import FlowMetrics

__all__ = ["instrument", "uninstrument"]

ClientT = TypeVar("ClientT", httpx.Client, httpx.AsyncClient)

_ORIGINALS = "_flowscope_originals"


def instrument(
    client: ClientT,
    *,
    config: FlowScopeConfig | None = None,
    tracer_provider: TracerProvider | None = None,
    metrics: FlowMetrics | None = None,
) -> ClientT:
    """Wrap the client's transport and every mounted transport; returns the same client.

    Calling it again on an instrumented client does nothing. The client's event hooks, mounts,
    auth, base URL and timeouts are untouched; they run exactly as before.
    """
    if getattr(client, _ORIGINALS, None) is not None:
        return client
    engine = Engine(config, metrics)
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
        return wrap(transport, tracer_provider=tracer_provider, _engine=engine)

    originals = (client._transport, dict(client._mounts))
    client._transport = wrapped(client._transport)
    client._mounts = {pattern: wrapped(t) for pattern, t in client._mounts.items()}
    setattr(client, _ORIGINALS, originals)
    return client


def uninstrument(client: httpx.Client | httpx.AsyncClient) -> None:
    """Put back the transports :func:`instrument` replaced."""
    originals = getattr(client, _ORIGINALS, None)
    if originals is None:
        return
    transport, mounts = originals
    client._transport = transport
    client._mounts = mounts
    setattr(client, _ORIGINALS, None)

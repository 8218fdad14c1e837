"""The public face: one :class:`FlowApi`, reachable on loopback or in-process."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from email.utils import formatdate
from types import TracebackType

import httpx

from ._api import FlowApi
from ._flows import SandboxFlow, default_flows
from ._http import LoopbackServer

__all__ = ["Sandbox"]

_log = logging.getLogger("flowscope.sandbox")


class Sandbox:
    """The flow API on a loopback port, served from a background thread.

    ``port=0`` picks a free port when :meth:`start` binds. Use it as a context manager so the
    socket is always released::

        with Sandbox(seed=1) as sandbox:
            httpx.post(f"{sandbox.url}/oauth/token", ...)

    :meth:`transport` answers from the same state without any socket, for fast in-process use.
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
        #: The API model both the loopback server and :meth:`transport` answer from.
        self.api = FlowApi(
            default_flows() if flows is None else flows,
            client_id=client_id,
            client_secret=client_secret,
            rate_limit_per_minute=rate_limit_per_minute,
            token_ttl=token_ttl,
            execution_seconds=execution_seconds,
            seed=seed,
        )
        self._server: LoopbackServer | None = None

    @property
    def port(self) -> int:
        """The bound port once started (the requested one before)."""
        return self._requested_port if self._server is None else self._server.port

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
        return list(self.api.flows.values())

    @property
    def stats(self) -> dict[str, int]:
        """A snapshot of what was served (over loopback and through :meth:`transport`).

        ``requests``; one key per route (``token``, ``launch``, ``get_execution``, ``get_flow``,
        ``other``); one ``status_<code>`` per status sent.
        """
        return self.api.stats

    def start(self) -> Sandbox:
        """Bind and serve in a daemon thread; returns ``self`` so it chains."""
        if self._server is not None:
            raise RuntimeError("sandbox already started")
        self._server = LoopbackServer(
            self.api, self.host, self._requested_port, verbose=self.verbose
        )
        _log.debug("sandbox listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving, close the listening socket and every open connection, join the thread."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def transport(self) -> httpx.MockTransport:
        """An httpx transport that answers from this sandbox in-process, started or not.

        The same API model answers as on loopback (same state, tokens and rate limits), minus
        the socket: for tests and tools that need many calls fast. Works for sync and async
        clients; any base URL will do::

            client = httpx.Client(transport=sandbox.transport(), base_url="http://sandbox")
        """
        api = self.api

        def answer(request: httpx.Request) -> httpx.Response:
            target = request.url.raw_path.decode("ascii")
            reply = api.handle(request.method, target, request.headers, request.content)
            headers = [("Date", formatdate(usegmt=True)), *reply.headers]
            return httpx.Response(reply.status, headers=headers, content=reply.body)

        return httpx.MockTransport(answer)

    def issue_token(self) -> str:
        """A valid bearer token, without the HTTP round trip or the token rate limit."""
        return self.api.issue_token()

    def reset_rate_limit(self) -> None:
        """Forget every rate-limit window (API and token endpoint)."""
        self.api.reset_rate_limit()

"""The stdlib HTTP server that puts a :class:`FlowApi` on a loopback port.

It only translates: it reads the request (``Content-Length`` or chunked framing, ``Expect:
100-continue``), calls :meth:`FlowApi.handle`, and writes the :class:`Reply` back with the
headers that belong to the connection. It decides nothing about the API. Stdlib only, so the
benchmarks' server costs as little as it can.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ._api import FlowApi, Reply

__all__ = ["LoopbackServer"]

_log = logging.getLogger("flowscope.sandbox")

#: Bodies up to this size are read and discarded so the connection stays usable; beyond it the
#: sandbox answers 413 and closes the connection instead of reading on.
_DRAIN_LIMIT = 32 * 1024 * 1024


class _Unreadable(Exception):
    """The request's framing is broken: answer 400 and close the connection."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], api: FlowApi, verbose: bool) -> None:
        self.api = api
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

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, alive=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, alive=False)

    def _serve(self) -> None:
        try:
            body = self._read_body()
        except _Unreadable as unreadable:
            self.close_connection = True
            self._write(self.server.api.refuse(400, str(unreadable)))
            return
        reply = self.server.api.handle(self.command, self.path, _headers(self), body)
        if reply.status == 500:
            self.close_connection = True  # the sandbox failed mid-request: start afresh
        self._write(reply)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            _log.info("%s %s", self.address_string(), format % args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Malformed request lines and the like: answer in the platform's shape, not HTML.
        self.close_connection = True
        self._write(self.server.api.refuse(code, message or HTTPStatus(code).phrase))

    def _write(self, reply: Reply) -> None:
        lines = [
            f"{self.protocol_version} {reply.status} {_phrase(reply.status)}",
            f"Date: {self.date_time_string()}",
            *(f"{name}: {value}" for name, value in reply.headers),
            f"Content-Length: {len(reply.body)}",
        ]
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        # One write: a second small write would wait on the peer's delayed ACK.
        self.wfile.write(head + reply.body)
        if self.server.verbose:
            self.log_request(reply.status, len(reply.body))

    def _read_body(self) -> bytes | None:
        """The request body, or ``None`` when it is too large to be worth reading."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length_text = self.headers.get("Content-Length")
        if not length_text:
            return b""
        try:
            length = int(length_text)
        except ValueError:
            length = -1
        if length < 0:
            raise _Unreadable("Invalid Content-Length header.")
        if length > _DRAIN_LIMIT:
            self.close_connection = True
            return None
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = self.rfile.readline(1024)
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _Unreadable("Malformed chunked request body.") from None
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


class LoopbackServer:
    """A :class:`FlowApi` served from a daemon thread until :meth:`stop`."""

    def __init__(self, api: FlowApi, host: str, port: int, *, verbose: bool = False) -> None:
        self._server = _Server((host, port), api, verbose)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"flowscope-sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()

    @property
    def port(self) -> int:
        """The bound port (a free one when 0 was asked for)."""
        return int(self._server.server_address[1])

    def stop(self) -> None:
        """Stop serving, close the listening socket and every open connection, join the thread."""
        self._server.shutdown()
        self._server.server_close()
        self._server.drop_connections()
        self._thread.join()


def _headers(handler: BaseHTTPRequestHandler) -> dict[str, str]:
    # The first of repeated headers wins, as with ``handler.headers.get``.
    headers: dict[str, str] = {}
    for name, value in handler.headers.items():
        headers.setdefault(name.lower(), value)
    return headers


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""

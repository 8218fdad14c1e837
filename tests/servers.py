"""A scripted HTTP server on loopback: each path answers with exactly the bytes a test asks for."""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from typing_extensions import Self


@dataclass
class Reply:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | Iterable[bytes] = b""
    chunked: bool = False
    #: Close the connection after sending this many body bytes (a server dying mid-body).
    cut_after: int | None = None
    delay: float = 0.0
    chunk_delay: float = 0.0
    #: Never answer: hold the request until the server stops (a read timeout for the client).
    stall: bool = False


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without this, Nagle's algorithm and the
    # client's delayed ACK stall every keep-alive response by tens of milliseconds.
    disable_nagle_algorithm = True
    server: ScriptedServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append((self.command, self.path, dict(self.headers.items()), body))
        path = self.path.split("?", 1)[0]
        script = self.server.replies.get(path) or Reply(404, [("Content-Type", "text/plain")], b"")
        reply = script if isinstance(script, Reply) else script(body)
        self.server.arrive()
        try:
            self._answer(reply)
        finally:
            self.server.leave()

    def _answer(self, reply: Reply) -> None:
        if reply.stall:
            self.server.stopping.wait()
            self.close_connection = True
            return
        self.server.hold()
        if reply.delay:
            time.sleep(reply.delay)
        chunks = [reply.body] if isinstance(reply.body, bytes) else list(reply.body)
        data = b"".join(chunks)
        self.send_response_only(reply.status)
        for k, v in reply.headers:
            self.send_header(k, v)
        if reply.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(data)))
        if reply.cut_after is not None:
            self.send_header("Connection", "close")
        self.end_headers()
        sent = 0
        for chunk in chunks:
            if reply.cut_after is not None and sent + len(chunk) > reply.cut_after:
                part = chunk[: reply.cut_after - sent]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part) if reply.chunked else part)
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if reply.chunked:
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            else:
                self.wfile.write(chunk)
            sent += len(chunk)
            if reply.chunk_delay:
                self.wfile.flush()
                time.sleep(reply.chunk_delay)
        if reply.chunked:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve


class LoopbackServer(ThreadingHTTPServer):
    """A threaded HTTP server on a free 127.0.0.1 port, started and stopped by its test."""

    daemon_threads = True
    request_queue_size = 512

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ScriptedServer(LoopbackServer):
    """Answers each path with its scripted :class:`Reply` (or a function of the request body).

    It also counts requests in flight (arrived, not yet answered) and the most at once, and can
    hold every answer until ``hold_until`` requests have arrived: proof that calls overlapped.
    """

    def __init__(self, hold_until: int = 0) -> None:
        super().__init__(_Handler)
        self.replies: dict[str, Reply | Callable[[bytes], Reply]] = {}
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []
        self.hold_until = hold_until
        self.arrived = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.stopping = threading.Event()
        self._counts = threading.Condition()

    def arrive(self) -> None:
        with self._counts:
            self.arrived += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._counts.notify_all()

    def leave(self) -> None:
        with self._counts:
            self.in_flight -= 1

    def hold(self) -> None:
        """Wait until ``hold_until`` requests have arrived (at most 30 s, or until stopped)."""
        with self._counts:
            if not self._counts.wait_for(
                lambda: self.arrived >= self.hold_until or self.stopping.is_set(), timeout=30
            ):
                self.hold_until = 0  # they are not coming: answer everyone now, and fail the test

    def stop(self) -> None:
        self.stopping.set()
        with self._counts:
            self._counts.notify_all()
        super().stop()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that timed out or hung up mid-body is what some tests are about: not noise.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]

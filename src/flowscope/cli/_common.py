"""What every command shares: one-line errors, reading JSON, tracing, and call records."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from flowscope import CallRecord

__all__ = [
    "CliError",
    "LastRecord",
    "load_json",
    "otlp_target",
    "reachable",
    "read_input",
    "shown_url",
    "tracer_provider",
]


class CliError(Exception):
    """A problem the user can fix; shown as one line on stderr, never as a traceback.

    ``exit_code`` is 2 for usage mistakes (bad arguments, unreadable files) and 1 for
    failures of the thing the command tried to do.
    """

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def read_input(source: str, what: str) -> bytes:
    """The bytes of ``source``, a path or ``-`` for stdin."""
    if source == "-":
        return sys.stdin.buffer.read()
    path = Path(source)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CliError(f"{what} {source!r} not found") from None
    except IsADirectoryError:
        raise CliError(f"{what} {source!r} is a directory, not a file") from None
    except OSError as exc:
        raise CliError(f"cannot read {what} {source!r}: {exc.strerror or exc}") from None


def load_json(raw: bytes, what: str) -> Any:
    """Parse JSON, turning every decoding problem into a one-line :class:`CliError`."""
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        raise CliError(f"{what} is not UTF-8 text") from None
    except RecursionError:
        raise CliError(f"{what} is nested too deeply to read") from None
    except ValueError as exc:
        raise CliError(f"{what} is not valid JSON: {exc}") from None


def tracer_provider(service_name: str, otlp_endpoint: str | None) -> TracerProvider:
    """An SDK provider, exporting over OTLP when an endpoint is given or set in the environment.

    Even without export the SDK provider samples, so every call gets a trace id the user can
    quote. It is not made global: the commands pass it explicitly. Export is bounded to about a
    second per batch and a collector that is away costs one warning line at exit.
    """
    from ._export import bounded_tracer_provider

    endpoint = otlp_target(otlp_endpoint)
    if endpoint:
        from urllib.parse import urlsplit

        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            source = "--otlp" if otlp_endpoint else "the OTEL_EXPORTER_OTLP_* endpoint"
            raise CliError(
                f"{source} {shown_url(endpoint)!r}: expected a URL such as http://localhost:4318"
            )
    try:
        return bounded_tracer_provider(service_name, endpoint)
    except RuntimeError as exc:  # the OTLP exporter is not installed
        raise CliError(str(exc)) from None
    except ValueError as exc:  # an endpoint the exporter cannot use
        shown = shown_url(endpoint or "")
        raise CliError(f"cannot export traces to {shown!r}: {exc}") from None


def otlp_target(otlp_endpoint: str | None) -> str | None:
    """Where traces go, for the banner, or ``None`` when they are not exported."""
    return (
        otlp_endpoint
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or None
    )


def shown_url(url: str) -> str:
    """``url`` as it may be printed: userinfo and sensitive query parameters redacted."""
    from flowscope import Redactor

    return str(Redactor().url(url).value)


def reachable(url: str, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections at ``url``'s host and port."""
    import socket
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = parts.hostname
    except ValueError:
        return False
    if not host:
        return False
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class LastRecord:
    """An ``on_record`` sink that keeps the record of the latest flow call.

    The commands make one call at a time, and flowscope hands over a call's record before the
    call returns: right after a call, :meth:`take` gives that call's record (``None`` when the
    call was not a flow call, or flowscope could not record it).
    """

    def __init__(self) -> None:
        self._last: CallRecord | None = None

    def __call__(self, record: CallRecord) -> None:
        self._last = record

    def take(self) -> CallRecord | None:
        """The latest record, once: a later call that leaves none does not get a stale one."""
        record, self._last = self._last, None
        return record

"""Trace export for the commands: bounded in time, and one line when the collector is away.

The OTLP exporter retries a failed export with backoff for up to its timeout (10 s by default)
and logs every attempt, with the whole urllib3 error, on the way. A command that exits after a
few calls should neither wait that long nor bury its own output: each export here gets about a
second, the exporter's log records are kept back, and the first failure becomes one warning line
on stderr when the provider shuts down.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

if TYPE_CHECKING:
    from typing import TextIO

    import requests

__all__ = ["EXPORT_TIMEOUT_S", "ReportingExporter", "bounded_tracer_provider"]

#: Seconds one export may take, retries included.
EXPORT_TIMEOUT_S = 1.0
_EXPORTER_LOGGER = "opentelemetry.exporter.otlp"
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


class _Kept(logging.Handler):
    """Keeps the exporter's log messages instead of printing them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.messages) < 20:
            self.messages.append(record.getMessage())


class ReportingExporter(SpanExporter):
    """Wraps a span exporter; remembers failures and reports them in one line at shutdown."""

    def __init__(
        self,
        inner: SpanExporter,
        target: str,
        stream: TextIO | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self._inner = inner
        #: The last HTTP status the collector answered (seen through the exporter's session).
        self.last_status: int | None = None
        if session is not None:
            session.hooks["response"].append(self._saw_response)
        self._target = target
        self._stream = stream
        self.failed_batches = 0
        self.failure: str | None = None
        self._kept = _Kept()
        self._logger = logging.getLogger(_EXPORTER_LOGGER)
        self._propagate = self._logger.propagate
        self._logger.addHandler(self._kept)
        self._logger.propagate = False

    def _saw_response(self, response: requests.Response, *args: object, **kwargs: object) -> None:
        self.last_status = response.status_code

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self._inner.export(spans)
        except Exception as exc:  # an exporter bug must not end the command
            result = SpanExportResult.FAILURE
            self._kept.messages.append(f"{type(exc).__name__}: {exc}")
        if result is not SpanExportResult.SUCCESS:
            self.failed_batches += 1
            if self.failure is None:
                self.failure = _reason(self._kept.messages, self._target, self.last_status)
        return result

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)

    def shutdown(self) -> None:
        try:
            self._inner.shutdown()
        finally:
            self._logger.removeHandler(self._kept)
            self._logger.propagate = self._propagate
            if self.failure is not None:
                stream = self._stream or sys.stderr
                count = self.failed_batches
                batches = "a batch" if count == 1 else f"{count} batches"
                stream.write(
                    f"flowscope: warning: {batches} of spans could not be exported to "
                    f"{self._target}: {self.failure}\n"
                )
                stream.flush()


def _reason(messages: list[str], target: str, status: int | None) -> str:
    """A few words for why the export failed, out of the exporter's long log messages."""
    if status is not None and status >= 300:
        return f"the collector answered HTTP {status}"
    for message in messages:
        found = _ERRNO.search(message)
        if found:
            return found.group(1).strip().rstrip(".").lower()
    from ._common import reachable

    if not reachable(target, timeout=EXPORT_TIMEOUT_S / 2):
        return "nothing accepts connections there (is the collector running?)"
    return f"no answer within {EXPORT_TIMEOUT_S:g} s"


def bounded_tracer_provider(service_name: str, endpoint: str | None) -> TracerProvider:
    """An SDK provider that exports to ``endpoint`` (OTLP/HTTP) when given, quickly and quietly.

    Without an endpoint spans are recorded but not exported: every call still gets a trace id.
    """
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if not endpoint:
        return provider
    try:
        import requests
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "exporting traces needs the OTLP exporter: install the flowscope[cli] extra"
        ) from None
    url = endpoint.rstrip("/")
    if not url.endswith("/v1/traces"):
        url += "/v1/traces"
    from flowscope import Redactor

    shown = str(Redactor().url(url).value)
    session = requests.Session()
    inner = OTLPSpanExporter(endpoint=url, timeout=EXPORT_TIMEOUT_S, session=session)
    exporter = ReportingExporter(inner, shown, session=session)
    provider.add_span_processor(
        BatchSpanProcessor(exporter, export_timeout_millis=int(EXPORT_TIMEOUT_S * 2000))
    )
    return provider

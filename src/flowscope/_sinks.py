"""Sinks format a finished :class:`CallRecord`; they never see anything unredacted.

A sink is any ``fn(record)``. :class:`Sinks` runs them in order, each guarded on its own: one
sink failing is counted under its stage and the others still run. The span writer lives with
the rest of the OpenTelemetry code (``_otel.py``); the log writer is here.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

from ._hints import Hint
from ._record import CallRecord, CapturedBody

__all__ = [
    "Sink",
    "Sinks",
    "body_dict",
    "hint_line",
    "log_failure",
    "record_to_dict",
    "status_description",
]

Sink = Callable[[CallRecord], None]

logger = logging.getLogger("flowscope")


class Sinks:
    """The sinks of one instrumented client, as ``(stage, sink)`` pairs run in order.

    ``on_error(stage, exc)`` hears of every sink that raised; nothing reaches the caller.
    """

    __slots__ = ("_on_error", "_sinks")

    def __init__(
        self,
        sinks: Sequence[tuple[str, Sink]],
        on_error: Callable[[str, BaseException], None],
    ) -> None:
        self._sinks = tuple(sinks)
        self._on_error = on_error

    def publish(self, record: CallRecord) -> None:
        """Hand ``record`` to every sink."""
        for stage, sink in self._sinks:
            try:
                sink(record)
            except Exception as exc:
                self._on_error(stage, exc)


# Every str.splitlines() break, and any other control character or lone surrogate: what a log
# line or span status quotes stays one printable line.
_LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]+")


def status_description(record: CallRecord) -> str:
    """A one-line span status description: ``400 bad.request: Invalid input [fields: data]``."""
    if record.status_code is None:
        text = f"{record.exception_type}: {record.exception_message or ''}".rstrip(": ")
        return _LINE_BREAKS.sub(" ", text)
    parts = [str(record.status_code)]
    if record.error_code:
        parts.append(record.error_code + ":")
    if record.error is not None and record.error.message:
        parts.append(record.error.message[:200])
    text = " ".join(parts).rstrip(":")
    if record.error_fields:
        text += f" [fields: {', '.join(record.error_fields[:10])}]"
    # Server text must not be able to start a forged line in a log file.
    return _LINE_BREAKS.sub(" ", text)


def record_to_dict(record: CallRecord) -> dict[str, Any]:
    """The structured, redacted report carried by log records and printed by the CLI."""
    out: dict[str, Any] = {
        "operation": record.operation,
        "method": record.method,
        "url": record.url,
        "url_template": record.template,
        "flow_id": record.flow_id,
        "flow_name": record.flow_name,
        "flow_version": record.flow_version,
        "execution_id": record.execution_id,
        "status_code": record.status_code,
        "outcome": record.outcome,
        "duration_s": round(record.duration_s, 6),
        "correlation_id": record.correlation_id,
        "trace_id": record.trace_id,
        "span_id": record.span_id,
        "redacted": list(dict.fromkeys(record.redacted_paths)),
    }
    if record.error is not None:
        out["error"] = {
            "kind": record.error.kind,
            "code": record.error.code,
            "message": record.error.message,
            "fields": list(record.error.fields),
            "message_params": dict(record.error.message_params),
            "retry_after": record.error.retry_after,
        }
    if record.exception_type is not None:
        out["exception"] = {"type": record.exception_type, "message": record.exception_message}
    if record.hints:
        out["hints"] = [
            {"code": h.code, "message": h.message, "field": h.field} for h in record.hints
        ]
    if record.response_body is not None:
        out["response_body"] = body_dict(record.response_body)
    if record.request_body is not None:
        out["request_body"] = body_dict(record.request_body)
    return out


def body_dict(body: CapturedBody) -> dict[str, Any]:
    """A captured body as plain values, for log records and span events."""
    return {
        "text": body.text,
        "size": body.size,
        "truncated": body.truncated,
        "content_type": body.content_type,
    }


# Hint lines in one WARNING message; the rest are counted (all of them are in ``extra``).
_MAX_LOGGED_HINTS = 10


def log_failure(record: CallRecord) -> None:
    """One WARNING per failed flow call, with the structured report in ``extra``.

    The message ends with the hints, one indented line each, so the sentence that says what
    to change is in the log file itself, not only in the structured record.
    """
    if record.outcome == "success" or not logger.isEnabledFor(logging.WARNING):
        return
    if not _delivered(logger):
        return  # only the library's NullHandler would see it: skip building the report
    logger.warning(
        "flow call failed: %s %s flow=%s -> %s (correlation id %s, trace id %s)%s",
        record.method,
        record.template,
        record.flow_label,
        status_description(record),
        record.correlation_id or "-",
        record.trace_id or "-",
        _hint_lines(record),
        extra={"flowscope": record_to_dict(record)},
    )


def _delivered(log: logging.Logger) -> bool:
    """Whether a record from ``log`` reaches a handler that does something with it."""
    current: logging.Logger | None = log
    while current is not None:
        if any(not isinstance(handler, logging.NullHandler) for handler in current.handlers):
            return True
        if not current.propagate:
            return False
        current = current.parent
    return False


def hint_line(hint: Hint) -> str:
    """``input-type [inputData.Flow.isVip]: ...``: a hint as the log, the CLI and the demo
    print it."""
    where = f" [{hint.field}]" if hint.field else ""
    return f"{hint.code}{where}: {hint.message}"


def _hint_lines(record: CallRecord) -> str:
    """One indented ``hint CODE [FIELD]: MESSAGE`` line per hint, as the demo report prints them."""
    lines = []
    for hint in record.hints[:_MAX_LOGGED_HINTS]:
        # Hints quote payload keys: a key must not be able to start a forged line either.
        lines.append(_LINE_BREAKS.sub(" ", f"    hint {hint_line(hint)}"))
    if len(record.hints) > _MAX_LOGGED_HINTS:
        more = len(record.hints) - _MAX_LOGGED_HINTS
        lines.append(f"    ... and {more} more hint{'s' if more != 1 else ''} in the record")
    return "".join("\n" + line for line in lines)

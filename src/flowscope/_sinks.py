"""Sinks format a finished :class:`CallRecord`; they never see anything unredacted."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from ._record import CallRecord, CapturedBody

if TYPE_CHECKING:
    from opentelemetry.trace import Span

__all__ = ["log_failure", "record_to_dict", "status_description", "write_span"]

# Every str.splitlines() break, and any other control character or lone surrogate: what a log
# line or span status quotes stays one printable line.
_LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]+")


def write_span(span: Span, record: CallRecord) -> None:
    """Enrich the call's own CLIENT span (SPEC §4)."""
    if not span.is_recording():
        return
    attrs: dict[str, Any] = {
        "url.full": record.url,
        "url.template": record.template,
        "flow.operation": record.operation,
        "flow.id": record.flow_id,
    }
    if record.flow_name is not None:
        attrs["flow.name"] = record.flow_name
    if record.flow_version is not None:
        attrs["flow.version"] = record.flow_version
    if record.execution_id is not None:
        attrs["flow.execution.id"] = record.execution_id
    if record.correlation_id is not None:
        attrs["genesys.correlation_id"] = record.correlation_id
    error = record.error
    if error is not None:
        if error.code is not None:
            attrs["flow.error.code"] = error.code
        if error.message is not None:
            attrs["flow.error.message"] = error.message
        if error.fields:
            attrs["flow.error.fields"] = list(error.fields)
    if record.redacted_paths:
        attrs["flowscope.redacted"] = list(dict.fromkeys(record.redacted_paths))
    span.set_attributes(attrs)
    if record.outcome == "success":
        return
    if record.response_body is not None:
        span.add_event("flow.error.body", _body_attributes(record.response_body))
    if record.request_body is not None:
        span.add_event("flow.request.body", _body_attributes(record.request_body))
    for hint in record.hints:
        event = {"hint.code": hint.code, "hint.message": hint.message}
        if hint.field is not None:
            # The same name the log record's ``extra`` uses for it, so a query can join them.
            event["hint.field"] = hint.field
        span.add_event("flow.hint", event)


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


def _body_attributes(body: CapturedBody) -> dict[str, Any]:
    return {
        "body": body.text,
        "body.size": body.size,
        "body.truncated": body.truncated,
        "content_type": body.content_type,
    }


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
        out["response_body"] = _body_dict(record.response_body)
    if record.request_body is not None:
        out["request_body"] = _body_dict(record.request_body)
    return out


def _body_dict(body: CapturedBody) -> dict[str, Any]:
    return {
        "text": body.text,
        "size": body.size,
        "truncated": body.truncated,
        "content_type": body.content_type,
    }


# Hint lines in one WARNING message; the rest are counted (all of them are in ``extra``).
_MAX_LOGGED_HINTS = 10


def log_failure(logger: logging.Logger, record: CallRecord) -> None:
    """One WARNING per failed flow call, with the structured report in ``extra``.

    The message ends with the hints, one indented line each, so the sentence that says what
    to change is in the log file itself, not only in the structured record.
    """
    if not logger.isEnabledFor(logging.WARNING):
        return
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


def _hint_lines(record: CallRecord) -> str:
    """One indented ``hint CODE [FIELD]: MESSAGE`` line per hint, as the demo report prints them."""
    lines = []
    for hint in record.hints[:_MAX_LOGGED_HINTS]:
        where = f" [{hint.field}]" if hint.field else ""
        # Hints quote payload keys: a key must not be able to start a forged line either.
        lines.append(_LINE_BREAKS.sub(" ", f"    hint {hint.code}{where}: {hint.message}"))
    if len(record.hints) > _MAX_LOGGED_HINTS:
        more = len(record.hints) - _MAX_LOGGED_HINTS
        lines.append(f"    ... and {more} more hint{'s' if more != 1 else ''} in the record")
    return "".join("\n" + line for line in lines)

"""How a failed call and its hints are printed: one formatter for launch, check and the demo."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

from flowscope._sinks import hint_line

if TYPE_CHECKING:
    from flowscope import CallRecord, Hint

__all__ = ["failure_lines", "hint_line", "indent", "pretty"]


def headline(record: CallRecord) -> str:
    """``400 invalid.value: The request could not be understood``"""
    error = record.error
    parts = [str(record.status_code) if record.status_code is not None else None]
    parts.append(error.code if error is not None else None)
    if record.status_code is None:
        parts = [record.exception_type]
    text = " ".join(part for part in parts if part)
    message = error.message if error is not None else record.exception_message
    return f"{text}: {message}" if message else text


def failure_lines(record: CallRecord, *, bodies: bool = True) -> list[str]:
    """Everything a person needs to fix a failed call, or to open a support case with it.

    Ids are always there (``-`` when absent) so the lines can be quoted as they are. With
    ``bodies`` the redacted request and error bodies follow.
    """
    fields = record.error_fields
    lines = [
        f"error code:     {record.error_code or '-'}",
        f"failing fields: {', '.join(fields) if fields else '-'}",
        f"correlation id: {record.correlation_id or '-'}",
        f"trace id:       {record.trace_id or '-'}",
    ]
    if bodies and record.request_body is not None:
        lines.append("request body (redacted):")
        lines.append(indent(pretty(record.request_body.text)))
    if bodies and record.response_body is not None:
        cut = " (cut to the capture limit)" if record.response_body.truncated else ""
        lines.append(f"error body (redacted){cut}:")
        lines.append(indent(pretty(record.response_body.text)))
    lines.extend(hint_lines(record.hints, bodies))
    return lines


def hint_lines(hints: Iterable[Hint], heading: bool) -> list[str]:
    hints = list(hints)
    if not heading:
        return [f"hint {hint_line(hint)}" for hint in hints]
    if not hints:
        return ["hints: none (the payload looks well-formed; read the error body)"]
    return ["hints:", *(f"  {hint_line(hint)}" for hint in hints)]


def pretty(text: str) -> str:
    """JSON text indented for reading; anything else as it is."""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())

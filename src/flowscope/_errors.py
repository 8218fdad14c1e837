"""Parse error bodies from the Genesys Cloud API, OAuth servers and anything else.

Pure functions of bytes: no httpx, no OpenTelemetry. The parser never raises.
"""

from __future__ import annotations

import codecs
import html
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._vocabulary import decode_text, is_json_media, media_type

__all__ = ["ErrorReport", "parse_error_body"]

Headers = Mapping[str, str] | Iterable[tuple[str, str]] | None


@dataclass(frozen=True)
class ErrorReport:
    """What an error response says, in one shape whatever its format.

    Values are as the server sent them; redaction happens later, once, on the call record.
    """

    status: int
    #: ``genesys``, ``oauth``, ``problem`` (RFC 7807), ``json`` (other JSON), ``text``, ``html``,
    #: ``empty``, ``binary`` or ``malformed`` (looked like JSON but did not parse).
    kind: str
    code: str | None = None
    message: str | None = None
    correlation_id: str | None = None
    fields: tuple[str, ...] = ()
    message_params: Mapping[str, str] = field(default_factory=dict)
    retry_after: str | None = None
    #: The body decoded to text for display (invalid UTF-8 replaced), possibly cut.
    text: str = ""
    #: The parsed JSON document, when the body was JSON.
    document: object = None
    #: ``text`` was cut to the parser's ``max_text`` limit.
    text_truncated: bool = False


# Bounds that keep the parser fast on hostile bodies; real error bodies are far below them.
MAX_FIELDS = 100
_MAX_ERROR_DEPTH = 32  # nesting of errors[] inside errors[]
_MAX_VISITS = 20_000  # details[] / errors[] entries looked at, in total
_MAX_PARAMS = 50
_MAX_CODE = 200
_MAX_MESSAGE = 4_000
_MAX_SUMMARY = 200  # first line / <title> of a text or HTML body
_MAX_FIELD_NAME = 200
_MAX_JSON_BYTES = 16 * 1024 * 1024
_SNIFF = 8192
# Top-level keys worth reading out of JSON that does not parse (e.g. cut at the capture limit).
_SALVAGE = re.compile(
    r'"(code|message|error|error_description|contextId)"\s*:\s*"((?:[^"\\]|\\.){0,1000})"'
)
_SALVAGE_WINDOW = 16_384
_HTML_HEAD = 65536

_BINARY_PREFIXES = ("image/", "audio/", "video/", "font/", "model/")
_BINARY_TYPES = frozenset(
    {
        "application/octet-stream",
        "application/pdf",
        "application/zip",
        "application/gzip",
        "application/x-gzip",
        "application/x-tar",
        "application/protobuf",
        "application/x-protobuf",
        "application/grpc",
        "application/msgpack",
        "application/x-msgpack",
        "application/cbor",
        "application/wasm",
    }
)
# Control characters other than tab, newline, form feed and carriage return mark a binary body.
_CONTROL = frozenset(range(32)) - {9, 10, 12, 13}


def parse_error_body(
    status: int,
    headers: Headers,
    body: bytes,
    *,
    max_text: int = 65_536,
) -> ErrorReport:
    """Read an error response into an :class:`ErrorReport`, whatever the server sent.

    ``body`` must already be content-decoded. ``headers`` may be any mapping (looked up without
    regard to case), a list of pairs, or ``None``. ``max_text`` bounds :attr:`ErrorReport.text`.

    The parser never raises: an error report that crashes the code reporting the error would hide
    the very failure the user is chasing, so anything unexpected degrades to a plain-text report.
    """
    try:
        return _parse(status, headers, body, max_text)
    except Exception:
        return _fallback(status, body, max_text)


def _fallback(status: int, body: object, max_text: int) -> ErrorReport:
    try:
        raw = bytes(body) if isinstance(body, (bytes, bytearray, memoryview)) else b""
        text = raw[: max(0, max_text) * 4].decode("utf-8", errors="replace")[: max(0, max_text)]
        return ErrorReport(status=status, kind="text" if raw else "empty", text=text)
    except Exception:
        return ErrorReport(status=status, kind="text")


# -- headers -------------------------------------------------------------------------------------


def _header(headers: Headers, name: str) -> str | None:
    """Case-insensitive lookup that works on plain dicts as well as on httpx.Headers."""
    if headers is None:
        return None
    items: Iterable[Any] = headers.items() if isinstance(headers, Mapping) else headers
    wanted = name.lower()
    for pair in items:
        key, value = pair[0], pair[1]
        if isinstance(key, bytes):
            key = key.decode("latin-1")
        if isinstance(key, str) and key.lower() == wanted:
            if isinstance(value, bytes):
                value = value.decode("latin-1")
            return str(value).strip()
    return None


def _is_binary(media: str, body: bytes) -> bool:
    """Declared binary, or undeclared/unknown and not plausibly text."""
    if media in _BINARY_TYPES or media.startswith(_BINARY_PREFIXES):
        return True
    head = body[:_SNIFF]
    if b"\x00" in head:
        return True
    if media.startswith("text/") or is_json_media(media) or media.endswith("xml"):
        return False
    # Unknown type: text only if the head is UTF-8 (a cut multi-byte tail is fine) without controls.
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return bool(media) and not media.startswith("application/x-www-form")
    return any(byte in _CONTROL for byte in head)


# -- the parser ----------------------------------------------------------------------------------


def _parse(status: int, headers: Headers, body: bytes, max_text: int) -> ErrorReport:
    max_text = max(0, max_text)
    content_type = _header(headers, "content-type")
    media = media_type(content_type)
    common: dict[str, Any] = {
        "status": status,
        "correlation_id": _header(headers, "inin-correlation-id") or None,
        "retry_after": _header(headers, "retry-after") or None,
    }
    body = bytes(body)

    if not body.strip():
        return ErrorReport(
            kind="empty", text=_cut(body.decode("utf-8", "replace"), max_text)[0], **common
        )

    if _is_binary(media, body):
        note = f"<{len(body)} bytes of {media or 'binary data'}>"
        return ErrorReport(kind="binary", message=note, text=note, **common)

    full_text = decode_text(body, content_type)
    text, truncated = _cut(full_text, max_text)
    common["text"] = text
    common["text_truncated"] = truncated
    stripped = full_text.lstrip()

    # A proxy's HTML error page sent as application/json is still an HTML page.
    if stripped[:1] in ("{", "[") or (is_json_media(media) and not stripped.startswith("<")):
        try:
            if len(body) > _MAX_JSON_BYTES:
                raise ValueError("too large to parse")
            document = json.loads(full_text)
        except (ValueError, RecursionError):
            return _malformed(stripped, common)
        return _from_json(document, media, common)

    if "html" in media or stripped.startswith("<"):
        return ErrorReport(kind="html", message=_html_summary(stripped), **common)
    return ErrorReport(kind="text", message=_first_line(stripped), **common)


def _malformed(text: str, common: dict[str, Any]) -> ErrorReport:
    """Salvage what a cut or broken JSON body still says: usually its head is intact."""
    found: dict[str, str] = {}
    for match in _SALVAGE.finditer(text[:_SALVAGE_WINDOW]):
        key = match.group(1)
        if key not in found:
            try:
                found[key] = str(json.loads('"' + match.group(2) + '"'))
            except ValueError:
                found[key] = match.group(2)
    if common["correlation_id"] is None:
        common["correlation_id"] = found.get("contextId")
    return ErrorReport(
        kind="malformed",
        code=(found.get("code") or found.get("error") or "")[:_MAX_CODE] or None,
        message=(found.get("message") or found.get("error_description") or _first_line(text)),
        **common,
    )


def _cut(text: str, limit: int) -> tuple[str, bool]:
    if len(text) <= limit:
        return text, False
    return text[:limit], True


def _bounded(value: object, limit: int) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    text = value if isinstance(value, str) else str(value)
    return text[:limit] if text else None


def _first_line(text: str) -> str | None:
    head = text[: _MAX_SUMMARY * 20]
    for line in head.splitlines():
        squashed = _squash(line)
        if squashed:
            return squashed[:_MAX_SUMMARY]
    return None


# -- JSON shapes ---------------------------------------------------------------------------------


def _from_json(document: object, media: str, common: dict[str, Any]) -> ErrorReport:
    common["document"] = document
    if not isinstance(document, dict):
        message = _bounded(document, _MAX_MESSAGE) if isinstance(document, str) else None
        return ErrorReport(kind="json", message=message, **common)

    if common["correlation_id"] is None:
        common["correlation_id"] = _bounded(document.get("contextId"), _MAX_CODE)

    if media == "application/problem+json":
        return _problem(document, common)
    if _looks_genesys(document):
        return _genesys(document, common)
    if _looks_oauth(document):
        return ErrorReport(
            kind="oauth",
            code=_bounded(document.get("error"), _MAX_CODE),
            message=_bounded(
                document.get("error_description") or document.get("description"), _MAX_MESSAGE
            ),
            **common,
        )
    if _looks_problem(document):
        return _problem(document, common)
    return _generic(document, common)


def _looks_genesys(doc: Mapping[str, Any]) -> bool:
    if "contextId" in doc or "messageWithParams" in doc:
        return True
    return isinstance(doc.get("code"), str) and ("message" in doc or "status" in doc)


def _looks_oauth(doc: Mapping[str, Any]) -> bool:
    error = doc.get("error")
    if not isinstance(error, str):
        return False
    if "error_description" in doc or "error_uri" in doc:
        return True
    # RFC 6749 error codes are lowercase ASCII words joined by underscores.
    return bool(error) and all(c.islower() or c == "_" for c in error) and error.isascii()


def _looks_problem(doc: Mapping[str, Any]) -> bool:
    has_title = isinstance(doc.get("title"), str) or isinstance(doc.get("type"), str)
    return has_title and ("detail" in doc or "instance" in doc or "status" in doc)


class _Fields:
    """Collects field names in first-seen order, bounded in count and in work."""

    def __init__(self) -> None:
        self.names: dict[str, None] = {}
        self.visits = 0

    @property
    def done(self) -> bool:
        return len(self.names) >= MAX_FIELDS or self.visits >= _MAX_VISITS

    def add(self, name: object) -> None:
        if isinstance(name, str) and name and not self.done:
            self.names.setdefault(name[:_MAX_FIELD_NAME], None)

    def genesys(self, doc: Mapping[str, Any], depth: int) -> None:
        """details[].fieldName, then the same for every nested errors[] body."""
        self.add(doc.get("fieldName"))
        details = doc.get("details")
        if isinstance(details, list):
            for detail in details:
                if self.done:
                    return
                self.visits += 1
                if isinstance(detail, dict):
                    self.add(detail.get("fieldName"))
        errors = doc.get("errors")
        if isinstance(errors, list) and depth < _MAX_ERROR_DEPTH:
            for nested in errors:
                if self.done:
                    return
                self.visits += 1
                if isinstance(nested, dict):
                    self.genesys(nested, depth + 1)

    def problem(self, doc: Mapping[str, Any]) -> None:
        """``invalid-params[].name`` (RFC 7807) and the common ``errors`` shapes."""
        for key in ("invalid-params", "invalid_params", "errors"):
            value = doc.get(key)
            if isinstance(value, dict):  # ASP.NET style: {"field": ["message", ...]}
                for name in value:
                    if self.done:
                        return
                    self.visits += 1
                    self.add(name)
            elif isinstance(value, list):
                for item in value:
                    if self.done:
                        return
                    self.visits += 1
                    if isinstance(item, dict):
                        for name_key in ("name", "field", "fieldName", "pointer", "property"):
                            if isinstance(item.get(name_key), str):
                                self.add(item[name_key])
                                break


def _params(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    params: dict[str, str] = {}
    for key, item in value.items():
        if len(params) >= _MAX_PARAMS:
            break
        text = item if isinstance(item, str) else json.dumps(item, default=str)[:_MAX_SUMMARY]
        params[str(key)[:_MAX_FIELD_NAME]] = text[:_MAX_SUMMARY]
    return params


def _genesys(doc: Mapping[str, Any], common: dict[str, Any]) -> ErrorReport:
    fields = _Fields()
    fields.genesys(doc, 0)
    params = _params(doc.get("messageParams"))
    message = _bounded(doc.get("message"), _MAX_MESSAGE)
    if message is None:
        template = _bounded(doc.get("messageWithParams"), _MAX_MESSAGE)
        if template is not None:
            for key, value in params.items():
                template = template.replace("{" + key + "}", value)
            message = template[:_MAX_MESSAGE]
    return ErrorReport(
        kind="genesys",
        code=_bounded(doc.get("code"), _MAX_CODE),
        message=message,
        fields=tuple(fields.names),
        message_params=params,
        **common,
    )


def _problem(doc: Mapping[str, Any], common: dict[str, Any]) -> ErrorReport:
    fields = _Fields()
    fields.problem(doc)
    title = _bounded(doc.get("title"), _MAX_MESSAGE)
    code = None
    type_uri = doc.get("type")
    if isinstance(type_uri, str) and type_uri and type_uri != "about:blank":
        code = type_uri.rstrip("/").rsplit("/", 1)[-1].split("#")[-1] or None
    return ErrorReport(
        kind="problem",
        code=_bounded(code or title, _MAX_CODE),
        message=_bounded(doc.get("detail"), _MAX_MESSAGE) or title,
        fields=tuple(fields.names),
        **common,
    )


def _generic(doc: Mapping[str, Any], common: dict[str, Any]) -> ErrorReport:
    """Best effort on JSON of unknown shape: the usual code and message keys, one level deep."""
    inner = doc.get("error")
    if isinstance(inner, dict):  # {"error": {"code": ..., "message": ...}} (Google, Azure, ...)
        code = _bounded(inner.get("code") or inner.get("status"), _MAX_CODE)
        message = _bounded(inner.get("message"), _MAX_MESSAGE)
    else:
        code = _bounded(doc.get("code") or doc.get("errorCode") or inner, _MAX_CODE)
        message = None
    if message is None:
        for key in ("message", "error_description", "detail", "description", "msg", "title"):
            message = _bounded(doc.get(key), _MAX_MESSAGE)
            if message:
                break
    errors = doc.get("errors")
    if message is None and isinstance(errors, list) and errors and isinstance(errors[0], dict):
        message = _bounded(errors[0].get("message"), _MAX_MESSAGE)
    fields = _Fields()
    fields.problem(doc)
    return ErrorReport(
        kind="json", code=code, message=message, fields=tuple(fields.names), **common
    )


# -- HTML ----------------------------------------------------------------------------------------


def _html_summary(text: str) -> str | None:
    """The page's <title>, else its first line of visible text: what a person would read first.

    Plain ``str.find`` scanning instead of regular expressions keeps this linear on hostile markup.
    """
    head = text[:_HTML_HEAD]
    lower = head.lower()
    for tag in ("title", "h1"):
        start = lower.find("<" + tag)
        if start < 0:
            continue
        open_end = lower.find(">", start)
        close = lower.find("</" + tag, open_end)
        if open_end < 0 or close < 0:
            continue
        summary = _squash(html.unescape(_strip_tags(head[open_end + 1 : close])))
        if summary:
            return summary[:_MAX_SUMMARY]
    return _first_line(html.unescape(_strip_tags(head)))


def _strip_tags(markup: str) -> str:
    lower = markup.lower()
    parts: list[str] = []
    pos = 0
    while pos < len(markup):
        lt = markup.find("<", pos)
        if lt < 0:
            parts.append(markup[pos:])
            break
        parts.append(markup[pos:lt])
        gt = markup.find(">", lt)
        if gt < 0:
            break
        pos = gt + 1
        for hidden in ("script", "style"):
            if lower.startswith("<" + hidden, lt):
                close = lower.find("</" + hidden, pos)
                pos = len(markup) if close < 0 else close
        breaks = lower.startswith(("<br", "<p", "<div", "<h", "<li", "<tr"), lt)
        parts.append("\n" if breaks else " ")
    return "".join(parts)


def _squash(text: str) -> str:
    return " ".join(text.split())

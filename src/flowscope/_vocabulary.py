"""Small facts every part of flowscope shares, each defined once.

The sentinels that stand in for a missing value, how a value is made safe to show (as a label,
an attribute or a log field), which media types are JSON, how a body's bytes are read as text,
and how a JSON value's type is named. Pure functions: no httpx, no OpenTelemetry.
"""

from __future__ import annotations

__all__ = [
    "MAX_SHOWN_CHARS",
    "MISSING",
    "NONE",
    "OTHER",
    "SENTINELS",
    "UNKNOWN",
    "UNOBSERVED",
    "decode_text",
    "is_json_media",
    "json_type_name",
    "media_type",
    "printable",
]

#: A launch whose body names no ``flowId``.
MISSING = "__missing__"
#: A value the call did not show (a GET execution without ``flowVersion.selfUri``).
UNKNOWN = "__unknown__"
#: No value applies (token calls have no flow; an error without a code).
NONE = "__none__"
#: A label value folded away because its label reached its limit.
OTHER = "__other__"
#: The ``status`` of a launched execution forgotten before its outcome was seen.
UNOBSERVED = "__unobserved__"
#: Values flowscope itself produces; they never take a slot from a bounded label.
SENTINELS = frozenset({MISSING, UNKNOWN, NONE, OTHER})

#: Longer ids and label values are cut: a flow name is never this long, an attack payload may be.
MAX_SHOWN_CHARS = 128


def printable(value: str, limit: int = MAX_SHOWN_CHARS) -> str:
    """``value`` cut to ``limit`` characters, with control characters replaced by ``_``.

    Control characters and lone surrogates would break a log line, the Prometheus exposition or
    the OTLP exporter's UTF-8 encoding (which drops the whole batch).
    """
    value = value[:limit]
    if not value.isprintable():
        value = "".join(ch if ch.isprintable() else "_" for ch in value)
    return value


def media_type(content_type: str | None) -> str:
    """``application/json; charset=utf-8`` -> ``application/json``; ``""`` when absent."""
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def _charset(content_type: str | None) -> str | None:
    """The ``charset`` parameter of a ``Content-Type``; ``None`` when absent or empty."""
    if not content_type:
        return None
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip("\"'") or None
    return None


def decode_text(body: bytes, content_type: str | None) -> str:
    """A body as text, in the charset its ``Content-Type`` names (UTF-8 when it names none, or
    one Python does not know as a text codec). Never raises: bad bytes become U+FFFD."""
    named = _charset(content_type)
    if named and named.lower().replace("_", "-") not in ("utf-8", "utf8"):
        try:
            return body.decode(named, errors="replace")
        except (LookupError, TypeError):
            pass  # unknown or non-text codec named by the server: fall back to UTF-8
    return body.decode("utf-8-sig", errors="replace")


def is_json_media(media: str) -> bool:
    """Whether a media type (as :func:`media_type` returns it) is JSON: ``application/json``,
    ``application/problem+json``, ``text/json``..."""
    return media.endswith(("/json", "+json"))


_TYPE_NAMES: dict[type, str] = {
    type(None): "null",
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
}


def json_type_name(value: object) -> str:
    """The JSON Schema name of a parsed JSON value's type (``integer``, ``object``...)."""
    name = _TYPE_NAMES.get(type(value))
    if name is not None:
        return name
    for kind, kind_name in _TYPE_NAMES.items():  # subclasses (bool is an int: checked first)
        if isinstance(value, kind) and kind is not type(None):
            return kind_name
    return type(value).__name__

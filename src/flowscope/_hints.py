"""Diagnose common mistakes in a flow launch payload (every hint is in the README's table).

The platform answers most launch mistakes with a bare ``400 bad.request``; these hints say which
part of the payload is wrong and how to fix it. Pure functions: no httpx, no OpenTelemetry.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ._vocabulary import json_type_name as _json_type
from ._vocabulary import media_type

__all__ = [
    "HINT_CODES",
    "MAX_REQUEST_BYTES",
    "Hint",
    "diagnose_launch",
    "diagnose_payload",
]

#: The platform rejects request bodies over this size with ``413 request.entity.too.large``.
MAX_REQUEST_BYTES = 512_000

#: Every ``Hint.code``, stable across releases: dashboards and alerts may select on them.
HINT_CODES: tuple[str, ...] = (
    "unknown-root-key",
    "missing-flow-id",
    "input-not-object",
    "input-key-prefix",
    "flow-id-in-path",
    "content-type",
    "not-json",
    "body-too-large",
    "input-undeclared",
    "input-type",
)


@dataclass(frozen=True)
class Hint:
    """One diagnosed mistake: a stable ``code`` and a message a person can act on."""

    code: str
    message: str
    field: str | None = None


ROOT_KEYS = ("flowId", "flowVersion", "inputData", "name")

# Bounds that keep diagnosis cheap on huge or hostile payloads.
MAX_HINTS_PER_CODE = 20
_MAX_KEYS_SCANNED = 10_000
_MAX_PARSE_BYTES = 8 * 1024 * 1024
_MAX_ITEMS_CHECKED = 100
_MAX_REF_DEPTH = 16
_MAX_NAMES_LISTED = 8
_MAX_KEY_SHOWN = 80

_ARCH_STRING_MAX = 32_000
_ARCH_INTEGER_MAX = 999_999_999_999_999
_ARCH_COLLECTION_MAX = 2_000
_DIGITS = re.compile(r"-?[0-9]{1,16}")
_ISO_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]{1,9})?)?)?"
    r"(?:Z|z|[+-][0-9]{2}(?::?[0-9]{2})?)?"
)

_INPUTS_EXAMPLE = '{"inputData": {"Flow.customerId": "42"}}'

# Root keys people send instead of the real ones, by what they meant.
_NEAR_MISSES = {
    "flowid": "flowId",
    "flowversion": "flowVersion",
    "version": "flowVersion",
    "inputdata": "inputData",
    "inputs": "inputData",
    "input": "inputData",
    "executionname": "name",
    "flowexecutionname": "name",
}

# Root keys borrowed from other APIs, with what to do instead.
# Root keys borrowed from other APIs (keyed without case, "_" or "-"), with what to do instead.
_MOVE_INPUTS = "flow inputs go under 'inputData', e.g. " + _INPUTS_EXAMPLE
_FOREIGN_KEYS = {
    "data": "'{key}' is not a launch field: " + _MOVE_INPUTS,
    "parameters": "'{key}' is not a launch field: " + _MOVE_INPUTS,
    "params": "'{key}' is not a launch field: " + _MOVE_INPUTS,
    "variables": "'{key}' is not a launch field: " + _MOVE_INPUTS,
    "attributes": "'{key}' is not a launch field: " + _MOVE_INPUTS,
    "payload": "'{key}' is not a launch field: " + _MOVE_INPUTS,
    "executioncontext": "'{key}' is not part of the flow launch API (the flow only receives "
    "'inputData'): " + _MOVE_INPUTS,
    "initialattributes": "'{key}' (participant data) is not part of the flow launch API: pass the "
    "values as flow inputs; " + _MOVE_INPUTS,
    "routingdata": "'{key}' belongs to conversation routing, not to a flow launch: pass what the "
    "flow needs as inputs; " + _MOVE_INPUTS,
    "id": "'{key}' is not a launch field: the flow to launch goes in 'flowId'",
}


def diagnose_launch(
    body: bytes | None,
    *,
    content_type: str | None = None,
    path: str = "/api/v2/flows/executions",
    body_size: int | None = None,
    input_schema: Mapping[str, Any] | None = None,
) -> list[Hint]:
    """Name the mistakes in a flow launch request, most fundamental first.

    ``body`` is what was sent (``None`` when it is unknown, e.g. a streamed upload; ``b""`` for no
    body). ``body_size`` is the full size when ``body`` is only a captured prefix: a cut body is
    not reported as invalid JSON. ``content_type`` is the request header (``None`` when unknown,
    ``""`` when the request had none). ``path`` may be a path or a full URL. ``input_schema`` is
    the flow version's ``inputSchema`` (JSON Schema), when known.
    """
    hints: list[Hint] = []
    size = body_size if body_size is not None else (len(body) if body is not None else None)
    if size is not None and size > MAX_REQUEST_BYTES:
        hints.append(
            Hint(
                "body-too-large",
                f"the launch body is {size:,} bytes, over the platform's "
                f"{MAX_REQUEST_BYTES:,}-byte request limit (413 request.entity.too.large): "
                "send less in 'inputData', e.g. an id the flow can look up instead of the data",
            )
        )
    if content_type is not None:
        hint = _content_type_hint(content_type)
        if hint is not None:
            hints.append(hint)
    path_id = _flow_id_in_path(path)
    if path_id is not None:
        hints.append(
            Hint(
                "flow-id-in-path",
                f"the flow id '{path_id}' is in the URL path: launch with POST "
                f'/api/v2/flows/executions and put the id in the body as {{"flowId": "{path_id}"}}',
                "path",
            )
        )
    if body is None:
        return hints

    truncated = body_size is not None and body_size > len(body)
    payload, problem = _parse(body, truncated)
    if problem is not None:
        hints.append(problem)
    if payload is not _UNPARSED:
        hints.extend(_diagnose(payload, input_schema, path_id))
    return hints


def diagnose_payload(payload: Any, *, input_schema: Mapping[str, Any] | None = None) -> list[Hint]:
    """Name the mistakes in an already-parsed launch body (e.g. a JSON file being linted).

    An empty list means nothing looked wrong; it does not promise the platform will accept it.
    """
    return _diagnose(payload, input_schema, None)


def _diagnose(
    payload: Any, input_schema: Mapping[str, Any] | None, path_id: str | None
) -> list[Hint]:
    if not isinstance(payload, dict):
        return [
            Hint(
                "not-json",
                f"the launch body is a JSON {_json_type(payload)}, but it must be a JSON object "
                'such as {"flowId": "<flow id>", "inputData": {...}}',
            )
        ]
    hints = _root_hints(payload)
    hints.extend(_flow_id_hints(payload, path_id))
    if "inputData" in payload:
        inputs = payload["inputData"]
        if isinstance(inputs, dict):
            hints.extend(_input_hints(inputs, input_schema))
        elif inputs is not None:
            hints.append(_input_not_object(inputs))
    return hints


# -- request-level checks ------------------------------------------------------------------------

_UNPARSED = object()


def _content_type_hint(content_type: str) -> Hint | None:
    media = media_type(content_type)
    if media == "application/json":
        return None
    if not media:
        message = (
            "the request has no Content-Type: send 'Content-Type: application/json' "
            "(with httpx, pass json=... rather than content=...)"
        )
    else:
        message = f"the Content-Type is '{media}', but the launch API takes 'application/json'" + (
            ": send the payload as JSON, not as a form" if "form" in media else ""
        )
    return Hint("content-type", message, "header:content-type")


_PATH_ID_PATTERNS = (
    re.compile(r"/api/v2/flows/(?!executions/?$)([^/]+)/executions/?$"),
    re.compile(r"/api/v2/flows/executions/([^/]+)/?$"),
)


def _flow_id_in_path(path: str) -> str | None:
    try:
        if "://" in path:
            path = urlsplit(path).path
        path = path.split("?", 1)[0].split("#", 1)[0]
    except ValueError:
        return None
    for pattern in _PATH_ID_PATTERNS:
        match = pattern.search(path[:2048])
        if match:
            return match.group(1)[:_MAX_KEY_SHOWN]
    return None


def _parse(body: bytes, truncated: bool) -> tuple[Any, Hint | None]:
    """The parsed body, or ``_UNPARSED`` plus the hint that says why it is not JSON."""
    if truncated or len(body) > _MAX_PARSE_BYTES:
        return _UNPARSED, None  # a captured prefix cannot be judged
    if not body.strip():
        return _UNPARSED, Hint(
            "not-json",
            'the launch request has an empty body: send a JSON object such as {"flowId": '
            '"<flow id>", "inputData": {...}}',
        )
    try:
        return json.loads(body), None
    except RecursionError:
        reason = "it is nested too deeply to parse"
    except UnicodeDecodeError:
        reason = "it is not valid UTF-8"
    except ValueError as exc:
        reason = f"it is not valid JSON ({exc})"
    head = body[:200].lstrip()
    if b"=" in head and head[:1] not in (b"{", b"[") and b"flowId" in head:
        reason += "; it looks form-encoded, send it as JSON instead"
    return _UNPARSED, Hint("not-json", f"the launch body cannot be read: {reason}")


# -- root keys -----------------------------------------------------------------------------------


def _squash_key(key: str) -> str:
    return key.replace("_", "").replace("-", "").replace(" ", "").lower()


def _show(key: str) -> str:
    return key if len(key) <= _MAX_KEY_SHOWN else key[:_MAX_KEY_SHOWN] + "..."


def _root_hints(payload: Mapping[str, Any]) -> list[Hint]:
    hints: list[Hint] = []
    for key in _bounded_keys(payload):
        if key in ROOT_KEYS:
            continue
        if len(hints) >= MAX_HINTS_PER_CODE:
            hints.append(
                Hint(
                    "unknown-root-key",
                    "more unknown root keys follow: the launch body takes only flowId, "
                    "flowVersion, inputData and name",
                )
            )
            break
        hints.append(Hint("unknown-root-key", _root_key_message(key), _show(key)))
    return hints


def _root_key_message(key: str) -> str:
    squashed = _squash_key(key)
    meant = _NEAR_MISSES.get(squashed)
    if meant is not None:
        return f"unknown root key '{_show(key)}': did you mean '{meant}'? Key names are exact."
    foreign = _FOREIGN_KEYS.get(squashed)
    if foreign is not None:
        return foreign.replace("{key}", _show(key))
    if key.startswith("Flow.") or squashed.startswith("flow."):
        return (
            f"'{_show(key)}' is a flow input at the root of the body: move it into 'inputData', "
            f'e.g. {{"inputData": {{"{_show(key)}": ...}}}}'
        )
    return (
        f"unknown root key '{_show(key)}': the launch body takes only flowId, flowVersion, "
        "inputData and name; flow inputs go under 'inputData'"
    )


def _flow_id_hints(payload: Mapping[str, Any], path_id: str | None) -> list[Hint]:
    if "flowId" in payload:
        value = payload["flowId"]
        if isinstance(value, str) and value.strip():
            return []
        if isinstance(value, str):
            problem = "'flowId' is empty"
        elif isinstance(value, dict) and isinstance(value.get("id"), str):
            problem = "'flowId' is an object: pass the id string itself, not the flow entity"
        else:
            problem = f"'flowId' must be a non-empty string, not a JSON {_json_type(value)}"
        return [Hint("missing-flow-id", problem + ": set it to the id of the flow", "flowId")]

    near = next(
        (k for k in _bounded_keys(payload) if _NEAR_MISSES.get(_squash_key(k)) == "flowId"), None
    )
    if near is not None:
        message = (
            f"no 'flowId' in the body, but there is '{_show(near)}': rename it to 'flowId' "
            "(the key is case-sensitive)"
        )
    elif path_id is not None:
        message = (
            f"no 'flowId' in the body: the id '{path_id}' is in the URL path, move it into the "
            f'body as {{"flowId": "{path_id}"}}'
        )
    else:
        message = (
            "no 'flowId' in the body: the platform needs the id of the flow to launch, e.g. "
            '{"flowId": "<flow id>"}'
        )
    return [Hint("missing-flow-id", message, "flowId")]


# -- inputData -----------------------------------------------------------------------------------


def _input_not_object(inputs: object) -> Hint:
    detail = f"it is a JSON {_json_type(inputs)}"
    if isinstance(inputs, str):
        try:
            inner = json.loads(inputs[:_MAX_PARSE_BYTES])
        except (ValueError, RecursionError):
            inner = None
        if isinstance(inner, dict):
            detail = "it is a string holding JSON: send the object itself, not a string"
    elif (
        isinstance(inputs, list)
        and inputs
        and isinstance(inputs[0], dict)
        and ("name" in inputs[0] or "key" in inputs[0])
    ):
        detail = 'it is a list of name/value pairs: use one object {"Flow.name": value, ...}'
    return Hint(
        "input-not-object",
        f"'inputData' must be a JSON object of flow inputs ({detail}), e.g. {_INPUTS_EXAMPLE}",
        "inputData",
    )


def _input_hints(inputs: Mapping[str, Any], schema: Mapping[str, Any] | None) -> list[Hint]:
    props = _schema_properties(schema)
    closed = props is not None and schema is not None and _closed(schema)
    prefix: list[Hint] = []
    undeclared: list[Hint] = []
    typed: list[Hint] = []
    more = {"prefix": 0, "undeclared": 0, "type": 0}

    for key, value in _bounded_items(inputs):
        field = f"inputData.{_show(key)}"
        if props is not None and key in props:
            problem = _type_problem(value, props[key], schema or {})
            if problem is not None:
                if len(typed) < MAX_HINTS_PER_CODE:
                    typed.append(Hint("input-type", f"input '{_show(key)}' {problem}", field))
                else:
                    more["type"] += 1
            continue
        if not key.startswith("Flow."):
            if len(prefix) < MAX_HINTS_PER_CODE:
                prefix.append(Hint("input-key-prefix", _prefix_message(key, props), field))
            else:
                more["prefix"] += 1
            continue
        if props is not None and closed:
            if len(undeclared) < MAX_HINTS_PER_CODE:
                undeclared.append(Hint("input-undeclared", _undeclared_message(key, props), field))
            else:
                more["undeclared"] += 1

    for hints, code, count, what in (
        (prefix, "input-key-prefix", more["prefix"], "without the 'Flow.' prefix"),
        (undeclared, "input-undeclared", more["undeclared"], "the flow does not declare"),
        (typed, "input-type", more["type"], "of the wrong type"),
    ):
        if count:
            scanned = (
                " (only the first keys were checked)" if len(inputs) > _MAX_KEYS_SCANNED else ""
            )
            hints.append(Hint(code, f"and {count} more input key(s) {what}{scanned}", "inputData"))
    return prefix + undeclared + typed


def _prefix_message(key: str, props: Mapping[str, Any] | None) -> str:
    shown = _show(key)
    if key.lower().startswith("flow."):
        meant = "Flow." + key[5:]
        return (
            f"input '{shown}' has the prefix in the wrong case: did you mean '{_show(meant)}'? "
            "Input names are case-sensitive."
        )
    head = key.split(".", 1)[0]
    if "." in key and head in ("Task", "State", "Common", "Interaction", "Call", "Message"):
        return (
            f"input '{shown}' is a {head}-scoped variable: only Flow.* variables marked as input "
            "can be set by a launch"
        )
    meant = "Flow." + key
    message = (
        f"input '{shown}' has no 'Flow.' prefix: did you mean '{_show(meant)}'? Input names are "
        "the flow's variable names, e.g. 'Flow.customerId'"
    )
    if props is not None and meant in props:
        message += "; the flow declares it"
    elif props is not None:
        close = _close_names(meant, props)
        message += f"; the flow declares no '{_show(meant)}'" + (
            f" (closest: {close})" if close else ""
        )
    return message


def _undeclared_message(key: str, props: Mapping[str, Any]) -> str:
    shown = _show(key)
    lowered = {name.lower(): name for name in list(props)[:_MAX_KEYS_SCANNED]}
    same = lowered.get(key.lower())
    if same is not None:
        return (
            f"input '{shown}' is not declared by the flow: did you mean '{_show(same)}'? "
            "Input names are case-sensitive."
        )
    close = _close_names(key, props)
    if close:
        suggestion = f"did you mean {close}?"
    elif props:
        names = ", ".join(f"'{_show(n)}'" for n in list(props)[:_MAX_NAMES_LISTED])
        suggestion = f"declared inputs: {names}" + (
            ", ..." if len(props) > _MAX_NAMES_LISTED else ""
        )
    else:
        suggestion = "the flow declares no inputs"
    return (
        f"input '{shown}' is not declared by the flow's input schema, which accepts no other "
        f"keys: {suggestion} (mark the variable 'Input to flow' in Architect, or drop the key)"
    )


def _close_names(key: str, props: Mapping[str, Any]) -> str:
    names = [n for n in list(props)[:500] if isinstance(n, str)]
    close = difflib.get_close_matches(key, names, n=2, cutoff=0.75)
    return " or ".join(f"'{_show(n)}'" for n in close)


def _bounded_keys(mapping: Mapping[str, Any]) -> Iterator[str]:
    for key, _ in _bounded_items(mapping):
        yield key


def _bounded_items(mapping: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    # str(): a payload loaded from YAML or built in code may have non-string keys.
    for count, (key, value) in enumerate(mapping.items()):
        if count >= _MAX_KEYS_SCANNED:
            return
        yield str(key), value


# -- input schema --------------------------------------------------------------------------------


def _schema_properties(schema: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The declared inputs, or ``None`` when the schema is unknown or says nothing usable."""
    if not isinstance(schema, Mapping):
        return None
    props = schema.get("properties")
    if isinstance(props, Mapping):
        return props
    if schema.get("additionalProperties") is False:
        return {}  # a flow without inputs
    return None


def _closed(schema: Mapping[str, Any]) -> bool:
    # Genesys input schemas say additionalProperties: false; only an explicit opening reopens them.
    extra = schema.get("additionalProperties", False)
    return extra is False or extra is None


def _resolve(node: Any, root: Mapping[str, Any]) -> tuple[Mapping[str, Any], str | None]:
    """Follow local ``$ref`` chains; also return the name of the last definition reached."""
    name: str | None = None
    for _ in range(_MAX_REF_DEPTH):
        if not isinstance(node, Mapping):
            return {}, name
        ref = node.get("$ref")
        if not isinstance(ref, str):
            return node, name
        name = ref.rstrip("/").rsplit("/", 1)[-1]
        target: Any = root
        if ref.startswith("#/"):
            for part in ref[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                target = target.get(part) if isinstance(target, Mapping) else None
        else:
            target = None
        if target is None:
            # An external or dangling reference: keep the name, it may still say the type.
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return rest, name
        node = target
    return {}, name


def _arch_type(node: Mapping[str, Any], ref_name: str | None) -> str | None:
    description = node.get("description")
    # Schemas often name the type only in prose: "archInteger: order number".
    lead = _ARCH_LEAD.match(description) if isinstance(description, str) else None
    for candidate in (
        node.get("x-arch-type"),
        node.get("archType"),
        node.get("x-genesys-type"),
        node.get("format"),
        node.get("title"),
        ref_name,
        lead.group(1) if lead else None,
    ):
        if isinstance(candidate, str) and candidate.lower().startswith("arch"):
            return candidate
    return None


_ARCH_LEAD = re.compile(r"\s*(arch[A-Za-z]+)\b")


def _type_problem(value: Any, prop: Any, root: Mapping[str, Any], depth: int = 0) -> str | None:
    """Why ``value`` does not fit ``prop``, as the end of a sentence, or ``None`` when it fits.

    An Architect type, when the schema names one, is the authority: its rules are looser than
    the JSON Schema ``type`` it is published with (archInteger takes ``"157"``).
    """
    node, ref_name = _resolve(prop, root)
    arch = _arch_type(node, ref_name)
    if arch is not None and _arch_known(arch):
        return _arch_problem(value, arch, root, depth)
    return _schema_problem(value, node, root, depth)


_ARCH_SCALARS = frozenset(
    {
        "archstring",
        "archinteger",
        "archboolean",
        "archdecimal",
        "archnumber",
        "archcurrency",
        "archdatetime",
        "archdate",
        "archtime",
        "archjson",
    }
)
_COLLECTION_SUFFIXES = ("collection", "list", "array")


def _arch_known(arch: str) -> bool:
    lowered = arch.lower()
    for suffix in _COLLECTION_SUFFIXES:
        if lowered.endswith(suffix):
            lowered = lowered[: -len(suffix)]
            break
    return lowered in _ARCH_SCALARS


def _arch_problem(value: Any, arch: str, root: Mapping[str, Any], depth: int) -> str | None:
    lowered = arch.lower()
    for suffix in _COLLECTION_SUFFIXES:
        if lowered.endswith(suffix):
            if value is None:
                return None
            if not isinstance(value, list):
                return f"is a JSON {_json_type(value)}, but the flow declares it {arch} (a list)"
            if len(value) > _ARCH_COLLECTION_MAX:
                return (
                    f"has {len(value):,} items, over the {_ARCH_COLLECTION_MAX:,}-item limit "
                    "of flow collections"
                )
            base = arch[: -len(suffix)]
            for index, item in enumerate(value[:_MAX_ITEMS_CHECKED]):
                problem = _arch_problem(item, base, root, depth + 1)
                if problem is not None:
                    return f"item [{index}] {problem}"
            return None
    if value is None:
        return None  # every Architect type is nullable
    got = _json_type(value)
    if lowered == "archstring":
        if not isinstance(value, str):
            return f"is a JSON {got}, but the flow declares it archString: send a string"
        if len(value) > _ARCH_STRING_MAX:
            return (
                f"is {len(value):,} characters, over the {_ARCH_STRING_MAX:,}-character limit "
                "of archString"
            )
        return None
    if lowered == "archinteger":
        return _integer_problem(value, got)
    if lowered == "archboolean":
        if isinstance(value, bool):
            return None
        extra = f': send {value.lower()}, not "{value}"' if _is_bool_text(value) else ""
        return f"is a JSON {got}, but the flow declares it archBoolean (true or false){extra}"
    if lowered in ("archdecimal", "archnumber", "archcurrency"):
        if _is_number(value):
            return None
        extra = ": send a JSON number, not a string" if _numeric_text(value) else ""
        return f"is a JSON {got}, but the flow declares it {arch} (a number){extra}"
    if lowered in ("archdatetime", "archdate", "archtime"):
        if isinstance(value, str) and _ISO_DATETIME.fullmatch(value.strip()):
            return None
        if isinstance(value, str):
            return (
                f"is not an ISO-8601 date-time, which {arch} requires, e.g. "
                "'2024-05-01T12:00:00.000Z'"
            )
        return f"is a JSON {got}, but the flow declares it {arch}: send an ISO-8601 string"
    if isinstance(value, dict):  # archJson
        return None
    return f"is a JSON {got}, but the flow declares it archJson: send a JSON object"


def _integer_problem(value: Any, got: str) -> str | None:
    if isinstance(value, str):
        if _DIGITS.fullmatch(value):
            return None
        return (
            "is a string that is not a whole number, but the flow declares it archInteger "
            '(a JSON integer, or a string of 1 to 16 digits such as "157")'
        )
    if isinstance(value, float) and not isinstance(value, bool) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if abs(value) > _ARCH_INTEGER_MAX:
            return f"is outside archInteger's range of ±{_ARCH_INTEGER_MAX:,}"
        return None
    return f"is a JSON {got}, but the flow declares it archInteger (a whole number)"


_SCHEMA_TYPES = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, float) and v.is_integer())
    ),
    "number": lambda v: _is_number(v),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}


def _schema_problem(
    value: Any, node: Mapping[str, Any], root: Mapping[str, Any], depth: int
) -> str | None:
    """A small JSON Schema check: type, enum, string/number/array bounds, items, anyOf/oneOf."""
    if depth > _MAX_REF_DEPTH:
        return None
    for combo in ("anyOf", "oneOf"):
        options = node.get(combo)
        if isinstance(options, list) and options:
            problems = [_type_problem(value, o, root, depth + 1) for o in options[:20]]
            if all(p is not None for p in problems):
                return problems[0]
    declared = node.get("type")
    types = [declared] if isinstance(declared, str) else declared
    if isinstance(types, list) and types:
        names = [t for t in types if isinstance(t, str)]
        known = [t for t in names if t in _SCHEMA_TYPES]
        if known and not any(_SCHEMA_TYPES[t](value) for t in known):
            wanted = " or ".join(names)
            extra = ""
            if "number" in known or "integer" in known:
                extra = ": send a JSON number, not a string" if _numeric_text(value) else ""
            elif "boolean" in known and _is_bool_text(value):
                extra = f': send {value.lower()}, not "{value}"'
            return f"is a JSON {_json_type(value)}, but the flow's schema says {wanted}{extra}"
    enum = node.get("enum")
    if isinstance(enum, list) and enum and value not in enum[:1000]:
        return "is not one of the values the flow's schema allows"
    if isinstance(value, str):
        return _string_problem(value, node)
    if _is_number(value):
        return _number_problem(value, node)
    if isinstance(value, list):
        return _array_problem(value, node, root, depth)
    return None


def _string_problem(value: str, node: Mapping[str, Any]) -> str | None:
    limit = _number(node.get("maxLength"))
    if limit is not None and len(value) > limit:
        return f"is {len(value):,} characters, over the schema's maxLength of {limit:,}"
    if node.get("format") == "date-time" and not _ISO_DATETIME.fullmatch(value.strip()):
        return "is not an ISO-8601 date-time, e.g. '2024-05-01T12:00:00.000Z'"
    return None


def _number_problem(value: float, node: Mapping[str, Any]) -> str | None:
    low, high = _number(node.get("minimum")), _number(node.get("maximum"))
    if low is not None and value < low:
        return f"is below the schema's minimum of {low}"
    if high is not None and value > high:
        return f"is above the schema's maximum of {high}"
    return None


def _array_problem(
    value: list[Any], node: Mapping[str, Any], root: Mapping[str, Any], depth: int
) -> str | None:
    limit = _number(node.get("maxItems"))
    if limit is None:
        limit = _ARCH_COLLECTION_MAX
    if len(value) > limit:
        return f"has {len(value):,} items, over the limit of {limit:,}"
    items = node.get("items")
    if isinstance(items, Mapping):
        for index, item in enumerate(value[:_MAX_ITEMS_CHECKED]):
            problem = _type_problem(item, items, root, depth + 1)
            if problem is not None:
                return f"item [{index}] {problem}"
    return None


# -- small helpers -------------------------------------------------------------------------------


def _is_number(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return not (isinstance(value, float) and not math.isfinite(value))


def _number(value: object) -> float | None:
    return value if isinstance(value, (int, float)) and _is_number(value) else None


def _numeric_text(value: object) -> bool:
    if not isinstance(value, str) or len(value) > 64:
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True


def _is_bool_text(value: object) -> bool:
    return isinstance(value, str) and value.lower() in ("true", "false")

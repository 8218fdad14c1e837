"""Diagnose common mistakes in a flow launch payload (every hint is in the README's table).

The platform answers most launch mistakes with a bare ``400 bad.request``; these hints say which
part of the payload is wrong and how to fix it. Pure functions: no httpx, no OpenTelemetry.
"""

from __future__ import annotations

import difflib
import functools
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from itertools import islice
from typing import Any
from urllib.parse import quote, urlsplit

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
    "input-nested",
    "flow-id-not-uuid",
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
_MAX_NESTED_SCANNED = 50

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

# Root keys that stand in for 'flowId' (keyed like _FOREIGN_KEYS): when 'flowId' is missing,
# the missing-flow-id hint names them and they get no unknown-root-key hint of their own.
_FLOW_ID_STAND_INS = frozenset({"flowid", "id", "flow", "flowname", "flowconfigid"})

#: Where a flow's id can be found, for hints about a wrong one.
_WHERE_IS_THE_ID = (
    "find the id in Architect (open the flow: the id is the UUID in the page address) or with "
    "GET /api/v2/flows?name={name}"
)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_UUID_BARE = re.compile(r"[0-9a-fA-F]{32}")
_PLACEHOLDER = re.compile(
    r"\$\{[^}]*\}|\{\{[^}]*\}\}|<[^>]*>|%[A-Za-z_]\w*%|^:[A-Za-z_]\w*$|^\{[A-Za-z_][\w.]*\}$"
    r"|your[_\s-]*flow[_\s-]*id|flow[_\s-]*id[_\s-]*here|^(?:x{3,}|\*{3,}|\.{3}|todo|tbd|null|none|undefined)$",
    re.IGNORECASE,
)
_VERSION_LIKE = re.compile(r"v?[0-9]+(?:\.[0-9]+){0,3}", re.IGNORECASE)


def diagnose_launch(
    body: bytes | None,
    *,
    content_type: str | None = None,
    path: str = "/api/v2/flows/executions",
    body_size: int | None = None,
    input_schema: Mapping[str, Any] | None = None,
    rejected_fields: Iterable[str] = (),
) -> list[Hint]:
    """Name the mistakes in a flow launch request, most fundamental first.

    ``body`` is what was sent (``None`` when it is unknown, e.g. a streamed upload; ``b""`` for no
    body). ``body_size`` is the full size when ``body`` is only a captured prefix: a cut body is
    not reported as invalid JSON. ``content_type`` is the request header (``None`` when unknown,
    ``""`` when the request had none). ``path`` may be a path or a full URL. ``input_schema`` is
    the flow version's ``inputSchema`` (JSON Schema), when known. ``rejected_fields`` are the
    ``details[].fieldName`` values of the platform's error reply, when there was one: the hint
    about a key the platform named says so, so its word and the advice are read together.
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
    return _with_platform_word(hints, rejected_fields)


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
    stand_in = None if "flowId" in payload else _flow_id_stand_in(payload)
    hints = _root_hints(payload, stand_in)
    hints.extend(_flow_id_hints(payload, path_id, stand_in))
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


def _bound(key: str) -> str:
    """A key as a hint's ``field`` carries it: as sent, but bounded."""
    return key if len(key) <= _MAX_KEY_SHOWN else key[:_MAX_KEY_SHOWN] + "..."


def _show(key: str) -> str:
    """A key or value as a message may quote it: bounded, and printable.

    A run of control characters, line breaks or lone surrogates becomes one space, so a quoted
    value can neither start a forged log line nor make the span unexportable.
    """
    shown = _bound(key)
    if shown.isprintable():
        return shown
    out: list[str] = []
    for ch in shown:
        if ch.isprintable():
            out.append(ch)
        elif not out or out[-1] != " ":
            out.append(" ")
    return "".join(out)


def _root_hints(payload: Mapping[str, Any], stand_in: str | None) -> list[Hint]:
    hints: list[Hint] = []
    for key, value in _bounded_items(payload):
        if key in ROOT_KEYS or key == stand_in:
            continue  # the stand-in for 'flowId' is named by the missing-flow-id hint
        if len(hints) >= MAX_HINTS_PER_CODE:
            hints.append(
                Hint(
                    "unknown-root-key",
                    "more unknown root keys follow: the launch body takes only flowId, "
                    "flowVersion, inputData and name",
                )
            )
            break
        hints.append(Hint("unknown-root-key", _root_key_message(key, value), _bound(key)))
    return hints


def _root_key_message(key: str, value: Any) -> str:
    squashed = _squash_key(key)
    if squashed == "flow" and isinstance(value, dict):
        names = _flattened(value, None)
        return (
            f"'{_show(key)}' is not a launch field: flow inputs go under 'inputData', each named "
            f'with its \'Flow.\' prefix, e.g. {{"inputData": {{"{names[0]}": ...}}}}; here: '
            + _list_names(names)
        )
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


def _flow_id_stand_in(payload: Mapping[str, Any]) -> str | None:
    """The root key that was meant as 'flowId' (``flow_id``, ``flowName``, ``id``...), if any."""
    for key, value in _bounded_items(payload):
        squashed = _squash_key(key)
        if _NEAR_MISSES.get(squashed) == "flowId":
            return key
        # 'Flow': {"customerId": ...} is nested inputs, not a flow: only an id or a name counts.
        named = isinstance(value, dict) and ("id" in value or "name" in value)
        if squashed in _FLOW_ID_STAND_INS and (isinstance(value, str) or named):
            return key
    return None


def _flow_id_hints(
    payload: Mapping[str, Any], path_id: str | None, stand_in: str | None
) -> list[Hint]:
    if "flowId" in payload:
        value = payload["flowId"]
        if isinstance(value, str) and value.strip():
            problem = _flow_id_problem(value)
            return [] if problem is None else [Hint("flow-id-not-uuid", problem, "flowId")]
        if isinstance(value, str):
            problem = "'flowId' is empty"
        elif isinstance(value, dict) and isinstance(value.get("id"), str):
            problem = "'flowId' is an object: pass the id string itself, not the flow entity"
        else:
            problem = f"'flowId' must be a non-empty string, not a JSON {_json_type(value)}"
        return [Hint("missing-flow-id", problem + ": set it to the id of the flow", "flowId")]

    if stand_in is not None:
        message = _stand_in_message(stand_in, payload[stand_in])
    elif path_id is not None:
        return []  # the flow-id-in-path hint already says to move the id into the body
    else:
        message = (
            "no 'flowId' in the body: the platform needs the id of the flow to launch, e.g. "
            '{"flowId": "<flow id>"}'
        )
    return [Hint("missing-flow-id", message, "flowId")]


def _stand_in_message(key: str, value: Any) -> str:
    shown = _show(key)
    if _NEAR_MISSES.get(_squash_key(key)) == "flowId":
        return (
            f"no 'flowId' in the body, but there is '{shown}': rename it to 'flowId' "
            "(the key is case-sensitive)"
        )
    if isinstance(value, dict):
        inner = value.get("id")
        if isinstance(inner, str) and _UUID.fullmatch(inner.strip()):
            return (
                f"no 'flowId' in the body, but '{shown}' holds the flow: send its id as "
                f'{{"flowId": "{inner.strip()}"}}'
            )
    if isinstance(value, str) and _UUID.fullmatch(value.strip()):
        return (
            f"no 'flowId' in the body, but '{shown}' holds a flow id: rename it, "
            f'{{"flowId": "{value.strip()}"}}'
        )
    name = value if isinstance(value, str) and value.strip() else "<flow name>"
    return (
        f"no 'flowId' in the body, and '{shown}' is not a launch field: the launch takes the "
        "flow's id (a UUID) in 'flowId'; "
        + _WHERE_IS_THE_ID.replace("{name}", quote(_show(name.strip())))
    )


def _flow_id_problem(value: str) -> str | None:
    """Why a non-empty ``flowId`` string is not a flow id, or ``None`` when it is a UUID."""
    if _UUID.fullmatch(value):
        return None
    text = value.strip()
    shown = _show(text)
    where = _WHERE_IS_THE_ID.replace("{name}", "<flow name>")
    if _UUID.fullmatch(text):
        return f"'flowId' has spaces around the id: send exactly '{text}'"
    if _PLACEHOLDER.search(text[:_MAX_PARSE_BYTES]):
        return (
            f"'flowId' is the placeholder '{shown}', never filled in: put the flow's id (a UUID) "
            f"there; {where}"
        )
    found = _UUID.search(text[:2048])
    if "/" in text or "://" in text or "#" in text:
        if found is not None and "/versions/" in text:
            return (
                f"'flowId' is a flow version URI: send only the flow's id, "
                f"'{found.group(0)}', and the version (if any) in 'flowVersion'"
            )
        if found is not None:
            return f"'flowId' is a URL or path: send only the flow's id in it, '{found.group(0)}'"
        return f"'flowId' is a URL, not a flow id (a UUID): {where}"
    if found is not None:
        return f"'flowId' has more than the id: send only '{found.group(0)}'"
    if _UUID_BARE.fullmatch(text):
        dashed = f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
        return f"'flowId' is a UUID without its hyphens: send it as '{dashed}'"
    if _VERSION_LIKE.fullmatch(text):
        return (
            f"'flowId' is '{shown}', which looks like a flow version, not a flow id: put the "
            f"version in 'flowVersion' and the flow's id (a UUID) in 'flowId'; {where}"
        )
    return (
        f"'flowId' is '{shown}', which is not a flow id: flow ids are UUIDs "
        "(8-4-4-4-12 hex digits). If it is the flow's name, "
        + _WHERE_IS_THE_ID.replace("{name}", quote(shown))
    )


def _with_platform_word(hints: list[Hint], rejected_fields: Iterable[str]) -> list[Hint]:
    """Prefix the hint about each key the platform's error named with the platform's word."""
    named = [f for f in islice(rejected_fields, 100) if isinstance(f, str) and f.strip()]
    if not named:
        return hints
    named_forms = [(f, _key_forms(f)) for f in named]
    out: list[Hint] = []
    for hint in hints:
        subject = _hint_subject(hint)
        forms = _key_forms(subject) if subject else frozenset()
        rejected = next((f for f, fs in named_forms if not fs.isdisjoint(forms)), None)
        if rejected is not None:
            hint = replace(
                hint,
                message=f"the platform rejected '{_show(rejected)}' (the error's fieldName); "
                f"{hint.message}",
            )
        out.append(hint)
    return out


def _hint_subject(hint: Hint) -> str | None:
    """The payload key a hint is about (its ``field`` without the ``inputData.`` part)."""
    field = hint.field
    if field is None or field == "path" or field.startswith("header:"):
        return None
    return field[len("inputData.") :] if field.startswith("inputData.") else field


_FIELD_NOISE = re.compile(r"^(?:\$\.|body\.|request\.)|[\s_\-:]", re.IGNORECASE)


_FLOW_SCOPE = re.compile(r"^flow\.?")
#: Longest key whose forms are remembered: field names and payload keys recur on every call.
_KEY_FORMS_CACHED = 256


def _key_forms(name: str) -> frozenset[str]:
    """Ways to write one key that a platform's ``fieldName`` and a payload key both reduce to."""
    if len(name) <= _KEY_FORMS_CACHED:
        return _cached_key_forms(name)
    return _compute_key_forms(name)


def _compute_key_forms(name: str) -> frozenset[str]:
    base = _FIELD_NOISE.sub("", name.strip()).lower()
    if base.startswith("inputdata.") and len(base) > len("inputdata."):
        base = base[len("inputdata.") :]
    bare = _FLOW_SCOPE.sub("", base)
    if len(bare) >= 3 and base != "flowid":
        return frozenset((base, bare))
    return frozenset((base,))


_cached_key_forms = functools.lru_cache(maxsize=4096)(_compute_key_forms)


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
    declared = _Declared(props) if props is not None else None
    found: dict[str, list[Hint]] = {code: [] for code in _INPUT_CODES}
    more = dict.fromkeys(_INPUT_CODES, 0)

    def add(code: str, field: str, message: Callable[..., str], *args: Any) -> None:
        # The message is built only for hints that are kept: past the cap, keys are counted.
        if len(found[code]) < MAX_HINTS_PER_CODE:
            found[code].append(Hint(code, message(*args), field))
        else:
            more[code] += 1

    for key, value in _bounded_items(inputs):
        field = f"inputData.{_bound(key)}"
        if props is not None and key in props:
            problem = _type_problem(value, props[key], schema or {})
            if problem is not None:
                add("input-type", field, "input '{}' {}".format, _show(key), problem)
            continue
        if _is_nested(key, value, declared):
            add("input-nested", field, _nested_message, key, value, declared)
            continue
        fix = _name_fix(key)
        if fix is not None:
            add("input-key-prefix", field, _prefix_message, key, fix, declared)
            continue
        if props is not None and closed:
            add("input-undeclared", field, _undeclared_message, key, props)

    hints: list[Hint] = []
    for code in _INPUT_CODES:
        hints.extend(found[code])
        if more[code]:
            scanned = (
                " (only the first keys were checked)" if len(inputs) > _MAX_KEYS_SCANNED else ""
            )
            what = _INPUT_CODES[code]
            hints.append(
                Hint(code, f"and {more[code]} more input key(s) {what}{scanned}", "inputData")
            )
    return hints


# Per-key input codes, in the order they are reported, with how "and N more" names them.
_INPUT_CODES = {
    "input-nested": "nested in an object",
    "input-key-prefix": "without the 'Flow.' prefix",
    "input-undeclared": "the flow does not declare",
    "input-type": "of the wrong type",
}
_SCOPES = ("Task", "State", "Common", "Interaction", "Call", "Message")
_PREFIX_HEAD = re.compile(r"(flow)(\s*[.\s_:\-/\\]+\s*)(.*)", re.IGNORECASE | re.DOTALL)
_PREFIX_AGAIN = re.compile(r"flow\s*\.\s*(.*)", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class _NameFix:
    """The input name a malformed key most likely meant, and what is wrong with the key."""

    meant: str
    problems: tuple[str, ...]
    bare: str  # the key without any attempt at the prefix, for schema look-ups
    scope: str | None = None


def _name_fix(key: str) -> _NameFix | None:
    """How ``key`` falls short of a ``Flow.<name>`` input name, or ``None`` when it does not."""
    text = key.strip()
    problems: list[str] = []
    if text != key:
        problems.append("spaces around the name")
    head = _PREFIX_HEAD.fullmatch(text)
    if head is not None:
        prefix, sep, rest = head.groups()
        if prefix != "Flow":
            problems.append("the prefix in the wrong case")
        if sep != ".":
            mark = sep.strip()
            if mark == ".":
                problems.append("spaces around the '.' after 'Flow'")
            elif "." in mark:
                problems.append(f"'{mark}' where a single '.' belongs after 'Flow'")
            else:
                problems.append(f"'{mark or ' '}' where the '.' belongs after 'Flow'")
    elif len(text) > 4 and text[:4] == "Flow" and text[4].isalpha():
        rest = text[4:]
        problems.append("no '.' after 'Flow'")
    elif _squash_key(text).rstrip(".:") == "flow":
        return _NameFix("Flow.", ("only the prefix",), text)
    else:
        rest = text
        scoped = text.split(".", 1)[0]
        if "." in text and scoped in _SCOPES:
            return _NameFix("Flow." + text.split(".", 1)[1], ("scope",), text, scoped)
        problems.append("no 'Flow.' prefix")
    again = _PREFIX_AGAIN.fullmatch(rest)
    if again is not None and again.group(1):
        rest = again.group(1)
        problems.append("the 'Flow.' prefix twice")
    meant = "Flow." + rest.strip()
    if meant == key:
        return None
    return _NameFix(meant, tuple(problems), text)


def _prefix_message(key: str, fix: _NameFix, declared: _Declared | None) -> str:
    shown = _show(key)
    if fix.scope is not None:
        return (
            f"input '{shown}' is a {fix.scope}-scoped variable: only Flow.* variables marked as "
            "input can be set by a launch; did you mean the flow variable "
            f"'{_show(fix.meant)}'?"
        )
    if fix.meant == "Flow.":
        return (
            f"input '{shown}' is only the prefix: an input name is 'Flow.' followed by the "
            "variable's name, e.g. 'Flow.customerId'"
        )
    meant = fix.meant
    known = ""
    if declared is not None:
        match = declared.like(meant) or declared.like("Flow." + fix.bare)
        if match is not None:
            meant, known = match, "; the flow declares it"
        else:
            close = _close_names(meant, declared.props)
            known = f"; the flow declares no '{_show(meant)}'" + (
                f" (closest: {close})" if close else ""
            )
    what = " and ".join(fix.problems)
    return (
        f"input '{shown}' has {what}: did you mean '{_show(meant)}'? Input names are 'Flow.' "
        f"followed by the variable's name, exactly (case-sensitive){known}"
    )


class _Declared:
    """The flow's declared input names, looked up as written or whatever their case."""

    def __init__(self, props: Mapping[str, Any]) -> None:
        self.props = props
        self._lowered: dict[str, str | None] = {}
        for name in islice(props, _MAX_KEYS_SCANNED):
            text = str(name)
            # Two names that differ only in case: neither is "the" match.
            self._lowered[text.lower()] = None if text.lower() in self._lowered else text

    def like(self, name: str) -> str | None:
        if name in self.props:
            return name
        return self._lowered.get(name.lower())


def _is_nested(key: str, value: Any, declared: _Declared | None) -> bool:
    """Whether ``value`` holds inputs nested in an object under ``key``.

    Nested when the object is named like the prefix (``Flow``, ``flow``, ``FLOW``), or when its
    keys look like input names (``Flow.x``, or names the schema declares once prefixed). An
    object under a ``Flow.x`` key is otherwise an archJson value, and left alone.
    """
    if not isinstance(value, dict) or not value:
        return False
    if _squash_key(key).rstrip(".:") == "flow":
        return True
    inner = [str(k) for k in islice(value, _MAX_NESTED_SCANNED)]
    return any(_looks_prefixed(k) for k in inner) or (
        declared is not None and any(declared.like("Flow." + k.strip()) for k in inner)
    )


def _looks_prefixed(key: str) -> bool:
    return _PREFIX_HEAD.fullmatch(key.strip()) is not None


def _flattened(inner: Mapping[str, Any], declared: _Declared | None) -> list[str]:
    """The flat input names of a nested object's keys (the first few: enough to show)."""
    names: list[str] = []
    for key in islice(inner, _MAX_NAMES_LISTED + 1):
        text = str(key)
        fix = _name_fix(text)
        name = text if fix is None else fix.meant if fix.scope is None else "Flow." + text
        if declared is not None:
            name = declared.like(name) or name
        names.append(_show(name))
    return names


def _list_names(names: list[str]) -> str:
    shown = ", ".join(f"'{n}'" for n in names[:_MAX_NAMES_LISTED])
    return shown + (", ..." if len(names) > _MAX_NAMES_LISTED else "")


def _nested_message(key: str, value: Mapping[str, Any], declared: _Declared | None) -> str:
    names = _flattened(value, declared)
    return (
        f"inputs are nested in an object under '{_show(key)}': the launch takes them flat, "
        f"directly in 'inputData', each named with its 'Flow.' prefix: {_list_names(names)}, "
        f'e.g. {{"inputData": {{"{names[0]}": ...}}}}. Nested, they set no flow variable.'
    )


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
        f"input; {suggestion} (mark the variable 'Input to flow' in Architect, or drop it)"
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
                return (
                    f"is a JSON {_json_type(value)}, but the flow declares it {arch} (a list): "
                    + _list_fix(value)
                )
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
    return f"is a JSON {got}, but the flow declares it archJson: " + _object_fix(value)


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
            if "array" in known:
                extra = ": " + _list_fix(value)
            elif "object" in known:
                extra = ": " + _object_fix(value)
            elif "number" in known or "integer" in known:
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


def _holds_json(value: object, kind: type) -> bool:
    if not isinstance(value, str) or value.strip()[:1] not in ("[", "{"):
        return False
    try:
        return isinstance(json.loads(value[:_MAX_PARSE_BYTES]), kind)
    except (ValueError, RecursionError):
        return False


def _list_fix(value: object) -> str:
    """How to send a collection input that came as something else (never quoting the value)."""
    if _holds_json(value, list):
        return "send the list itself, not a string holding it as JSON"
    if isinstance(value, str) and any(sep in value for sep in ",;|"):
        return 'send a JSON list such as ["first", "second"], not one delimited string'
    return "send a JSON list, even for one value: [value]"


def _object_fix(value: object) -> str:
    """How to send an archJson input that came as something else (never quoting the value)."""
    if _holds_json(value, dict):
        return "send the object itself, not a string holding it as JSON"
    return 'send a JSON object such as {"key": "value"}'


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

"""Flow inputs from ``--input KEY=VALUE``: one syntax for the CLI and the examples.

Without the flow's input schema a value is JSON when it parses (``42``, ``true``, ``{...}``) and a
string otherwise. With the schema, the value takes the type the flow declares, so
``Flow.customerId=42`` sends ``"42"`` to an ``archString`` and ``42`` to an ``archInteger``, and a
key missing the ``Flow.`` prefix is corrected when the schema declares exactly one input of that
name. Pure functions: no I/O, so the launch command and any script can share them.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flowscope import diagnose_payload

__all__ = ["TypedInputs", "coerce", "input_pair", "type_inputs"]

PREFIX = "Flow."


def input_pair(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` split at the first ``=``; an ``argparse`` ``type=`` for ``--input``."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(
            f"expected KEY=VALUE, e.g. Flow.customerId=C-1001, got {text!r}"
        )
    return key.strip(), value


def coerce(text: str) -> Any:
    """The value as JSON when it parses, else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


@dataclass(frozen=True)
class TypedInputs:
    """``inputData`` ready to send, and what was changed on the way (one line each)."""

    data: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def type_inputs(
    pairs: Iterable[tuple[str, str]], schema: Mapping[str, Any] | None = None
) -> TypedInputs:
    """Type each ``(key, text)`` by the flow's input schema, or by JSON when there is none.

    A value that fits no declared type keeps its JSON reading, so the payload hints can say what
    is wrong with it before anything is sent.
    """
    properties = _properties(schema)
    data: dict[str, Any] = {}
    notes: list[str] = []
    for key, text in pairs:
        name = key
        if properties is not None and key not in properties:
            match = _prefix_match(key, properties)
            if match is not None:
                name = match
                notes.append(
                    f"--input {key}: the flow has no input {key!r}; sending it as {match!r}, "
                    "the one input it declares by that name"
                )
        if schema is not None and properties is not None and name in properties:
            data[name] = _typed(name, text, schema)
        else:
            data[name] = coerce(text)
    return TypedInputs(data, notes)


def _properties(schema: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    props = schema.get("properties") if isinstance(schema, Mapping) else None
    return props if isinstance(props, Mapping) else None


def _prefix_match(key: str, properties: Mapping[str, Any]) -> str | None:
    """The declared input ``Flow.<key>`` (any case), when there is exactly one."""
    if key.lower().startswith(PREFIX.lower()):
        return None
    wanted = (PREFIX + key).lower()
    matches = [name for name in properties if isinstance(name, str) and name.lower() == wanted]
    return matches[0] if len(matches) == 1 else None


def _typed(name: str, text: str, schema: Mapping[str, Any]) -> Any:
    """The first reading of ``text`` the schema accepts for ``name``: JSON, then the text."""
    candidates = [coerce(text)]
    if candidates[0] != text or not isinstance(candidates[0], str):
        candidates.append(text)
    for value in candidates:
        # The hint engine knows the architect types (archString, archInteger ...) however the
        # schema spells them; a reading it has no input-type complaint about is the one to send.
        hints = diagnose_payload({"flowId": "-", "inputData": {name: value}}, input_schema=schema)
        if not any(h.code in ("input-type", "input-nested") for h in hints):
            return value
    return candidates[0]

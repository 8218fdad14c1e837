"""The flows the sandbox knows, and the input checks and outputs it models for them.

Schemas are plain JSON Schema in the shape a flow version returns (``inputSchema`` /
``outputSchema``, ``"additionalProperties": false``, properties named after the flow variables).
The checker understands the subset the architect types need (``type``, ``maxLength``,
``pattern``, ``minimum``/``maximum``, ``format: date-time``, ``items``/``maxItems``), so flows
built by hand with ordinary JSON Schema work too.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any

__all__ = ["InputProblem", "SandboxFlow", "check_input", "default_flows", "make_output"]


@dataclass(frozen=True)
class SandboxFlow:
    """A published flow as the sandbox serves it.

    ``fail_rate`` is the probability that an execution ends ``FAILED``; a ``deleted`` flow answers
    launches with 410 ``architect.flow.deleted``.
    """

    id: str
    name: str
    version: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    fail_rate: float = 0.0
    deleted: bool = False


@dataclass(frozen=True)
class InputProblem:
    """Why one ``inputData`` key was refused."""

    key: str
    error_code: str  # ``UNRECOGNIZED_FIELD`` or ``INVALID_VALUE``
    message: str


def default_flows() -> list[SandboxFlow]:
    """The built-in flows, read from the packaged ``flows.json``.

    Ids are fixed so dashboards, examples and tests can name them.
    """
    text = resources.files(__package__).joinpath("flows.json").read_text(encoding="utf-8")
    document = json.loads(text)
    return [
        SandboxFlow(
            id=entry["id"],
            name=entry["name"],
            version=entry["version"],
            input_schema=entry["inputSchema"],
            output_schema=entry["outputSchema"],
            fail_rate=float(entry.get("failRate", 0.0)),
            deleted=bool(entry.get("deleted", False)),
        )
        for entry in document["flows"]
    ]


def check_input(schema: Mapping[str, Any], data: Mapping[str, Any]) -> list[InputProblem]:
    """Every key of ``data`` the schema refuses, in the order sent.

    A declared key that is absent is fine: the platform leaves the variable at its initial value.
    """
    properties: Mapping[str, Any] = schema.get("properties") or {}
    closed = schema.get("additionalProperties", True) is False
    problems: list[InputProblem] = []
    for key, value in data.items():
        spec = properties.get(key)
        if spec is None:
            if closed:
                message = _undeclared(key, properties)
                problems.append(InputProblem(key, "UNRECOGNIZED_FIELD", message))
            continue
        reason = _value_problem(spec, value)
        if reason is not None:
            problems.append(InputProblem(key, "INVALID_VALUE", f"{key}: {reason}"))
    return problems


def make_output(
    schema: Mapping[str, Any], inputs: Mapping[str, Any], rng: random.Random
) -> dict[str, Any]:
    """``outputData`` for a completed execution.

    A variable that is also an input echoes it; otherwise one of the schema's ``examples`` is
    picked; with neither it stays unset (``null``). Integers come back as strings, as on the
    platform.
    """
    properties: Mapping[str, Any] = schema.get("properties") or {}
    output: dict[str, Any] = {}
    for key, spec in properties.items():
        if key in inputs:
            value = inputs[key]
        else:
            examples = spec.get("examples") if isinstance(spec, Mapping) else None
            value = rng.choice(examples) if isinstance(examples, list) and examples else None
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        output[key] = value
    return output


def _undeclared(key: str, properties: Mapping[str, Any]) -> str:
    if not key.startswith("Flow.") and f"Flow.{key}" in properties:
        return f"{key} is not an input of this flow version; flow variables are named Flow.{key}"
    return f"{key} is not an input of this flow version"


_JSON_TYPES: dict[str, str] = {
    "NoneType": "null",
    "bool": "boolean",
    "str": "string",
    "dict": "object",
    "list": "array",
}


def _type_name(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return _JSON_TYPES[type(value).__name__]
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return _JSON_TYPES.get(type(value).__name__, type(value).__name__)


def _matches_type(value: object, json_type: str) -> bool:
    if json_type == "null":
        return value is None
    if json_type == "boolean":
        return isinstance(value, bool)
    if json_type == "string":
        return isinstance(value, str)
    if json_type == "object":
        return isinstance(value, dict)
    if json_type == "array":
        return isinstance(value, list)
    if isinstance(value, bool):
        return False
    if json_type == "integer":
        return isinstance(value, int) or (
            isinstance(value, float) and math.isfinite(value) and value.is_integer()
        )
    if json_type == "number":
        return isinstance(value, (int, float))
    return False


def _value_problem(spec: Mapping[str, Any], value: object) -> str | None:
    """Why ``value`` does not fit ``spec``, or ``None`` when it does."""
    declared = spec.get("type")
    types = [declared] if isinstance(declared, str) else list(declared or [])
    if types and not any(_matches_type(value, t) for t in types):
        expected = " or ".join(t for t in types if t != "null") or "null"
        return f"expected {expected}, got {_type_name(value)}"
    if isinstance(value, str):
        limit = spec.get("maxLength")
        if isinstance(limit, int) and len(value) > limit:
            return f"string longer than {limit} characters"
        pattern = spec.get("pattern")
        if isinstance(pattern, str) and re.search(pattern, value) is None:
            return f"string does not match {pattern}"
        if spec.get("format") == "date-time" and not _is_datetime(value):
            return "expected an ISO-8601 date-time such as 2025-03-14T16:00:00.000Z"
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        low, high = spec.get("minimum"), spec.get("maximum")
        if isinstance(low, (int, float)) and value < low:
            return f"number below {low}"
        if isinstance(high, (int, float)) and value > high:
            return f"number above {high}"
    elif isinstance(value, list):
        limit = spec.get("maxItems")
        if isinstance(limit, int) and len(value) > limit:
            return f"more than {limit} items"
        items = spec.get("items")
        if isinstance(items, Mapping):
            for index, item in enumerate(value):
                reason = _value_problem(items, item)
                if reason is not None:
                    return f"item {index}: {reason}"
    return None


def _is_datetime(text: str) -> bool:
    # Python 3.10's fromisoformat rejects a trailing "Z" and needs a time part.
    if "T" not in text and "t" not in text:
        return False
    candidate = text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text
    try:
        datetime.fromisoformat(candidate)
    except ValueError:
        # Three-digit fractions with an offset are fine in 3.11 but not 3.10: retry without them.
        trimmed = re.sub(r"\.\d+", "", candidate, count=1)
        try:
            datetime.fromisoformat(trimmed)
        except ValueError:
            return False
    return True

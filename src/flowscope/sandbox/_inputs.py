"""The launch's ``inputData`` against the flow version's input schema, as the platform checks it.

``jsonschema`` decides what is valid, under the draft the schema names (the platform publishes
draft-04, ``date-time`` checked as RFC 3339); this module only turns its errors into one short
reason per refused key, in the words the sandbox's 400 bodies use. Only what the platform reports
per key is modeled: undeclared keys, and each value against its property's schema. Keywords on the
whole object (``required``, ``minProperties``) are not enforced: a declared key that is absent is
fine, the platform leaves the variable at its initial value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema import TypeChecker
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator

__all__ = ["InputChecker", "InputProblem", "json_type"]


@dataclass(frozen=True)
class InputProblem:
    """Why one ``inputData`` key was refused."""

    key: str
    error_code: str  # ``UNRECOGNIZED_FIELD`` or ``INVALID_VALUE``
    message: str


_JSON_TYPES = ("null", "boolean", "integer", "number", "string", "array", "object")


def json_type(value: object, types: TypeChecker | None = None) -> str:
    """The JSON Schema type name of a decoded JSON value, as ``types`` (draft-04's) tells them.

    The first that fits, so ``1`` is an ``integer``; under draft-04, ``1.0`` is a ``number``.
    """
    if types is None:
        from jsonschema.validators import Draft4Validator

        types = Draft4Validator.TYPE_CHECKER
    return next((name for name in _JSON_TYPES if types.is_type(value, name)), "object")


# When one value breaks several keywords, the first of these is the one reported: the type
# before any bound, as a person reading the message would fix it.
_KEYWORD_ORDER = ("type", "maxLength", "pattern", "format", "minimum", "maximum", "maxItems")


class InputChecker:
    """One flow version's input schema, compiled once, asked once per launch."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        # Imported here, not at the top: the CLI imports this package to build its parser, and
        # jsonschema takes longer to import than the whole of ``flowscope --help``.
        try:
            from jsonschema.validators import Draft4Validator, validator_for
        except ImportError as missing:
            raise ImportError(
                "the sandbox checks launch inputs with jsonschema: pip install 'flowscope[sandbox]'"
            ) from missing

        validator_class = validator_for(schema, default=Draft4Validator)
        self._validator: Validator = validator_class(
            schema, format_checker=validator_class.FORMAT_CHECKER
        )
        self._properties: Mapping[str, Any] = schema.get("properties") or {}
        self._patterns = [re.compile(p) for p in schema.get("patternProperties") or {}]
        self._closed = schema.get("additionalProperties", True) is False

    def problems(self, data: Mapping[str, Any]) -> list[InputProblem]:
        """Every key of ``data`` the schema refuses, in the order sent."""
        by_key: dict[str, list[ValidationError]] = {}
        for error in self._validator.iter_errors(dict(data)):
            if error.path:
                by_key.setdefault(str(error.path[0]), []).append(error)
        problems: list[InputProblem] = []
        for key in data:
            if self._closed and not self._declared(key):
                problems.append(InputProblem(key, "UNRECOGNIZED_FIELD", self._undeclared(key)))
            elif key in by_key:
                reason = _reason(min(by_key[key], key=_rank), self._validator.TYPE_CHECKER)
                problems.append(InputProblem(key, "INVALID_VALUE", f"{key}: {reason}"))
        return problems

    def _declared(self, key: str) -> bool:
        return key in self._properties or any(p.search(key) for p in self._patterns)

    def _undeclared(self, key: str) -> str:
        if not key.startswith("Flow.") and f"Flow.{key}" in self._properties:
            return (
                f"{key} is not an input of this flow version; flow variables are named Flow.{key}"
            )
        return f"{key} is not an input of this flow version"


def _rank(error: ValidationError) -> tuple[tuple[tuple[int, str], ...], int]:
    # A value's own errors before its items', then the first item, then keyword order.
    inner = tuple(
        (step, "") if isinstance(step, int) else (-1, step) for step in list(error.path)[1:]
    )
    keyword = str(error.validator)
    order = _KEYWORD_ORDER.index(keyword) if keyword in _KEYWORD_ORDER else len(_KEYWORD_ORDER)
    return inner, order


def _reason(error: ValidationError, types: TypeChecker) -> str:
    """One clause a person can act on, prefixed with where inside the value it applies."""
    where = "".join(_step(step) for step in list(error.path)[1:])
    return where + _clause(error, types)


def _step(step: str | int) -> str:
    return f"item {step}: " if isinstance(step, int) else f"{step}: "


def _clause(error: ValidationError, types: TypeChecker) -> str:
    keyword, bound = str(error.validator), error.validator_value
    if keyword == "type":
        declared = bound if isinstance(bound, list) else [bound]
        expected = " or ".join(str(t) for t in declared if t != "null") or "null"
        return f"expected {expected}, got {json_type(error.instance, types)}"
    clauses: Mapping[str, str] = {
        "maxLength": f"string longer than {bound} characters",
        "pattern": f"string does not match {bound}",
        "minimum": f"number below {bound}",
        "maximum": f"number above {bound}",
        "maxItems": f"more than {bound} items",
    }
    if keyword in clauses:
        return clauses[keyword]
    if keyword == "format" and bound == "date-time":
        return "expected an ISO-8601 date-time such as 2025-03-14T16:00:00.000Z"
    return error.message

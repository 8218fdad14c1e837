"""Every option flowscope has, in one frozen dataclass that can also be read from the env."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from ._routes import DEFAULT_ROUTES, Route

__all__ = ["FlowScopeConfig"]

_ENV_PREFIX = "FLOWSCOPE_"


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class FlowScopeConfig:
    """Options for the flowscope transports.

    Every option can be set from the environment with ``FlowScopeConfig.from_env()``:
    ``FLOWSCOPE_CAPTURE_LIMIT_BYTES=65536``, ``FLOWSCOPE_FLOW_NAMES='{"<id>": "Order Status"}'``
    (or ``id=name,id=name``), ``FLOWSCOPE_REDACT_KEYS=email,phone``,
    ``FLOWSCOPE_REDACT_PATTERNS='["[\\\\w.]+@[\\\\w.]+"]'``,
    ``FLOWSCOPE_REDACT_PII=false``, ``FLOWSCOPE_CAPTURE_REQUEST_BODY=false``,
    ``FLOWSCOPE_HINTS=false``, ``FLOWSCOPE_LOG_FAILURES=false``, ``FLOWSCOPE_LEARN_SCHEMAS=false``,
    ``FLOWSCOPE_FOLLOW_EXECUTIONS=true``, ``FLOWSCOPE_MAX_TRACKED_EXECUTIONS=10000``,
    ``FLOWSCOPE_EXECUTION_TTL_S=3600``.
    An empty or blank variable is unset; a value that cannot be read raises ``ValueError`` naming
    the variable.
    """

    #: Error bodies (and request bodies of failed calls) are captured up to this many bytes.
    capture_limit_bytes: int = 65536
    #: Flow id -> readable name, used for the ``flow`` metric label and ``flow.name``.
    flow_names: Mapping[str, str] = field(default_factory=dict)
    #: Extra JSON/form keys, query names and headers to redact (case-insensitive), e.g. ``email``.
    redact_keys: tuple[str, ...] = ()
    #: Extra regular expressions whose matches are redacted anywhere in text.
    redact_patterns: tuple[str, ...] = ()
    #: Redact payment and personal data: Luhn-valid card numbers in any text, and values under
    #: keys naming a PIN, CVV/CVC, card number/PAN, SSN or security answer.
    redact_pii: bool = True
    #: The route table; ``None`` means :data:`flowscope.DEFAULT_ROUTES`.
    routes: tuple[Route, ...] | None = None
    #: Routes added to the table (tried with the same specificity rules).
    extra_routes: tuple[Route, ...] = ()
    #: Flow id -> the flow version's ``inputSchema`` (JSON Schema), for input diagnosis.
    input_schemas: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: Learn input schemas from ``GET /api/v2/flows/{flowId}/versions/...`` responses.
    learn_schemas: bool = True
    #: Attach the (redacted) request body to failed calls as the ``flow.request.body`` event.
    capture_request_body: bool = True
    #: Diagnose launch payloads (``flow.hint`` events).
    hints: bool = True
    #: One WARNING record on the ``flowscope`` logger per failed flow call.
    log_failures: bool = True
    #: Launched executions remembered until their outcome is seen (oldest forgotten first).
    max_tracked_executions: int = 10_000
    #: Seconds a launched execution is remembered.
    execution_ttl_s: float = 3600.0
    #: Poll every execution launched through the client until it ends (a background thread,
    #: or tasks on the client's event loop).
    follow_executions: bool = False
    #: Following gives up on an execution after this many seconds.
    follow_timeout_s: float = 600.0
    #: At most this many follow polls per minute, per process.
    follow_max_polls_per_minute: int = 60
    #: The first wait before polling a launched execution; it doubles up to the maximum.
    follow_initial_interval_s: float = 1.0
    follow_max_interval_s: float = 30.0
    #: Executions waiting to be followed at most; later launches are not followed (counted).
    follow_queue_size: int = 10_000

    def __post_init__(self) -> None:
        if not isinstance(self.capture_limit_bytes, int) or self.capture_limit_bytes < 0:
            raise ValueError(
                "capture_limit_bytes must be a non-negative integer, "
                f"got {self.capture_limit_bytes!r}"
            )
        for name in ("max_tracked_executions", "follow_max_polls_per_minute", "follow_queue_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        for name in (
            "execution_ttl_s",
            "follow_timeout_s",
            "follow_initial_interval_s",
            "follow_max_interval_s",
        ):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
                raise ValueError(f"{name} must be a non-negative number of seconds, got {value!r}")
        object.__setattr__(self, "flow_names", _frozen(self.flow_names))
        object.__setattr__(self, "input_schemas", _frozen(self.input_schemas))
        object.__setattr__(self, "redact_keys", tuple(self.redact_keys))
        object.__setattr__(self, "redact_patterns", tuple(self.redact_patterns))
        object.__setattr__(self, "extra_routes", tuple(self.extra_routes))
        if self.routes is not None:
            object.__setattr__(self, "routes", tuple(self.routes))
        for index, pattern in enumerate(self.redact_patterns):
            problem = regex_problem(pattern) if isinstance(pattern, str) else None
            if problem is not None:
                raise ValueError(
                    f"redact_patterns[{index}] {pattern!r} is not a valid regular expression: "
                    f"{problem}"
                )

    @property
    def route_list(self) -> tuple[Route, ...]:
        """The effective route table."""
        base = DEFAULT_ROUTES if self.routes is None else self.routes
        return (*base, *self.extra_routes)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> FlowScopeConfig:
        """Build a config from ``FLOWSCOPE_*`` variables; keyword arguments win over them.

        A variable that is empty or blank counts as unset (the default applies), so a blank
        line in a compose file or a Kubernetes template never turns a feature off. A value
        that cannot be read raises ``ValueError`` naming the variable, here rather than later.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in _NOT_FROM_ENV:
                continue
            raw = env.get(_ENV_PREFIX + f.name.upper())
            if raw is None or not raw.strip():
                continue
            values[f.name] = _parse_env(f.name, str(f.type), raw)
        values.update(overrides)
        return cls(**values)


# Options that hold Python objects (routes, schemas): set them in code.
_NOT_FROM_ENV = frozenset({"routes", "extra_routes", "input_schemas"})
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parse_env(name: str, annotation: str, raw: str) -> Any:
    """One variable's value, typed by the option it sets; ``raw`` is not blank."""
    var = _ENV_PREFIX + name.upper()
    text = raw.strip()
    if annotation == "bool":
        low = text.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError(f"{var} must be true or false (or 1/0, yes/no, on/off), got {raw!r}")
    if annotation == "int":
        try:
            number = int(text)
        except ValueError:
            raise ValueError(f"{var} must be an integer, got {raw!r}") from None
        if number < 0:
            raise ValueError(f"{var} must be a non-negative integer, got {raw!r}")
        return number
    if annotation == "float":
        try:
            seconds = float(text)
        except ValueError:
            raise ValueError(f"{var} must be a number, got {raw!r}") from None
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"{var} must be a non-negative number, got {raw!r}")
        return seconds
    if name == "flow_names":
        return _flow_names(var, text)
    if name == "redact_keys":
        return tuple(k.strip() for k in text.split(",") if k.strip())
    if name == "redact_patterns":
        return _patterns(var, text)
    raise ValueError(f"{var} cannot be set from the environment")


def _flow_names(var: str, text: str) -> dict[str, str]:
    if text.startswith("{"):
        try:
            names = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{var} is not valid JSON: {exc}") from None
        if not isinstance(names, dict):
            raise ValueError(f"{var} must be a JSON object of flow id to name")
        return {str(k): str(v) for k, v in names.items()}
    out: dict[str, str] = {}
    for pair in (p for p in text.split(",") if p.strip()):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{var} must look like 'id=name,id=name', got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def _patterns(var: str, text: str) -> tuple[str, ...]:
    """A JSON list of regular expressions, or one expression; each must compile."""
    if text.startswith("["):
        try:
            patterns = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{var} is not a valid JSON list: {exc}") from None
        if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
            raise ValueError(f"{var} must be a JSON list of strings (regular expressions)")
    else:
        patterns = [text]
    for pattern in patterns:
        problem = regex_problem(pattern)
        if problem is not None:
            raise ValueError(f"{var}: {pattern!r} is not a valid regular expression: {problem}")
    return tuple(patterns)


def regex_problem(pattern: str) -> str | None:
    """Why ``pattern`` does not compile, or ``None`` when it does."""
    try:
        re.compile(pattern)
    except re.error as exc:
        return str(exc)
    return None

"""The flows the sandbox knows, and the outputs it models for them.

Schemas are plain JSON Schema in the shape a flow version returns (``inputSchema`` /
``outputSchema``, ``"additionalProperties": false``, properties named after the flow variables),
so flows built by hand with ordinary JSON Schema work too (the checks are in ``_inputs``).
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

__all__ = ["SandboxFlow", "default_flows", "make_output"]


@dataclass(frozen=True)
class SandboxFlow:
    """A published flow as the sandbox serves it.

    ``fail_rate`` is the probability that an execution ends ``FAILED`` (a data action failed
    or timed out), ``error_rate`` ``ERROR`` and ``terminate_rate`` ``TERMINATED``; a ``deleted``
    flow answers launches with 410 ``architect.flow.deleted``. An execution launched without one
    of the ``required_inputs`` ends ``FAILED`` (``flow.variable.not.set``). A flow that
    ``ignores_unprefixed_inputs`` accepts input keys without the ``Flow.`` prefix and drops them,
    as the platform does for some flows, instead of refusing them. ``type`` is the platform's
    flow type (``WORKFLOW``, ``INBOUNDCALL``...); only workflows can be launched, the others
    answer 400.
    """

    id: str
    name: str
    version: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    fail_rate: float = 0.0
    deleted: bool = False
    type: str = "WORKFLOW"
    error_rate: float = 0.0
    terminate_rate: float = 0.0
    required_inputs: tuple[str, ...] = ()
    ignores_unprefixed_inputs: bool = False


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
            type=entry.get("type", "WORKFLOW"),
            error_rate=float(entry.get("errorRate", 0.0)),
            terminate_rate=float(entry.get("terminateRate", 0.0)),
            required_inputs=tuple(entry.get("requiredInputs", ())),
            ignores_unprefixed_inputs=bool(entry.get("ignoresUnprefixedInputs", False)),
        )
        for entry in document["flows"]
    ]


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

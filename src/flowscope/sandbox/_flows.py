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

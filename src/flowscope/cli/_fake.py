"""Fake but plausible flow inputs for the demo's traffic, from each flow's input schema."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flowscope.sandbox import SandboxFlow

__all__ = ["FakeInputs", "JsonValue", "wrong_value"]

#: A value as JSON carries it.
JsonValue = None | bool | int | float | str | list[Any] | dict[str, Any]
#: One property of a JSON Schema (``{"type": ["null", "string"], "format": ...}``).
PropertySchema = dict[str, Any]


class FakeInputs:
    """``inputData`` for a flow: every declared input, some left unset as real callers do."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def new_uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def inputs(self, flow: SandboxFlow, *, prefixed: bool = True) -> dict[str, JsonValue]:
        properties: dict[str, PropertySchema] = flow.input_schema.get("properties") or {}
        inputs: dict[str, JsonValue] = {}
        for name, spec in properties.items():
            if self.rng.random() < 0.2:
                continue  # an input left unset keeps the variable's initial value
            key = name if prefixed else name.removeprefix("Flow.")
            inputs[key] = self.value(name, spec)
        if not inputs and properties:
            name = next(iter(properties))
            key = name if prefixed else name.removeprefix("Flow.")
            inputs[key] = self.value(name, properties[name])
        return inputs

    def value(self, name: str, spec: PropertySchema) -> JsonValue:
        types = _types(spec)
        rng = self.rng
        if "boolean" in types:
            return rng.random() < 0.3
        if "integer" in types:
            return rng.randint(1, 99_999) if "order" in name.lower() else rng.randint(1, 9)
        if "number" in types:
            return round(rng.uniform(5, 500), 2)
        if "array" in types:
            return rng.sample(["email", "sms", "voice"], k=rng.randint(1, 2))
        if "object" in types:
            return {"campaign": "spring", "locale": rng.choice(["en-US", "fr-FR", "de-DE"])}
        if spec.get("format") == "date-time":
            moment = datetime(2025, 3, 14, 9, tzinfo=timezone.utc) + timedelta(
                minutes=rng.randint(0, 60 * 24 * 30)
            )
            return moment.strftime("%Y-%m-%dT%H:%M:00.000Z")
        lowered = name.lower()
        if "customer" in lowered:
            return f"C-{rng.randint(10_000, 99_999)}"
        if "phone" in lowered:
            return f"+1555{rng.randint(1_000_000, 9_999_999)}"
        if "lastfour" in lowered:
            return f"{rng.randint(0, 9999):04d}"
        if "birth" in lowered:
            return f"19{rng.randint(50, 99)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"
        if "currency" in lowered:
            return rng.choice(["USD", "EUR", "GBP"])
        if "conversation" in lowered:
            return str(self.new_uuid())
        if "queue" in lowered:
            return rng.choice(["Support", "Billing", "Sales"])
        return rng.choice(["standard", "csat-short", "nps"])


def _types(spec: PropertySchema) -> list[str]:
    declared = spec.get("type")
    return [declared] if isinstance(declared, str) else list(declared or [])


def wrong_value(spec: PropertySchema) -> JsonValue:
    """A value a person might plausibly send that the flow's type refuses, or ``None``."""
    types = _types(spec)
    if "boolean" in types:
        return "yes"
    if "integer" in types:
        return 2.5  # a quantity sent as a decimal
    if "number" in types:
        return "12,50"
    if "array" in types:
        return "email,sms"
    return None

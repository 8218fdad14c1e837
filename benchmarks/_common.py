"""What every scenario shares: payloads, tracer providers and the interleaved-rounds timer."""

from __future__ import annotations

import gc
import json
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

# -- payloads ------------------------------------------------------------------------------------

API = "https://api.mypurecloud.com"
LAUNCH_PATH = "/api/v2/flows/executions"
FLOW_ID = "8c5a1e3f-6b8d-4d2a-9e0f-1a2b3c4d5e6f"
EXECUTION_ID = "fe9a3b4c-72d1-4a55-8e6f-0b1c2d3e4f50"
CORRELATION_ID = "4d3f2a1b-0c9e-4b8a-a7d6-e5f4c3b2a190"
# A bearer token shaped like the real one (a JWT), so redaction has its real work to do.
TOKEN = (
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJvcmdJZCI6IjEyMyIsImV4cCI6MTcwMDAwMDAwMCwiY2xpZW50X2lkIjoic2FuZGJveCJ9."
    "c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmUtc2lnbmF0dXJl"
)
REQUEST_HEADERS = {
    "Authorization": f"Bearer {TOKEN}",
    "Content-Type": "application/json",
    "Accept": "application/json",
}

LAUNCH_BODY = {
    "flowId": FLOW_ID,
    "flowVersion": "12.0",
    "name": "callback for order 88123",
    "inputData": {"Flow.customerId": "C-88123", "Flow.orderNumber": "88123", "Flow.vip": True},
}
# The classic mistakes: inputs under `data` and keys without the `Flow.` prefix.
BAD_LAUNCH_BODY = {
    "flowId": FLOW_ID,
    "data": {"customerId": "C-88123"},
    "inputData": {"customerId": "C-88123", "orderNumber": 88123, "Flow.vip": "yes"},
}

LAUNCH_REPLY = {
    "id": EXECUTION_ID,
    "name": "callback for order 88123",
    "flowVersion": {
        "id": "12.0",
        "name": "12.0",
        "selfUri": f"/api/v2/flows/{FLOW_ID}/versions/12.0",
    },
    "selfUri": f"/api/v2/flows/executions/{EXECUTION_ID}",
}


def genesys_error_body(target: int = 2048, context_id: str = CORRELATION_ID) -> bytes:
    """A Genesys 400 the way the platform writes them, grown with ``details`` to ``target``."""
    detail_fields = [
        "inputData.customerId",
        "inputData.orderNumber",
        "inputData.Flow.vip",
        "data",
        "inputData.Flow.callbackNumber",
        "inputData.Flow.language",
        "inputData.Flow.queueId",
        "inputData.Flow.priority",
        "inputData.Flow.notes",
        "inputData.Flow.segment",
    ]
    doc: dict[str, object] = {
        "message": "The request could not be understood by the server due to malformed "
        "syntax: inputData contains values that do not match the flow's input schema.",
        "code": "bad.request",
        "status": 400,
        "messageWithParams": "Invalid value for {field}: expected {expected}",
        "messageParams": {"field": "inputData.customerId", "expected": "archString"},
        "contextId": context_id,
        "details": [],
        "errors": [
            {
                "message": "Flow input 'customerId' is not declared; did you mean "
                "'Flow.customerId'?",
                "code": "invalid.value",
                "status": 400,
                "details": [{"errorCode": "invalid.value", "fieldName": "inputData.customerId"}],
            }
        ],
    }
    details: list[dict[str, str]] = doc["details"]  # type: ignore[assignment]
    for name in detail_fields:
        details.append(
            {
                "errorCode": "invalid.value",
                "fieldName": name,
                "entityId": FLOW_ID,
                "entityName": "Order callback",
            }
        )
        if len(json.dumps(doc)) >= target:
            break
    return json.dumps(doc).encode()


ERROR_HEADERS = {
    "Content-Type": "application/json",
    "ININ-Correlation-Id": CORRELATION_ID,
    "inin-ratelimit-count": "12",
    "inin-ratelimit-allowed": "3000",
    "inin-ratelimit-reset": "41",
}

# -- tracing -------------------------------------------------------------------------------------


class CountingProcessor(SpanProcessor):
    """Counts ended spans and keeps none, so memory stays flat however many calls run.

    Every traced contender gets one of these: the exporter's cost is the same for all, and is
    not what is being compared.
    """

    def __init__(self) -> None:
        self.ended = 0
        #: While set (during warm-up only), the last span and every attribute name are kept.
        self.keep_attributes = False
        self.last: ReadableSpan | None = None
        self.attribute_names: set[str] = set()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        self.ended += 1
        if self.keep_attributes:
            self.last = span
            self.attribute_names.update(span.attributes or ())

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def traced_provider(processor: SpanProcessor | None = None) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(processor or CountingProcessor())
    return provider


def sampled_out_provider() -> TracerProvider:
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(CountingProcessor())
    return provider


# -- timing --------------------------------------------------------------------------------------


@dataclass
class Timings:
    """Per-call seconds, one entry per round, for one contender."""

    name: str
    per_call: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.per_call)


def interleaved(
    runners: dict[str, Callable[[int], float]], *, rounds: int, batch: int
) -> dict[str, Timings]:
    """Time every contender in each round, rotating who goes first.

    A runner does ``batch`` calls and returns the seconds they took. The machine is shared, so
    contenders alternate in short rounds: a noisy minute hits all of them, and medians drop the
    rounds it spoiled. ``gc.collect()`` before each batch keeps one contender's garbage from being
    collected on another's clock.
    """
    names = list(runners)
    out = {name: Timings(name) for name in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            gc.collect()
            seconds = runners[name](batch)
            out[name].per_call.append(seconds / batch)
    return out


def paired_ratio(timings: dict[str, Timings], num: str, den: str) -> float:
    """Median of the per-round ratios: each round's pair ran back to back, under the same load."""
    a, b = timings[num].per_call, timings[den].per_call
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def clock() -> float:
    return time.perf_counter()


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


ROOT = Path(__file__).resolve().parent.parent


def child_env() -> dict[str, str]:
    """The environment for a child ``python -m benchmarks....``, run from the repository root."""
    path = [str(ROOT), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p)}

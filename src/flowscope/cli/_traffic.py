"""The demo's traffic: a paced, seeded mix of good launches and the mistakes people make."""

from __future__ import annotations

import json
import math
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flowscope.oauth import read_token, token_request

from ._common import LastRecord
from ._fake import FakeInputs, JsonValue, wrong_value
from ._progress import make_progress

if TYPE_CHECKING:
    import httpx

    from flowscope import CallRecord
    from flowscope.sandbox import Sandbox

    from ._report import CallTally

__all__ = ["BURST_EVERY", "RATE_LIMIT_PER_MINUTE", "TITLES", "Example", "Stats", "Traffic"]

LAUNCH = "/api/v2/flows/executions"
#: Per token: low enough that the batch burst trips it, while the steady traffic, spread over
#: several app instances with a token each, stays under it.
RATE_LIMIT_PER_MINUTE = 100
#: A flow id no org has: launching it answers 404.
UNKNOWN_FLOW_ID = "0bad0f10-0000-4000-8000-00000000f404"
#: Seconds between batch bursts in ``--serve`` mode (the sandbox's rate window is a minute).
BURST_EVERY = 61.0


@dataclass
class Example:
    """The first failed call of one kind, as the library reported it."""

    title: str
    record: CallRecord


@dataclass
class Stats:
    """What the driver did, beyond what the metrics say."""

    launches: int = 0
    polls: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    version_reads: int = 0
    tokens: int = 0
    bursts: int = 0
    burst_launches: int = 0
    instances: int = 0


# One deck of launches, shuffled and dealt again and again: every kind shows up in any run
# longer than a few seconds, in a realistic proportion.
_DECK: tuple[tuple[str, int], ...] = (
    ("ok", 31),
    ("data_envelope", 3),
    ("execution_context", 2),
    ("snake_case_flow_id", 2),
    ("text_plain", 2),
    ("missing_prefix", 4),
    ("wrong_type", 3),
    ("unknown_flow", 2),
    ("deleted_flow", 1),
)

TITLES = {
    "data_envelope": "inputs in a 'data' envelope",
    "execution_context": "an 'execution_context' root key",
    "snake_case_flow_id": "snake_case 'flow_id'",
    "text_plain": "Content-Type text/plain",
    "missing_prefix": "input keys without 'Flow.'",
    "wrong_type": "an input of the wrong type",
    "unknown_flow": "a flow id that does not exist",
    "deleted_flow": "a deleted flow",
    "burst": "a batch burst over the rate limit",
}


class Traffic:
    """A single-threaded, paced driver: one call per tick, executions polled when due."""

    def __init__(
        self,
        client: httpx.Client,
        sandbox: Sandbox,
        *,
        rate: float,
        duration: float | None,
        seed: int,
        tally: CallTally,
        last: LastRecord,
    ) -> None:
        self.client = client
        self.sandbox = sandbox
        flows = sandbox.flows
        self.active = [flow for flow in flows if not flow.deleted]
        self.deleted = [flow for flow in flows if flow.deleted]
        self.rate = rate
        self.duration = duration
        self.rng = random.Random(seed)
        self.fake = FakeInputs(self.rng)
        self.tally = tally
        self.last = last
        self.examples: dict[str, Example] = {}
        self.stats = Stats()
        self.polls: list[tuple[float, str, int]] = []  # (due, execution id, attempts)
        self.deck: list[str] = []
        self.tokens: list[str] = []
        self.burst_token = ""
        self.next_burst = 0.0
        self.actions: dict[str, Callable[[], None]] = {
            "ok": self._ok,
            "data_envelope": self._data_envelope,
            "execution_context": self._execution_context,
            "snake_case_flow_id": self._snake_case_flow_id,
            "text_plain": self._text_plain,
            "missing_prefix": self._missing_prefix,
            "wrong_type": self._wrong_type,
            "unknown_flow": self._unknown_flow,
            "deleted_flow": self._deleted_flow,
        }

    # -- the loop -------------------------------------------------------------------------------

    def run(self) -> bool:
        """Drive traffic until the duration ends (or Ctrl-C); ``True`` when interrupted."""
        import httpx

        progress = make_progress(sys.stdout, self.duration)
        start = time.monotonic()
        try:
            self._setup()
            self.next_burst = start + (self.duration * 0.45 if self.duration else 8.0)
            next_call = start
            while True:
                now = time.monotonic()
                elapsed = now - start
                if self.duration is not None and elapsed >= self.duration:
                    break
                if now >= self.next_burst:
                    self._burst()
                    self.next_burst = now + BURST_EVERY
                    next_call = time.monotonic()
                    continue
                if now < next_call:
                    time.sleep(min(next_call - now, 0.05))
                    progress.update(elapsed, self.stats, self.tally.failed)
                    continue
                # Never race to catch up after a slow call: the rate is a ceiling.
                next_call = max(next_call + 1.0 / self.rate, now - 0.25)
                try:
                    self._tick(now)
                except httpx.HTTPError as exc:
                    progress.note(f"call failed: {type(exc).__name__}: {exc}")
                progress.update(elapsed, self.stats, self.tally.failed)
        except KeyboardInterrupt:
            return True
        finally:
            progress.close(time.monotonic() - start, self.stats, self.tally.failed)
        return False

    def _setup(self) -> None:
        # Several app instances share the load, each with its own token (the platform limits
        # each token); a batch job has its own.
        instances = max(2, math.ceil(self.rate * 60 / (RATE_LIMIT_PER_MINUTE * 0.75)))
        self.tokens = [self._token() for _ in range(instances)]
        self.stats.instances = instances
        self.burst_token = self._token()
        # Reading each flow's published version teaches flowscope its input schema, so the
        # launch diagnosis can check input names and types.
        for flow in self.active:
            self.client.get(
                f"/api/v2/flows/{flow.id}/versions/{flow.version}", headers=self._auth()
            )
            self.stats.version_reads += 1

    def _tick(self, now: float) -> None:
        if self.polls and self.polls[0][0] <= now:
            self._poll()
            return
        if not self.deck:
            self.deck = [kind for kind, count in _DECK for _ in range(count)]
            self.rng.shuffle(self.deck)
        kind = self.deck.pop()
        self.last.take()
        self.actions[kind]()
        self.stats.launches += 1
        record = self.last.take()
        failed = record is not None and record.outcome != "success"
        if kind != "ok" and kind not in self.examples and record is not None and failed:
            self.examples[kind] = Example(TITLES[kind], record)

    # -- calls ----------------------------------------------------------------------------------

    def _token(self) -> str:
        sandbox = self.sandbox
        request = token_request(sandbox.url, sandbox.client_id, sandbox.client_secret)
        token = read_token(self.client.send(request))
        self.stats.tokens += 1
        return token.access_token

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.rng.choice(self.tokens)}"}

    def _launch(self, body: dict[str, JsonValue]) -> httpx.Response:
        return self.client.post(LAUNCH, json=body, headers=self._auth())

    def _ok(self) -> None:
        flow = self.rng.choice(self.active)
        body: dict[str, JsonValue] = {"flowId": flow.id, "inputData": self.fake.inputs(flow)}
        if self.rng.random() < 0.3:
            body["flowVersion"] = flow.version
        response = self._launch(body)
        if response.status_code == 200 and self.rng.random() < 0.5:
            execution_id = str(response.json()["id"])
            self.polls.append((time.monotonic() + 0.35, execution_id, 0))
            self.polls.sort()

    def _poll(self) -> None:
        _, execution_id, attempts = self.polls.pop(0)
        response = self.client.get(f"{LAUNCH}/{execution_id}", headers=self._auth())
        self.stats.polls += 1
        if response.status_code != 200:
            return
        status = str(response.json().get("status"))
        if status == "RUNNING" and attempts < 5:
            self.polls.append((time.monotonic() + 0.3, execution_id, attempts + 1))
            self.polls.sort()
            return
        self.stats.statuses[status] = self.stats.statuses.get(status, 0) + 1

    def _data_envelope(self) -> None:
        flow = self.rng.choice(self.active)
        self._launch({"flowId": flow.id, "data": self.fake.inputs(flow, prefixed=False)})

    def _execution_context(self) -> None:
        flow = self.rng.choice(self.active)
        context = {"source": "crm-webhook", "requestId": str(self.fake.new_uuid())}
        self._launch(
            {"flowId": flow.id, "inputData": self.fake.inputs(flow), "execution_context": context}
        )

    def _snake_case_flow_id(self) -> None:
        flow = self.rng.choice(self.active)
        self._launch({"flow_id": flow.id, "inputData": self.fake.inputs(flow)})

    def _text_plain(self) -> None:
        flow = self.rng.choice(self.active)
        body = json.dumps({"flowId": flow.id, "inputData": self.fake.inputs(flow)})
        headers = {**self._auth(), "Content-Type": "text/plain"}
        self.client.post(LAUNCH, content=body.encode(), headers=headers)

    def _missing_prefix(self) -> None:
        flow = self.rng.choice(self.active)
        self._launch({"flowId": flow.id, "inputData": self.fake.inputs(flow, prefixed=False)})

    def _wrong_type(self) -> None:
        choices = [
            (flow, name, spec)
            for flow in self.active
            for name, spec in (flow.input_schema.get("properties") or {}).items()
            if wrong_value(spec) is not None
        ]
        if not choices:
            self._ok()
            return
        flow, name, spec = self.rng.choice(choices)
        inputs = self.fake.inputs(flow)
        inputs[name] = wrong_value(spec)
        self._launch({"flowId": flow.id, "inputData": inputs})

    def _unknown_flow(self) -> None:
        flow = self.rng.choice(self.active)
        self._launch({"flowId": UNKNOWN_FLOW_ID, "inputData": self.fake.inputs(flow)})

    def _deleted_flow(self) -> None:
        if not self.deleted:
            self._unknown_flow()
            return
        flow = self.rng.choice(self.deleted)
        self._launch({"flowId": flow.id, "inputData": self.fake.inputs(flow)})

    def _burst(self) -> None:
        """A batch job launching as fast as it can on one token, until the platform says 429."""
        headers = {"Authorization": f"Bearer {self.burst_token}"}
        self.stats.bursts += 1
        throttled: CallRecord | None = None
        for _ in range(RATE_LIMIT_PER_MINUTE + 12):
            flow = self.rng.choice(self.active)
            body = {"flowId": flow.id, "inputData": self.fake.inputs(flow)}
            self.last.take()
            self.client.post(LAUNCH, json=body, headers=headers)
            self.stats.launches += 1
            self.stats.burst_launches += 1
            record = self.last.take()
            if record is not None and record.status_code == 429:
                throttled = record
        if "burst" not in self.examples and throttled is not None:
            self.examples["burst"] = Example(TITLES["burst"], throttled)

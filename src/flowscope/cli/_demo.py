"""``flowscope demo``: the sandbox, realistic traffic through an instrumented client, a report.

Everything runs on loopback: the sandbox flow API, the client, and ``/metrics``. The traffic
is a seeded mix of good launches and the mistakes people really make, so the spans, metrics
and report show what flowscope is for.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from ._common import (
    CliError,
    FailureLog,
    otlp_target,
    reachable,
    shown_url,
    tracer_provider,
)
from ._progress import make_progress
from ._report import Report, Snapshot, render_report

if TYPE_CHECKING:
    import httpx

    from flowscope.sandbox import SandboxFlow

__all__ = ["add_parser", "run"]

LAUNCH = "/api/v2/flows/executions"
#: Per token: low enough that the batch burst trips it, while the steady traffic, spread over
#: several app instances with a token each, stays under it.
RATE_LIMIT_PER_MINUTE = 100
#: A flow id no org has: launching it answers 404.
UNKNOWN_FLOW_ID = "0bad0f10-0000-4000-8000-00000000f404"
#: Seconds between batch bursts in ``--serve`` mode (the sandbox's rate window is a minute).
BURST_EVERY = 61.0


def add_parser(commands: Any) -> None:
    """Register ``demo`` on the top-level subcommand set."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "demo",
        help="drive realistic flow traffic through flowscope and report (no setup needed)",
        description=(
            "Start the sandbox flow API on loopback, drive a seeded mix of good launches and "
            "common mistakes through an instrumented httpx client, serve /metrics, and end "
            "with a per-flow report."
        ),
    )
    parser.add_argument(
        "--duration", type=float, default=20.0, metavar="SECONDS", help="default: 20"
    )
    parser.add_argument(
        "--rate", type=float, default=12.0, metavar="CALLS_PER_SECOND", help="default: 12"
    )
    parser.add_argument("--seed", type=int, default=7, help="default: 7")
    parser.add_argument(
        "--metrics-port", type=int, default=9464, metavar="PORT", help="0 picks a free port"
    )
    parser.add_argument(
        "--metrics-addr",
        default="127.0.0.1",
        metavar="ADDR",
        help="address /metrics listens on (default 127.0.0.1; 0.0.0.0 for a containerised "
        "Prometheus on Linux)",
    )
    parser.add_argument(
        "--serve",
        action="store_true",
        help="keep the traffic and /metrics running until Ctrl-C (for Grafana)",
    )
    parser.add_argument(
        "--otlp",
        metavar="URL",
        help="export traces over OTLP/HTTP, e.g. http://localhost:4318 "
        "(default: OTEL_EXPORTER_OTLP_ENDPOINT)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not args.serve and not 0 < args.duration <= 3600:
        raise CliError(
            f"--duration must be above 0 and at most 3600 seconds, got {args.duration:g}"
        )
    if not 0 < args.rate <= 200:
        raise CliError(
            f"--rate must be above 0 and at most 200 calls per second, got {args.rate:g}"
        )
    if not 0 <= args.metrics_port <= 65535:
        raise CliError("--metrics-port must be between 0 and 65535")

    import httpx

    from flowscope import FlowScopeConfig, instrument, serve_metrics
    from flowscope.sandbox import Sandbox

    provider = tracer_provider("flowscope-demo", args.otlp)
    try:
        server, _ = serve_metrics(args.metrics_port, args.metrics_addr)
    except OSError as exc:
        provider.shutdown()
        raise CliError(
            f"cannot serve metrics on {args.metrics_addr}:{args.metrics_port}: "
            f"{exc.strerror or exc} "
            "(use --metrics-port 0 for a free port)",
            1,
        ) from None
    shown_host = "127.0.0.1" if args.metrics_addr in ("0.0.0.0", "::", "") else args.metrics_addr
    metrics_url = f"http://{shown_host}:{server.server_port}/metrics"
    out = sys.stdout
    snapshot = Snapshot.take()
    try:
        with Sandbox(rate_limit_per_minute=RATE_LIMIT_PER_MINUTE, seed=args.seed) as sandbox:
            flows = sandbox.flows
            config = FlowScopeConfig(flow_names={flow.id: flow.name for flow in flows})
            target = otlp_target(args.otlp)
            traces = shown_url(target) if target else None
            traces_line = "recorded, not exported (use --otlp URL)"
            if traces:
                traces_line = f"OTLP/HTTP to {traces}"
                if not reachable(target or ""):
                    traces_line += "  (nothing answers there yet: spans will be dropped)"
            out.write(
                "\n".join(
                    [
                        "flowscope demo",
                        f"  sandbox flow API  {sandbox.url}",
                        f"  metrics           {metrics_url}",
                        f"  traces            {traces_line}",
                        "  traffic           "
                        + (
                            f"{args.rate:g} calls/s until Ctrl-C"
                            if args.serve
                            else f"{args.rate:g} calls/s for {args.duration:g} s"
                        )
                        + f", seed {args.seed}",
                        "",
                    ]
                )
                + "\n"
            )
            out.flush()
            with (
                FailureLog() as failures,
                httpx.Client(base_url=sandbox.url, timeout=10) as plain,
            ):
                client = instrument(plain, config=config, tracer_provider=provider)
                traffic = Traffic(client, sandbox, flows, args, failures)
                interrupted = traffic.run()
            report = Report.build(snapshot, traffic.examples, traffic.stats, flows)
        render_report(report, out, interrupted=interrupted and not args.serve)
        out.write(f"\nmetrics were served at {metrics_url}")
        out.write(f"; traces were sent to {traces}\n" if traces else "\n")
        out.flush()
    finally:
        server.shutdown()
        server.server_close()
        provider.shutdown()
    return 0


# -- traffic ------------------------------------------------------------------------------------


@dataclass
class Example:
    """The first failed call of one kind, as the library reported it."""

    title: str
    report: dict[str, Any]


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
        sandbox: Any,
        flows: list[SandboxFlow],
        args: argparse.Namespace,
        failures: FailureLog,
    ) -> None:
        self.client = client
        self.login_url = f"{sandbox.url}/oauth/token"
        self.client_id = sandbox.client_id
        self.client_secret = sandbox.client_secret
        self.active = [flow for flow in flows if not flow.deleted]
        self.deleted = [flow for flow in flows if flow.deleted]
        self.rate = float(args.rate)
        self.duration = None if args.serve else float(args.duration)
        self.rng = random.Random(args.seed)
        self.failures = failures
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
                    progress.update(elapsed, self.stats, self.failures.count)
                    continue
                # Never race to catch up after a slow call: the rate is a ceiling.
                next_call = max(next_call + 1.0 / self.rate, now - 0.25)
                try:
                    self._tick(now)
                except httpx.HTTPError as exc:
                    progress.note(f"call failed: {type(exc).__name__}: {exc}")
                progress.update(elapsed, self.stats, self.failures.count)
        except KeyboardInterrupt:
            return True
        finally:
            progress.close(time.monotonic() - start, self.stats, self.failures.count)
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
        seen = self.failures.count
        self.actions[kind]()
        self.stats.launches += 1
        if kind != "ok" and kind not in self.examples and self.failures.count > seen:
            self.examples[kind] = Example(TITLES[kind], self.failures.reports[-1])

    # -- calls ----------------------------------------------------------------------------------

    def _token(self) -> str:
        response = self.client.post(
            self.login_url,
            data={"grant_type": "client_credentials"},
            auth=(self.client_id, self.client_secret),
        )
        response.raise_for_status()
        self.stats.tokens += 1
        return str(response.json()["access_token"])

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.rng.choice(self.tokens)}"}

    def _launch(self, body: dict[str, Any]) -> httpx.Response:
        return self.client.post(LAUNCH, json=body, headers=self._auth())

    def _ok(self) -> None:
        flow = self.rng.choice(self.active)
        body: dict[str, Any] = {"flowId": flow.id, "inputData": self._inputs(flow)}
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
        self._launch({"flowId": flow.id, "data": self._inputs(flow, prefixed=False)})

    def _execution_context(self) -> None:
        flow = self.rng.choice(self.active)
        context = {"source": "crm-webhook", "requestId": str(self._uuid())}
        self._launch(
            {"flowId": flow.id, "inputData": self._inputs(flow), "execution_context": context}
        )

    def _snake_case_flow_id(self) -> None:
        flow = self.rng.choice(self.active)
        self._launch({"flow_id": flow.id, "inputData": self._inputs(flow)})

    def _text_plain(self) -> None:
        flow = self.rng.choice(self.active)
        body = json.dumps({"flowId": flow.id, "inputData": self._inputs(flow)})
        headers = {**self._auth(), "Content-Type": "text/plain"}
        self.client.post(LAUNCH, content=body.encode(), headers=headers)

    def _missing_prefix(self) -> None:
        flow = self.rng.choice(self.active)
        self._launch({"flowId": flow.id, "inputData": self._inputs(flow, prefixed=False)})

    def _wrong_type(self) -> None:
        choices = [
            (flow, name, spec)
            for flow in self.active
            for name, spec in (flow.input_schema.get("properties") or {}).items()
            if _wrong_value(spec) is not None
        ]
        if not choices:
            self._ok()
            return
        flow, name, spec = self.rng.choice(choices)
        inputs = self._inputs(flow)
        inputs[name] = _wrong_value(spec)
        self._launch({"flowId": flow.id, "inputData": inputs})

    def _unknown_flow(self) -> None:
        flow = self.rng.choice(self.active)
        self._launch({"flowId": UNKNOWN_FLOW_ID, "inputData": self._inputs(flow)})

    def _deleted_flow(self) -> None:
        if not self.deleted:
            self._unknown_flow()
            return
        flow = self.rng.choice(self.deleted)
        self._launch({"flowId": flow.id, "inputData": self._inputs(flow)})

    def _burst(self) -> None:
        """A batch job launching as fast as it can on one token, until the platform says 429."""
        headers = {"Authorization": f"Bearer {self.burst_token}"}
        seen = self.failures.count
        self.stats.bursts += 1
        for _ in range(RATE_LIMIT_PER_MINUTE + 12):
            flow = self.rng.choice(self.active)
            body = {"flowId": flow.id, "inputData": self._inputs(flow)}
            self.client.post(LAUNCH, json=body, headers=headers)
            self.stats.launches += 1
            self.stats.burst_launches += 1
        if "burst" not in self.examples and self.failures.count > seen:
            throttled = [r for r in self.failures.reports if r.get("status_code") == 429]
            if throttled:
                self.examples["burst"] = Example(TITLES["burst"], throttled[-1])

    # -- payloads -------------------------------------------------------------------------------

    def _uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def _inputs(self, flow: SandboxFlow, *, prefixed: bool = True) -> dict[str, Any]:
        properties: dict[str, Any] = flow.input_schema.get("properties") or {}
        inputs: dict[str, Any] = {}
        for name, spec in properties.items():
            if self.rng.random() < 0.2:
                continue  # an input left unset keeps the variable's initial value
            key = name if prefixed else name.removeprefix("Flow.")
            inputs[key] = self._value(name, spec)
        if not inputs and properties:
            name = next(iter(properties))
            key = name if prefixed else name.removeprefix("Flow.")
            inputs[key] = self._value(name, properties[name])
        return inputs

    def _value(self, name: str, spec: dict[str, Any]) -> Any:
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
            return str(self._uuid())
        if "queue" in lowered:
            return rng.choice(["Support", "Billing", "Sales"])
        return rng.choice(["standard", "csat-short", "nps"])


def _types(spec: dict[str, Any]) -> list[str]:
    declared = spec.get("type")
    return [declared] if isinstance(declared, str) else list(declared or [])


def _wrong_value(spec: dict[str, Any]) -> Any:
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

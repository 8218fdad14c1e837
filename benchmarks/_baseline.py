"""Scenario 9: the error path of this tree against an earlier revision, side by side.

The earlier revision's ``src/flowscope`` is taken out of git and imported as a second package
(``flowscope_baseline``: its modules import each other relatively, so the two copies share
nothing but the libraries below them). Both run in this process, in the same interleaved rounds
over ``httpx.MockTransport``, so their ratio is not spoiled by whatever else the machine does.

Two payloads: the error path of scenario 2 (a Bearer JWT, the classic launch mistakes), and the
same call carrying payment data (a PIN, a CVV, a card number in free text) that the server
quotes back in its error, which is the work the echo rule and ``redact_pii`` add.
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import json
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
from opentelemetry.instrumentation.httpx import (
    AsyncOpenTelemetryTransport,
    SyncOpenTelemetryTransport,
)
from prometheus_client import CollectorRegistry

import flowscope

from ._common import (
    BAD_LAUNCH_BODY,
    ERROR_HEADERS,
    ROOT,
    CountingProcessor,
    Timings,
    genesys_error_body,
    interleaved,
    paired_ratio,
    traced_provider,
)
from ._percall import Contender, _async_runner, _client, _sync_runner
from ._report import Section, Table, Target, ratio, us

BASELINE_PACKAGE = "flowscope_baseline"
# CPU time of this process: the contenders are single-threaded, and on a shared machine the
# wall clock also counts whoever else was scheduled meanwhile.
clock = time.process_time

# The launch of scenario 2 with payment data among its inputs, and a server that quotes them.
PAYMENT_LAUNCH_BODY = {
    **BAD_LAUNCH_BODY,
    "inputData": {
        **BAD_LAUNCH_BODY["inputData"],  # type: ignore[dict-item]
        "Flow.pin": "4921",
        "Flow.cvv": "123",
        "Flow.notes": "please charge 4111 1111 1111 1111 today",
    },
}


def _payment_error_body(context_id: str) -> bytes:
    doc = json.loads(genesys_error_body(context_id=context_id))
    doc["message"] = "Flow.pin: expected number, got string '4921'"
    doc["messageParams"] = {"field": "Flow.cvv", "value": "123"}
    doc["details"].append(
        {"errorCode": "invalid.value", "fieldName": "inputData.Flow.cvv", "entityName": "123"}
    )
    doc["errors"][0]["message"] = "card 4111 1111 1111 1111 declined"
    return json.dumps(doc).encode()


def _bodies(make: Callable[[str], bytes]) -> Callable[[httpx.Request], httpx.Response]:
    # Distinct bodies (their own contextId), so no cache of seen strings flatters anyone.
    replies = [
        (body, {**ERROR_HEADERS, "ININ-Correlation-Id": cid, "Content-Length": str(len(body))})
        for cid in (str(uuid.UUID(int=i + 1)) for i in range(1024))
        for body in [make(cid)]
    ]
    next_reply = itertools.cycle(replies).__next__

    def handler(request: httpx.Request) -> httpx.Response:
        body, headers = next_reply()
        return httpx.Response(400, stream=httpx.ByteStream(body), headers=headers)

    return handler


@contextmanager
def baseline_package(revision: str) -> Iterator[ModuleType]:
    """``src/flowscope`` at ``revision``, imported as :data:`BASELINE_PACKAGE`."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", revision, "src/flowscope"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    with tempfile.TemporaryDirectory(prefix="flowscope-baseline-") as tmp:
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        package = Path(tmp) / "src" / "flowscope"
        spec = importlib.util.spec_from_file_location(
            BASELINE_PACKAGE, package / "__init__.py", submodule_search_locations=[str(package)]
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[BASELINE_PACKAGE] = module
        try:
            spec.loader.exec_module(module)
            yield module
        finally:
            for name in [n for n in sys.modules if n.partition(".")[0] == BASELINE_PACKAGE]:
                del sys.modules[name]


@dataclass
class _Contender(Contender):
    #: The flowscope package this contender runs (``None``: the OpenTelemetry transport alone).
    package: Any = None


def _contenders(
    baseline: ModuleType,
    revision: str,
    handler: Callable[[httpx.Request], httpx.Response],
    *,
    is_async: bool,
) -> list[_Contender]:
    out: list[_Contender] = []
    for name, package, config in (
        ("OTel httpx transport", None, None),
        (f"flowscope at {revision}", baseline, None),
        ("flowscope, this tree", flowscope, None),
        ("flowscope, this tree, redact_pii=False", flowscope, {"redact_pii": False}),
    ):
        processor = CountingProcessor()
        provider = traced_provider(processor)
        mock = httpx.MockTransport(handler)
        transport: Any
        if package is None:
            cls: Any = AsyncOpenTelemetryTransport if is_async else SyncOpenTelemetryTransport
            transport = cls(mock, tracer_provider=provider)
        else:
            fcls: Any = package.AsyncFlowScopeTransport if is_async else package.FlowScopeTransport
            metrics = package.FlowMetrics(CollectorRegistry())
            options: Any = {"config": package.FlowScopeConfig(**config)} if config else {}
            transport = fcls(mock, tracer_provider=provider, metrics=metrics, **options)
        out.append(_Contender(name, _client(transport, is_async), processor, package=package))
    return out


def _runner(c: _Contender, body: bytes, loop: asyncio.Runner | None) -> Callable[[int], float]:
    if loop is None:
        return _sync_runner(c, body, 400, clock=clock)
    return _async_runner(c, body, 400, loop, clock=clock)


def _check(contenders: list[_Contender], payment: bool) -> list[str]:
    """Each flowscope copy did its job on the last warm-up call; what each showed of the PIN."""
    shown = []
    for c in contenders:
        proc = c.processor
        assert proc is not None and proc.ended > 0, c.name
        if c.package is None:
            continue
        assert proc.last is not None
        events = {e.name: dict(e.attributes or {}) for e in proc.last.events}
        assert {"flow.error.body", "flow.request.body", "flow.hint"} <= set(events), c.name
        error_body = str(events["flow.error.body"]["body"])
        if payment:
            verb = "quotes" if "4921" in error_body else "does not quote"
            shown.append(f"{c.name}: `flow.error.body` {verb} the PIN")
    return shown


def _measure(
    baseline: ModuleType, revision: str, payment: bool, *, is_async: bool, rounds: int, batch: int
) -> tuple[dict[str, Timings], list[str]]:
    if payment:
        handler, body = _bodies(_payment_error_body), json.dumps(PAYMENT_LAUNCH_BODY).encode()
    else:
        handler = _bodies(lambda cid: genesys_error_body(context_id=cid))
        body = json.dumps(BAD_LAUNCH_BODY).encode()
    contenders = _contenders(baseline, revision, handler, is_async=is_async)
    loop = asyncio.Runner() if is_async else None
    try:
        runners = {c.name: _runner(c, body, loop) for c in contenders}
        for c in contenders:
            assert c.processor is not None
            c.processor.keep_attributes = True
            runners[c.name](max(batch // 4, 5))
            c.processor.keep_attributes = False
        shown = _check(contenders, payment)
        return interleaved(runners, rounds=rounds, batch=batch), shown
    finally:
        for c in contenders:
            if isinstance(c.client, httpx.AsyncClient):
                assert loop is not None
                loop.run(c.client.aclose())
            else:
                c.client.close()
        if loop is not None:
            loop.close()


def against_revision(*, revision: str, rounds: int, batch: int) -> Section:
    section = Section(
        f"9. Error path: this tree against {revision}, side by side",
        f"The error path of scenario 2 run by this tree's flowscope (defaults: echo rule and "
        f"`redact_pii` on) and by `src/flowscope` at `{revision}` (imported from git as a second "
        f"package), with the OpenTelemetry transport alone as the reference, in the same "
        f"interleaved rounds ({batch} calls per round, {rounds} rounds), timed in CPU time of the "
        "process (single-threaded contenders; the wall clock of this shared machine also counts "
        "other people's work). Payloads: scenario 2's, and the same launch carrying a PIN, a CVV "
        "and a card number that the 400 quotes back.",
    )
    now, then = "flowscope, this tree", f"flowscope at {revision}"
    with baseline_package(revision) as baseline:
        for payment in (False, True):
            for is_async in (False, True):
                mode = "async" if is_async else "sync"
                payload = "payment data quoted back" if payment else "scenario 2 payload"
                timings, shown = _measure(
                    baseline, revision, payment, is_async=is_async, rounds=rounds, batch=batch
                )
                table = Table(
                    ["contender", "median µs/call", "vs OTel alone", f"vs {then}"],
                    title=f"{payload}, {mode}",
                )
                for name, t in timings.items():
                    table.rows.append(
                        [
                            name,
                            us(t.median),
                            "—"
                            if name == "OTel httpx transport"
                            else ratio(paired_ratio(timings, name, "OTel httpx transport")),
                            "—" if name == then else ratio(paired_ratio(timings, name, then)),
                        ]
                    )
                section.tables.append(table)
                section.notes += [f"{payload}, {mode}: {line}" for line in shown]
                r = paired_ratio(timings, now, then)
                if not payment:
                    section.targets.append(
                        Target(
                            f"error path ({mode}): this tree vs {revision}",
                            ratio(r),
                            "<= 1.00x",
                            r <= 1.0,
                        )
                    )
    return section

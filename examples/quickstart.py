"""The README's first five minutes in one process: a sandbox, a bad launch, a good one.

    python examples/quickstart.py

It starts the sandbox flow API on a free loopback port, drops flowscope into an httpx client,
launches a flow with a classic mistake (the inputs in a "data" envelope), then launches it
right and polls the execution to its end. flowscope's WARNING goes to stderr; every span is
printed to stdout as JSON when it ends (OpenTelemetry's console exporter).
"""

from __future__ import annotations

import logging
import sys
import time

import httpx

import flowscope
from flowscope.sandbox import Sandbox

LAUNCH = "/api/v2/flows/executions"
ORDER_STATUS = "9b1f3c2e-6a4d-4e8b-9f21-3c7d5a0e8b14"  # "Order Status Lookup" in the sandbox


def step(title: str) -> None:
    # stderr too, so the steps, the WARNING and the spans show in the order they happen.
    sys.stdout.flush()
    print(f"\n=== {title}", file=sys.stderr, flush=True)


def main() -> int:
    logging.basicConfig()  # flowscope's WARNING for each failed flow call
    provider = flowscope.setup_tracing("quickstart", console=True)

    with Sandbox(seed=1) as sandbox:  # seeded: the good launch below completes every run
        step(f"sandbox flow API at {sandbox.url}; a token from POST /oauth/token")
        token = httpx.post(
            f"{sandbox.url}/oauth/token",
            auth=(sandbox.client_id, sandbox.client_secret),
            data={"grant_type": "client_credentials"},
        ).json()["access_token"]
        client = flowscope.instrument(
            httpx.Client(base_url=sandbox.url, headers={"Authorization": f"Bearer {token}"})
        )
        with client:
            step("1. a launch with a classic mistake: the inputs in a 'data' envelope")
            bad = client.post(LAUNCH, json={"flowId": ORDER_STATUS, "data": {"customerId": "42"}})
            print(f"-> {bad.status_code} {bad.json()['code']}", file=sys.stderr)

            step("2. the same launch, as the hint says: the inputs under 'inputData'")
            good = client.post(
                LAUNCH, json={"flowId": ORDER_STATUS, "inputData": {"Flow.customerId": "42"}}
            )
            execution_id = good.json()["id"]
            print(f"-> {good.status_code}, execution {execution_id}", file=sys.stderr)

            step("3. its execution, polled until it ends")
            deadline = time.monotonic() + 30
            while True:
                time.sleep(0.25)
                execution = client.get(f"{LAUNCH}/{execution_id}").json()
                if execution["status"] != "RUNNING" or time.monotonic() > deadline:
                    break
            print(
                f"-> {execution['status']}, outputData {execution.get('outputData')}",
                file=sys.stderr,
            )
    provider.shutdown()
    return 0 if execution["status"] == "COMPLETED" else 1


if __name__ == "__main__":
    raise SystemExit(main())

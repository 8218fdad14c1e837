"""An instrumented ``httpx.AsyncClient``: concurrent launches, each polled to completion.

Against a sandbox started here, or against your org (``GENESYS_CLIENT_ID``/``_SECRET``)::

    python examples/async_client.py
    python examples/async_client.py --api-base https://api.mypurecloud.com --flow-id <id>
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
from _target import LAUNCH, Target, api_target, flowscope_samples, parse_args, token_request

import flowscope
from flowscope import oauth


async def launch_and_wait(
    client: httpx.AsyncClient, flow_id: str, inputs: dict[str, Any]
) -> tuple[str, str]:
    """Launch one flow and poll its execution; returns (flow id, final status)."""
    response = await client.post(LAUNCH, json={"flowId": flow_id, "inputData": inputs})
    if response.is_error:
        return flow_id, f"launch failed: {response.status_code} {response.json().get('code')}"
    execution_id = response.json()["id"]
    for _ in range(50):
        await asyncio.sleep(0.2)
        status = (await client.get(f"{LAUNCH}/{execution_id}")).json().get("status")
        if status != "RUNNING":
            return flow_id, str(status)
    return flow_id, "still RUNNING"


async def run(target: Target) -> None:
    config = flowscope.FlowScopeConfig(flow_names=target.flow_names)
    provider = flowscope.setup_tracing("async-example")  # exports when OTEL_* is set
    async with httpx.AsyncClient(base_url=target.api_base, timeout=10) as client:
        # The same call as for a sync client.
        flowscope.instrument(client, config=config, tracer_provider=provider)

        token = oauth.read_token(await client.send(token_request(target)))
        client.headers["Authorization"] = f"Bearer {token.access_token}"

        # Against the sandbox, launch each flow it knows once (the deleted one answers 410).
        flows = list(target.flow_names) or [target.flow_id]
        launches = (
            launch_and_wait(client, flow_id, target.inputs if flow_id == target.flow_id else {})
            for flow_id in flows
        )
        results = await asyncio.gather(*launches)
    for flow_id, status in results:
        print(f"{target.flow_names.get(flow_id, flow_id)}: {status}")
    provider.shutdown()


def main() -> int:
    args = parse_args(__doc__)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with api_target(args) as target:
        asyncio.run(run(target))
    print("\nwhat the metrics say:")
    for line in flowscope_samples():
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

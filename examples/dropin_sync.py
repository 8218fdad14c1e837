"""Drop flowscope into a plain ``httpx.Client`` and see what a failed launch tells you.

    python examples/dropin_sync.py                      # against a sandbox started here
    python examples/dropin_sync.py --api-base https://api.mypurecloud.com --flow-id <id> \\
        --input Flow.customerId=C-1001                 # against your org (GENESYS_CLIENT_*)

Set OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 to see the spans in Jaeger too.
"""

from __future__ import annotations

import logging

import httpx
from _target import LAUNCH, api_target, fetch_token, flowscope_samples, parse_args
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import flowscope


def main() -> int:
    args = parse_args(__doc__)
    # flowscope logs one WARNING per failed flow call; show them.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    provider = flowscope.setup_tracing("dropin-example")  # exports when OTEL_* is set
    spans = InMemorySpanExporter()  # only so this script can print what the spans say
    provider.add_span_processor(SimpleSpanProcessor(spans))

    with api_target(args) as target:
        config = flowscope.FlowScopeConfig(flow_names=target.flow_names)
        # The one line that matters: everything else is your code as it already is.
        client = flowscope.instrument(
            httpx.Client(base_url=target.api_base, timeout=10),
            config=config,
            tracer_provider=provider,
        )
        with client:
            token = fetch_token(client, target)
            headers = {"Authorization": f"Bearer {token}"}

            good = client.post(
                LAUNCH, json={"flowId": target.flow_id, "inputData": target.inputs}, headers=headers
            )
            print(f"good launch: {good.status_code}, execution id {good.json().get('id')}")

            # A classic mistake: inputs in a "data" envelope instead of "inputData".
            bad = client.post(
                LAUNCH, json={"flowId": target.flow_id, "data": target.inputs}, headers=headers
            )
            print(f"classic mistake: {bad.status_code} {bad.json().get('code')}")

    print("\nwhat the spans say:")
    for span in spans.get_finished_spans():
        attributes = dict(span.attributes or {})
        status = attributes.get("http.response.status_code", attributes.get("http.status_code"))
        print(
            f"  {span.name}: operation={attributes.get('flow.operation')} "
            f"status={status} "
            f"error={attributes.get('flow.error.code', '-')} "
            f"fields={list(attributes.get('flow.error.fields', []))} "
            f"correlation_id={attributes.get('genesys.correlation_id')}"
        )
        for event in span.events:
            if event.name == "flow.hint":
                hint = dict(event.attributes or {})
                print(f"    hint {hint['hint.code']}: {hint['hint.message']}")

    print("\nwhat the metrics say:")
    for line in flowscope_samples():
        print(f"  {line}")
    provider.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Instrument a client you already built: its own transport, mounts and event hooks stay.

flowscope wraps the client's transport *and* every mounted transport, so calls routed through a
mount (a retrying transport for the API host, say) are observed like the rest; hooks, auth,
headers and timeouts run exactly as before. ``uninstrument`` puts the originals back.

    python examples/existing_client_with_mounts.py
    python examples/existing_client_with_mounts.py --api-base https://api.mypurecloud.com \\
        --flow-id <id>
"""

from __future__ import annotations

import httpx
from _target import LAUNCH, api_target, fetch_token, flowscope_samples, parse_args

import flowscope


class CountingTransport(httpx.HTTPTransport):
    """A retrying transport that also counts what it carried, to show the mount is used."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.requests = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        return super().handle_request(request)


def launches_counted() -> float:
    """Launches flowscope has counted so far, whatever their flow or status."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in flowscope_samples()
        if 'operation="launch"' in line
    )


def main() -> int:
    args = parse_args(__doc__)
    seen_by_hook: list[str] = []

    with api_target(args) as target:
        # The client as an application might already have it: a retrying transport mounted for
        # the API host, a default transport for everything else, a hook, default headers.
        api_transport = CountingTransport(retries=3)
        client = httpx.Client(
            base_url=target.api_base,
            transport=httpx.HTTPTransport(retries=1),
            mounts={target.api_base: api_transport},
            event_hooks={"request": [lambda request: seen_by_hook.append(request.url.path)]},
            headers={"User-Agent": "billing-service/4.2"},
            timeout=10,
        )
        config = flowscope.FlowScopeConfig(flow_names=target.flow_names)
        flowscope.instrument(client, config=config)

        with client:
            token = fetch_token(client, target)
            client.headers["Authorization"] = f"Bearer {token}"
            body = {"flowId": target.flow_id, "inputData": target.inputs}

            before = launches_counted()
            good = client.post(LAUNCH, json=body)
            bad = client.post(LAUNCH, json={**body, "execution_context": {"source": "crm"}})
            counted = launches_counted() - before
            print(
                f"instrumented: launches {good.status_code} and {bad.status_code}, "
                f"flowscope counted {counted:g}"
            )

            flowscope.uninstrument(client)
            before = launches_counted()
            after = client.post(LAUNCH, json=body)
            counted = launches_counted() - before
            print(f"uninstrumented: launch {after.status_code}, flowscope counted {counted:g}")

    print(f"the mounted transport carried {api_transport.requests} requests")
    print(f"the client's own hook still saw every request: {len(seen_by_hook)} requests")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

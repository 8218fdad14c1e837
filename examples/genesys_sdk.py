"""Launch a flow with the official Genesys Cloud Python SDK, observed by flowscope.

    python examples/genesys_sdk.py                      # against an in-process sandbox
    GENESYS_CLIENT_ID=... GENESYS_CLIENT_SECRET=... \\
        python examples/genesys_sdk.py --api-base https://api.mypurecloud.ie \\
        --flow-id <id> --input Flow.customerId=C-1001

It launches the flow once as asked, then once with a classic mistake (input keys without the
``Flow.`` prefix) so you can see what flowscope records when the platform answers 400. Each HTTP
call prints one line from its span. Needs the ``genesys`` extra (``pip install -e '.[genesys]'``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

import PureCloudPlatformClientV2 as genesys
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from PureCloudPlatformClientV2.rest import ApiException

from flowscope.cli import coerce, input_pair
from flowscope.genesys import FlowScopeHttpClient
from flowscope.sandbox import Sandbox


def span_line(span: ReadableSpan) -> str:
    attrs: dict[str, Any] = dict(span.attributes or {})
    hints = [
        e.attributes.get("hint.code") for e in span.events if e.name == "flow.hint" and e.attributes
    ]
    parts = [
        f"span {attrs.get('flow.operation', span.name)}",
        f"status={attrs.get('http.response.status_code')}",
        f"flow={attrs.get('flow.id')}",
    ]
    if "flow.error.code" in attrs:
        parts.append(f"error={attrs['flow.error.code']}")
    if "flow.error.fields" in attrs:
        parts.append("fields=" + ",".join(map(str, attrs["flow.error.fields"])))
    if hints:
        parts.append(f"hints={','.join(str(h) for h in hints)}")
    if "genesys.correlation_id" in attrs:
        parts.append(f"correlation={attrs['genesys.correlation_id']}")
    return " ".join(parts) + "\n"


@contextlib.contextmanager
def api_base(args: argparse.Namespace) -> Iterator[tuple[str, str, str, str]]:
    """(api base, client id, client secret, flow id): the real platform, or a sandbox."""
    if args.api_base:
        client_id = os.environ.get("GENESYS_CLIENT_ID", "")
        secret = os.environ.get("GENESYS_CLIENT_SECRET", "")
        if not (client_id and secret and args.flow_id):
            sys.exit("--api-base needs GENESYS_CLIENT_ID, GENESYS_CLIENT_SECRET and --flow-id")
        yield args.api_base.rstrip("/"), client_id, secret, args.flow_id
        return
    with Sandbox(seed=1) as sandbox:
        flow = args.flow_id or sandbox.flows[0].id
        yield sandbox.url, sandbox.client_id, sandbox.client_secret, flow


class OneLineParser(argparse.ArgumentParser):
    """A usage mistake is one line (the usage block is one ``--help`` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api-base", help="e.g. https://api.mypurecloud.ie (default: a sandbox)")
    parser.add_argument("--flow-id")
    parser.add_argument(
        "--input",
        action="append",
        default=[],
        type=input_pair,
        metavar="KEY=VALUE",
        help="a flow input, repeatable, as flowscope launch takes it: VALUE is JSON when it "
        "parses (42, true, {...}), else a string",
    )
    args = parser.parse_args(argv)
    inputs = {key: coerce(text) for key, text in args.input} or {"Flow.customerId": "C-1001"}

    tracing = TracerProvider()
    tracing.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(formatter=span_line)))

    with api_base(args) as (base, client_id, secret, flow_id):
        api = genesys.ApiClient(host=base)
        http = FlowScopeHttpClient(tracer_provider=tracing)
        api.set_http_client(http)
        api.get_client_credentials_token(client_id, secret)
        architect = genesys.ArchitectApi(api)

        launch = genesys.FlowExecutionLaunchRequest()
        launch.flow_id = flow_id
        launch.input_data = inputs
        execution = architect.post_flows_executions(launch)
        print(f"launched execution {execution.id}")

        launch.input_data = {key.removeprefix("Flow."): value for key, value in inputs.items()}
        try:
            architect.post_flows_executions(launch)
        except ApiException as exc:
            print(f"the second launch failed as expected: {exc.status} {exc.reason}")
        http.close()
    tracing.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

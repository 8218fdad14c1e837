"""Where the examples send their calls: your org (``--api-base``) or a sandbox started in-process.

Not an example itself: it keeps the scripts about flowscope rather than about setup. With
``--api-base`` the scripts read ``GENESYS_CLIENT_ID`` / ``GENESYS_CLIENT_SECRET`` and need
``--flow-id`` (and ``--input KEY=VALUE``, as ``flowscope launch`` takes it); without it they start
flowscope's loopback sandbox.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn

import httpx

from flowscope import oauth
from flowscope.cli import coerce, input_pair

LAUNCH = "/api/v2/flows/executions"
#: "Order Status Lookup" in the sandbox.
SANDBOX_FLOW_ID = "9b1f3c2e-6a4d-4e8b-9f21-3c7d5a0e8b14"
SANDBOX_INPUTS = {"Flow.customerId": "C-1042", "Flow.orderNumber": 1042}


@dataclass
class Target:
    api_base: str
    login_base: str
    client_id: str
    client_secret: str
    flow_id: str
    inputs: dict[str, Any]
    #: Every flow the sandbox serves (id -> name); empty for a real org.
    flow_names: dict[str, str] = field(default_factory=dict)
    sandbox: Any = None


class OneLineParser(argparse.ArgumentParser):
    """A usage mistake is one line (the usage block is one ``--help`` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def parse_args(description: str | None, parser: argparse.ArgumentParser | None = None) -> Any:
    parser = parser or OneLineParser(description=description)
    parser.add_argument(
        "--api-base",
        help="e.g. https://api.mypurecloud.com (default: start a sandbox in-process)",
    )
    parser.add_argument("--flow-id", help="the flow to launch (with --api-base)")
    parser.add_argument(
        "--input",
        action="append",
        default=[],
        type=input_pair,
        metavar="KEY=VALUE",
        help="a flow input, repeatable, as flowscope launch takes it: VALUE is JSON when it "
        "parses (42, true, {...}), else a string, e.g. --input Flow.customerId=C-1001",
    )
    return parser.parse_args()


def inputs_of(args: Any) -> dict[str, Any]:
    """``inputData`` from the ``--input`` pairs."""
    return {key: coerce(text) for key, text in args.input}


@contextmanager
def api_target(args: Any, **sandbox_options: Any) -> Iterator[Target]:
    """A :class:`Target` for the arguments; a sandbox lives as long as the ``with`` block."""
    if args.api_base:
        client_id = os.environ.get("GENESYS_CLIENT_ID")
        client_secret = os.environ.get("GENESYS_CLIENT_SECRET")
        if not client_id or not client_secret or not args.flow_id:
            sys.exit("with --api-base, set GENESYS_CLIENT_ID, GENESYS_CLIENT_SECRET and --flow-id")
        api_base = args.api_base.rstrip("/")
        yield Target(
            api_base=api_base,
            # As the Genesys SDK does: api.X -> login.X, any other host serves both.
            login_base=re.sub(r"//api\.", "//login.", api_base),
            client_id=client_id,
            client_secret=client_secret,
            flow_id=args.flow_id,
            inputs=inputs_of(args),
        )
        return

    from flowscope.sandbox import Sandbox

    with Sandbox(**sandbox_options) as sandbox:
        print(f"(started a sandbox flow API at {sandbox.url})")
        yield Target(
            api_base=sandbox.url,
            login_base=sandbox.url,
            client_id=sandbox.client_id,
            client_secret=sandbox.client_secret,
            flow_id=args.flow_id or SANDBOX_FLOW_ID,
            inputs=inputs_of(args) if args.input else dict(SANDBOX_INPUTS),
            flow_names={flow.id: flow.name for flow in sandbox.flows},
            sandbox=sandbox,
        )


def token_request(target: Target) -> httpx.Request:
    """The client-credentials token request (Basic auth, form body)."""
    return oauth.token_request(target.login_base, target.client_id, target.client_secret)


def fetch_token(client: httpx.Client, target: Target) -> str:
    """A bearer token, fetched through ``client`` (so flowscope sees the token call too)."""
    return oauth.read_token(client.send(token_request(target))).access_token


def flowscope_samples(prefix: str = "flowscope_requests_total") -> list[str]:
    """The exposition lines of one flowscope metric from the default registry."""
    from prometheus_client import generate_latest

    text = generate_latest().decode()
    return [line for line in text.splitlines() if line.startswith(prefix)]

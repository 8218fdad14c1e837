"""Run the sandbox in the foreground, for ``flowscope sandbox`` and ``python -m``."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from collections.abc import Callable, Sequence

from ._clients import LAUNCH, SandboxClient
from ._sandbox import Sandbox

__all__ = ["add_arguments", "main", "port_number", "run_forever", "serve"]

_DESCRIPTION = "Serve a loopback imitation of the Genesys Cloud flow-execution API."


def run_forever(
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    ready: Callable[[Sandbox], None] | None = None,
    stop: threading.Event | None = None,
    **options: object,
) -> None:
    """Serve until Ctrl-C (or until ``stop`` is set), then release the port.

    ``ready`` is called with the started sandbox, so a caller can announce the URL and
    credentials its own way. ``options`` are the other :class:`Sandbox` keyword arguments.
    """
    sandbox = Sandbox(host=host, port=port, **options)  # type: ignore[arg-type]
    stop = stop or threading.Event()
    with sandbox:
        if ready is not None:
            ready(sandbox)
        try:
            # A timed wait keeps the main thread responsive to KeyboardInterrupt.
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass


def port_number(text: str) -> int:
    """An ``argparse`` type for a TCP port (0 picks a free one)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is between 0 and 65535, got {port}")
    return port


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the sandbox's options to ``parser`` (its own, or the ``flowscope sandbox`` command's).

    Parsed, they are what :func:`serve` takes.
    """
    parser.description = parser.description or _DESCRIPTION
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=port_number, default=8080, help="0 picks a free port")
    parser.add_argument("--client-id", default="sandbox-client")
    parser.add_argument("--client-secret", default="sandbox-secret")
    parser.add_argument("--rate-limit", type=int, default=3000, help="API requests per minute")
    parser.add_argument("--execution-seconds", type=float, default=0.3)
    parser.add_argument(
        "--token-ttl", type=int, default=86400, help="expires_in of the main client's tokens (s)"
    )
    parser.add_argument(
        "--unavailable-rate",
        type=float,
        default=0.0,
        help="fraction of API calls answered 503 (default 0)",
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    return parser


def serve(args: argparse.Namespace) -> int:
    """Print where to connect, then serve until Ctrl-C; ``args`` come from :func:`add_arguments`.

    Raises ``OSError`` when the address cannot be bound.
    """
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    def announce(sandbox: Sandbox) -> None:
        lines = [
            f"flowscope sandbox listening on {sandbox.url}",
            f"  token:  POST {sandbox.url}/oauth/token "
            f"(client id {sandbox.client_id!r}, secret {sandbox.client_secret!r})",
            *(
                f"  other client {client.id!r}, secret {client.secret!r}: {_client_note(client)}"
                for client in sandbox.clients
                if client.id != sandbox.client_id
            ),
            f"  launch: POST {sandbox.url}/api/v2/flows/executions",
            "  flows:",
            *(
                f"    {flow.id}  {flow.name} v{flow.version}"
                + (f"  ({flow.type})" if flow.type != "WORKFLOW" else "")
                + ("  (deleted)" if flow.deleted else "")
                for flow in sandbox.flows
            ),
            "Ctrl-C to stop.",
        ]
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()

    run_forever(
        args.host,
        args.port,
        ready=announce,
        client_id=args.client_id,
        client_secret=args.client_secret,
        rate_limit_per_minute=args.rate_limit,
        execution_seconds=args.execution_seconds,
        token_ttl=args.token_ttl,
        unavailable_rate=args.unavailable_rate,
        seed=args.seed,
        verbose=args.verbose,
    )
    return 0


def _client_note(client: SandboxClient) -> str:
    if LAUNCH not in client.permissions:
        return f"no {LAUNCH} (its launches answer 403)"
    if client.token_ttl is not None:
        return f"tokens expire after {client.token_ttl} s"
    return "may do everything"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m flowscope.sandbox``: parse ``argv``, then :func:`serve`."""
    parser = argparse.ArgumentParser(prog="flowscope sandbox")
    return serve(add_arguments(parser).parse_args(argv))

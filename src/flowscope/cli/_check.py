"""``flowscope check``: lint a launch payload offline."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from typing import Any

from ._common import CliError, load_json, read_input
from ._format import hint_line

__all__ = ["add_parser", "run"]


def add_parser(commands: Any) -> None:
    """Register ``check`` on the top-level subcommand set."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "check",
        help="lint a launch payload offline",
        description=(
            "Lint a flow launch payload (the JSON body of POST /api/v2/flows/executions) "
            "without sending it. Prints one hint per mistake; exits 1 when there is any."
        ),
    )
    parser.add_argument("payload", metavar="FILE", help="JSON payload file, or - for stdin")
    parser.add_argument(
        "--schema",
        metavar="FILE",
        help="the flow version's input schema (JSON Schema, or a whole flow version document)",
    )
    parser.add_argument(
        "--content-type",
        metavar="TYPE",
        help="the Content-Type the payload is sent with (checked when given)",
    )
    parser.add_argument("--json", action="store_true", help="print the hints as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from flowscope import diagnose_launch

    schema = _load_schema(args.schema) if args.schema else None
    body = read_input(args.payload, "payload file")
    source = "stdin" if args.payload == "-" else args.payload
    hints = diagnose_launch(body, content_type=args.content_type, input_schema=schema)
    # A file that is not a JSON object cannot be linted: a usage error (exit 2), said in one line
    # with the hint that tells why, rather than a finding about a payload (exit 1).
    unreadable = next((h for h in hints if h.code == "not-json"), None)

    if args.json:
        document = [{"code": h.code, "field": h.field, "message": h.message} for h in hints]
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return 2 if unreadable is not None else 1 if hints else 0
    if unreadable is not None:
        what = "the payload on stdin" if args.payload == "-" else f"payload file {source!r}"
        raise CliError(f"{what}: {unreadable.message}")
    if not hints:
        sys.stdout.write(f"{source}: no problems found\n")
    else:
        count = f"{len(hints)} problem{'s' if len(hints) != 1 else ''}"
        lines = [f"{source}: {count}"]
        lines.extend(f"  {hint_line(hint)}" for hint in hints)
        sys.stdout.write("\n".join(lines) + "\n")
    return 1 if hints else 0


def _load_schema(path: str) -> Mapping[str, Any]:
    """An input schema, or the ``inputSchema`` of a whole flow version document.

    Anything else (a flow document without ``inputSchema``, the payload itself) would silently
    check nothing, so it is refused.
    """
    document = load_json(read_input(path, "schema file"), f"schema file {path!r}")
    if not isinstance(document, dict):
        raise CliError(f"schema file {path!r} must hold a JSON object")
    # A whole flow version document (GET /api/v2/flows/{id}/versions/{v}) is accepted as is.
    if "inputSchema" in document:
        inner = document["inputSchema"]
        if not isinstance(inner, dict):
            raise CliError(f"schema file {path!r}: its inputSchema is not a JSON object")
        document = inner
    if (
        isinstance(document.get("properties"), dict)
        or document.get("additionalProperties") is False
    ):
        return document
    what = (
        "a launch payload"
        if "flowId" in document or "inputData" in document
        else "a flow without an inputSchema"
        if "publishedVersion" in document or "selfUri" in document
        else "no input schema"
    )
    raise CliError(
        f"schema file {path!r} holds {what}: give the flow version "
        "(GET /api/v2/flows/{id}/versions/{version}) or its inputSchema"
    )

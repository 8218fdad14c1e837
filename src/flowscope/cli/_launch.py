"""``flowscope launch``: launch a flow for real and print the full, redacted diagnosis."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from ._common import CliError, LastRecord, shown_url, tracer_provider
from ._format import execution_lines, failure_lines, headline, indent, pretty
from ._regions import api_base_for_region, login_base_for

if TYPE_CHECKING:
    import httpx

    from flowscope import CallRecord, Redactor

__all__ = ["add_parser", "parse_input", "run"]

LAUNCH_PATH = "/api/v2/flows/executions"
_DONE = ("COMPLETED", "FAILED", "ERROR", "TERMINATED", "UNKNOWN")


def add_parser(commands: Any) -> None:
    """Register ``launch`` on the top-level subcommand set."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "launch",
        help="launch a flow for real and print the diagnosis",
        description=(
            "Launch a flow with client credentials from GENESYS_CLIENT_ID and "
            "GENESYS_CLIENT_SECRET. On failure prints the redacted request, the full error body, "
            "the correlation id, the trace id and the payload hints."
        ),
    )
    parser.add_argument("--flow-id", required=True, metavar="ID")
    parser.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a flow input, repeatable; VALUE is read as JSON when it parses (42, true, {...}), "
        "else as a string; keys are sent as typed (flow inputs are named Flow.<variable>)",
    )
    parser.add_argument("--flow-version", metavar="V")
    parser.add_argument("--name", metavar="N", help="a name for the execution")
    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--region",
        metavar="NAME",
        help="e.g. mypurecloud.com, mypurecloud.ie, usw2.pure.cloud (default: GENESYS_REGION)",
    )
    target.add_argument("--api-base", metavar="URL", help="API base URL, e.g. a sandbox")
    parser.add_argument("--wait", action="store_true", help="poll the execution until it ends")
    parser.add_argument(
        "--timeout", type=float, default=60.0, metavar="S", help="seconds (default: 60)"
    )
    parser.add_argument(
        "--no-schema",
        action="store_true",
        help="do not read the flow version first (reading it lets flowscope check input names "
        "and types; it needs architect:flow:view)",
    )
    parser.add_argument("--otlp", metavar="URL", help="export the call's trace over OTLP/HTTP")
    parser.set_defaults(run=run)


def parse_input(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs to ``inputData``; values are JSON when they parse, else strings."""
    data: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise CliError(f"--input {item!r}: expected KEY=VALUE, e.g. Flow.customerId=42")
        try:
            value: Any = json.loads(text)
        except ValueError:
            value = text
        data[key] = value
    return data


def run(args: argparse.Namespace) -> int:
    import httpx

    from flowscope import FlowScopeConfig, Redactor, instrument

    client_id = os.environ.get("GENESYS_CLIENT_ID", "")
    client_secret = os.environ.get("GENESYS_CLIENT_SECRET", "")
    if not client_id or not client_secret:
        raise CliError(
            "set GENESYS_CLIENT_ID and GENESYS_CLIENT_SECRET (an OAuth client-credentials client "
            "with the architect:flow:launch permission)"
        )
    if args.timeout <= 0:
        raise CliError("--timeout must be a positive number of seconds")
    api_base = _api_base(args)
    body: dict[str, Any] = {"flowId": args.flow_id}
    if args.flow_version is not None:
        body["flowVersion"] = args.flow_version
    inputs = parse_input(args.input)
    if inputs:
        body["inputData"] = inputs
    if args.name is not None:
        body["name"] = args.name

    try:
        config = FlowScopeConfig.from_env()
    except ValueError as exc:
        raise CliError(str(exc)) from None
    redactor = Redactor(
        redact_keys=config.redact_keys,
        redact_patterns=config.redact_patterns,
        redact_pii=config.redact_pii,
    )
    provider = tracer_provider("flowscope-launch", args.otlp)
    out = sys.stdout
    try:
        records = LastRecord()
        with httpx.Client(base_url=api_base, timeout=args.timeout) as c:
            client = instrument(c, config=config, tracer_provider=provider, on_record=records)
            login = login_base_for(api_base)
            token = _fetch_token(client, login, client_id, client_secret, records, redactor)
            auth = {"Authorization": f"Bearer {token}"}
            if not args.no_schema:
                _read_schema(client, args.flow_id, args.flow_version, auth)
            out.write(f"POST {shown_url(api_base)}{LAUNCH_PATH}  flowId={args.flow_id}\n")
            records.take()
            response = _send(client, "POST", LAUNCH_PATH, api_base, json=body, headers=auth)
            if response.is_error:
                _print_failure(response, records.take(), redactor, "launch failed")
                return 1
            document = _json_or_none(response)
            execution_id = document.get("id") if isinstance(document, dict) else None
            if not isinstance(execution_id, str):
                raise CliError(f"the launch answered {response.status_code} without an id", 1)
            version = (document or {}).get("flowVersion") or {}
            out.write(f"launched: execution id {execution_id}\n")
            if isinstance(version, dict) and version.get("id"):
                out.write(f"  flow version: {version['id']}\n")
            if (document or {}).get("name"):
                out.write(f"  name: {document['name']}\n")
            out.flush()
            if not args.wait:
                return 0
            return _wait(client, api_base, execution_id, auth, args.timeout, records, redactor)
    finally:
        provider.shutdown()


def _api_base(args: argparse.Namespace) -> str:
    if args.api_base:
        parts = urlsplit(args.api_base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise CliError(f"--api-base {args.api_base!r}: expected a URL such as https://api.X")
        return str(args.api_base).rstrip("/")
    region = args.region or os.environ.get("GENESYS_REGION")
    if not region:
        raise CliError("give --region (e.g. mypurecloud.com) or --api-base URL")
    return api_base_for_region(region)


def _send(client: httpx.Client, method: str, path: str, base: str, **kwargs: Any) -> httpx.Response:
    import httpx

    base = shown_url(base)
    try:
        return client.request(method, path, **kwargs)
    except httpx.TimeoutException:
        raise CliError(f"{method} {base}{path} timed out", 1) from None
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach {base}: {_reason(exc)}", 1) from None


def _fetch_token(
    client: httpx.Client,
    login_base: str,
    client_id: str,
    secret: str,
    records: LastRecord,
    redactor: Redactor,
) -> str:
    import httpx

    from flowscope.oauth import TokenError, read_token, token_request

    request = token_request(login_base, client_id, secret)
    shown = shown_url(str(request.url))
    records.take()
    try:
        return read_token(client.send(request)).access_token
    except httpx.TimeoutException:
        raise CliError(f"POST {shown} timed out", 1) from None
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach {shown_url(login_base)}: {_reason(exc)}", 1) from None
    except TokenError as exc:
        record = records.take()
        response = exc.response
        if not response.is_error:
            raise CliError(f"token request to {shown} answered without a token", 1) from None
        # The diagnosis (error body, ids, what to do next) on stdout; the one-line error after.
        _print_failure(response, record, redactor, "token request failed")
        reason = headline(record) if record is not None else ""
        raise CliError(
            f"token request to {shown} failed: "
            f"{reason or f'{response.status_code} {response.reason_phrase}'}"
            " (check GENESYS_CLIENT_ID, GENESYS_CLIENT_SECRET and the region)",
            1,
        ) from None


def _read_schema(
    client: httpx.Client, flow_id: str, version: str | None, auth: dict[str, str]
) -> None:
    """Read the flow version so flowscope learns its input schema; best effort, quiet."""
    import httpx

    flow_path = f"/api/v2/flows/{quote(flow_id, safe='')}"
    try:
        if version is None:
            response = client.get(flow_path, headers=auth)
            published = _json_or_none(response) if response.is_success else None
            reference = published.get("publishedVersion") if isinstance(published, dict) else None
            version = reference.get("id") if isinstance(reference, dict) else None
            if not isinstance(version, str):
                return
        client.get(f"{flow_path}/versions/{quote(version, safe='')}", headers=auth)
    except httpx.HTTPError:
        return  # the launch itself will say what is wrong with the connection


def _wait(
    client: httpx.Client,
    api_base: str,
    execution_id: str,
    auth: dict[str, str],
    timeout: float,
    records: LastRecord,
    redactor: Redactor,
) -> int:
    out = sys.stdout
    path = f"{LAUNCH_PATH}/{quote(execution_id, safe='')}"
    deadline = time.monotonic() + timeout
    delay = 0.25
    status = "RUNNING"
    while True:
        records.take()
        response = _send(client, "GET", path, api_base, headers=auth)
        if response.is_error:
            _print_failure(response, records.take(), redactor, "polling the execution failed")
            return 1
        document = _json_or_none(response)
        status = str(document.get("status", "UNKNOWN")) if isinstance(document, dict) else "?"
        if status in _DONE or not isinstance(document, dict):
            break
        if time.monotonic() + delay > deadline:
            out.write(f"status: {status} (still running after {timeout:g} s)\n")
            return 1
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
    # The outcome as flowscope recorded it: what the span, the metrics and the logs say too.
    record = records.take()
    shown_lines = execution_lines(record) if record is not None else []
    out.write("\n".join(shown_lines or [f"status: {status}"]) + "\n")
    if document.get("outputData") is not None:
        shown = redactor.json(document["outputData"]).value
        out.write("outputData:\n" + indent(json.dumps(shown, indent=2)) + "\n")
    execution = record.execution if record is not None else None
    if execution is not None and execution.error_body is not None:
        out.write("flowErrorInfo (redacted):\n" + indent(pretty(execution.error_body)) + "\n")
    elif document.get("flowErrorInfo") is not None:
        shown = redactor.json(document["flowErrorInfo"]).value
        out.write("flowErrorInfo:\n" + indent(json.dumps(shown, indent=2)) + "\n")
    return 0 if status == "COMPLETED" else 1


def _print_failure(
    response: httpx.Response, record: CallRecord | None, redactor: Redactor, title: str
) -> None:
    """Everything a person needs to fix the call or to open a support case."""
    if record is None:
        # Not a flow route flowscope knows: fall back to the redacted body alone.
        lines = [
            f"{title}: {response.status_code} {response.reason_phrase}",
            "error body (redacted):",
            indent(pretty(redactor.text(response.text).value)),
        ]
    else:
        lines = [f"{title}: {headline(record)}", *(f"  {line}" for line in failure_lines(record))]
    sys.stdout.write("\n".join(lines) + "\n")


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__

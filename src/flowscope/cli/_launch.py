"""``flowscope launch``: launch a flow for real and print the full, redacted diagnosis."""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from ._common import CliError, LastRecord, shown_url, tracer_provider
from ._format import execution_lines, failure_lines, headline, indent, pretty
from ._inputs import input_pair, type_inputs
from ._regions import api_base_for_region, login_base_for

if TYPE_CHECKING:
    import httpx

    from flowscope import CallRecord, Redactor

__all__ = ["EXAMPLES", "add_parser", "run"]

LAUNCH_PATH = "/api/v2/flows/executions"
_DONE = ("COMPLETED", "FAILED", "ERROR", "TERMINATED", "UNKNOWN")

#: Shown by ``launch --help``; each line runs as written against ``flowscope sandbox --port 8080
#: --seed 1`` (the test suite runs them).
EXAMPLES = (
    "flowscope launch --api-base http://127.0.0.1:8080 "
    "--flow-id 9b1f3c2e-6a4d-4e8b-9f21-3c7d5a0e8b14 --input Flow.customerId=42 --wait",
    "flowscope launch --api-base http://127.0.0.1:8080 "
    "--flow-id 9b1f3c2e-6a4d-4e8b-9f21-3c7d5a0e8b14 --input isVip=true",
)
_EPILOG = "\n".join(
    [
        textwrap.fill(
            "examples, against `flowscope sandbox --port 8080 --seed 1` with "
            "GENESYS_CLIENT_ID=sandbox-client and GENESYS_CLIENT_SECRET=sandbox-secret:",
            78,
        ),
        *(f"  {line}" for line in EXAMPLES),
        "",
        "For your org, use --region (e.g. --region mypurecloud.ie) instead of --api-base.",
        textwrap.fill(
            "Exit status: 0 launched (and, with --wait, COMPLETED); 1 the call failed, the "
            "execution did not complete, or the payload has hints and was not sent; 2 a usage "
            "error.",
            78,
        ),
    ]
)


def add_parser(commands: Any) -> None:
    """Register ``launch`` on the top-level subcommand set."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "launch",
        help="launch a flow for real and print the diagnosis",
        description=textwrap.fill(
            "Launch a flow with client credentials from GENESYS_CLIENT_ID and "
            "GENESYS_CLIENT_SECRET. It reads the flow's input schema first, types the inputs by "
            "it, and does not send a payload that still has hints (unless --force). On failure "
            "prints the redacted request, the full error body, the correlation id, the trace id "
            "and the payload hints.",
            78,
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--flow-id", required=True, metavar="ID")
    parser.add_argument(
        "--input",
        action="append",
        default=[],
        type=input_pair,
        metavar="KEY=VALUE",
        help="a flow input, repeatable. With the flow's schema, VALUE takes the declared type "
        '(Flow.customerId=42 sends "42" to a string input, 42 to an integer one) and a key '
        "without the Flow. prefix is corrected when the flow declares exactly one such input; "
        "without a schema (--no-schema, or not readable) VALUE is JSON when it parses "
        "(42, true, {...}), else a string",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="send the payload even when flowscope finds problems in it (hints)",
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


def run(args: argparse.Namespace) -> int:
    import httpx

    from flowscope import FlowScopeConfig, Redactor, diagnose_payload, instrument

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
            schema = None
            if not args.no_schema:
                schema = _read_schema(client, args.flow_id, args.flow_version, auth)
            inputs = type_inputs(args.input, schema)
            for note in inputs.notes:
                out.write(f"note: {note}\n")
            body = _body(args, inputs.data)
            hints = diagnose_payload(body, input_schema=schema)
            if hints:
                _print_hints(hints, redactor, sent=args.force)
                if not args.force:
                    return 1
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


def _body(args: argparse.Namespace, inputs: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"flowId": args.flow_id}
    if args.flow_version is not None:
        body["flowVersion"] = args.flow_version
    if inputs:
        body["inputData"] = inputs
    if args.name is not None:
        body["name"] = args.name
    return body


def _print_hints(hints: list[Any], redactor: Redactor, *, sent: bool) -> None:
    """The payload's problems, before anything is sent, redacted as the library redacts them."""
    count = f"{len(hints)} problem{'s' if len(hints) != 1 else ''}"
    then = "sending it anyway (--force)" if sent else "not sent: fix it, or add --force to send it"
    lines = [f"the payload has {count}; {then}"]
    for hint in hints:
        where = f" [{hint.field}]" if hint.field else ""
        lines.append(f"  {hint.code}{where}: {redactor.text(hint.message).value}")
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


def _api_base(args: argparse.Namespace) -> str:
    if args.api_base:
        parts = urlsplit(args.api_base)
        shown = shown_url(args.api_base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise CliError(f"--api-base {shown!r}: expected a URL such as https://api.X")
        path = parts.path.rstrip("/")
        if path.lower().endswith("/api/v2") or path.lower().startswith("/api/"):
            base = shown_url(f"{parts.scheme}://{parts.netloc}")
            raise CliError(
                f"--api-base {shown!r}: give the base URL without the API path, e.g. {base} "
                "(flowscope adds /api/v2/... itself)"
            )
        return str(args.api_base).rstrip("/")
    if args.region:
        try:
            return api_base_for_region(args.region)
        except CliError as exc:
            raise CliError(f"--region: {exc}") from None
    region = os.environ.get("GENESYS_REGION", "").strip()
    if not region:
        raise CliError(
            "give --region (e.g. mypurecloud.com), set GENESYS_REGION, or give --api-base URL"
        )
    try:
        return api_base_for_region(region)
    except CliError as exc:
        raise CliError(f"GENESYS_REGION: {exc}") from None


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
        _refuse_missing_token_endpoint(response, shown)
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


def _refuse_missing_token_endpoint(response: httpx.Response, shown: str) -> None:
    """A 404 from the token URL means a wrong base URL, not wrong credentials: say so."""
    if response.status_code == 404:
        raise CliError(
            f"token request to {shown} failed: 404, nothing answers there: check --api-base "
            "(the API's base URL, such as https://api.mypurecloud.com) or the region",
            1,
        )


def _read_schema(
    client: httpx.Client, flow_id: str, version: str | None, auth: dict[str, str]
) -> dict[str, Any] | None:
    """The flow version's ``inputSchema``, or ``None``; best effort and quiet.

    Reading it through the instrumented client also lets flowscope learn it for its own hints.
    """
    import httpx

    flow_path = f"/api/v2/flows/{quote(flow_id, safe='')}"
    try:
        if version is None:
            response = client.get(flow_path, headers=auth)
            published = _json_or_none(response) if response.is_success else None
            reference = published.get("publishedVersion") if isinstance(published, dict) else None
            version = reference.get("id") if isinstance(reference, dict) else None
            if not isinstance(version, str):
                return None
        response = client.get(f"{flow_path}/versions/{quote(version, safe='')}", headers=auth)
    except httpx.HTTPError:
        return None  # the launch itself will say what is wrong with the connection
    document = _json_or_none(response) if response.is_success else None
    schema = document.get("inputSchema") if isinstance(document, dict) else None
    return schema if isinstance(schema, dict) else None


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

"""A small WSGI app that launches flows on request and serves ``/metrics`` beside them.

    python examples/web_app.py            # start, call itself a few times, print, stop
    python examples/web_app.py --serve    # keep serving: try the URLs it prints

Routes:
    GET /launch?flow=<flow id>&Flow.customerId=42&...   launch a flow, inputs from the query
    GET /metrics                                        Prometheus metrics (flowscope's included)

Stdlib ``wsgiref`` keeps it dependency-free; the same code runs under gunicorn or uWSGI.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
from _target import LAUNCH, OneLineParser, Target, api_target, fetch_token, parse_args

import flowscope

StartResponse = Callable[..., Any]


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def make_app(client: httpx.Client, default_flow: str) -> Callable[..., Iterable[bytes]]:
    metrics_app = flowscope.make_wsgi_app()

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return metrics_app(environ, start_response)  # type: ignore[no-any-return]
        if path != "/launch":
            return reply(start_response, 404, {"error": "try /launch?flow=<id> or /metrics"})
        query = dict(parse_qsl(environ.get("QUERY_STRING", "")))
        flow_id = query.pop("flow", default_flow)
        payload = {"flowId": flow_id, "inputData": query}
        response = client.post(LAUNCH, json=payload)
        if response.is_success:
            return reply(start_response, 200, {"executionId": response.json()["id"]})
        # flowscope already recorded the span, the metrics and a log record; tell the caller
        # what went wrong in a form they can act on.
        error = response.json()
        hints = flowscope.diagnose_payload(payload)
        return reply(
            start_response,
            502 if response.status_code >= 500 else response.status_code,
            {
                "error": error.get("code"),
                "message": error.get("message"),
                "correlationId": response.headers.get("ININ-Correlation-Id"),
                "hints": [{"code": h.code, "field": h.field, "message": h.message} for h in hints],
            },
        )

    return app


def reply(start_response: StartResponse, status: int, document: object) -> list[bytes]:
    body = json.dumps(document).encode()
    phrase = {200: "OK", 400: "Bad Request", 404: "Not Found"}.get(status, "Error")
    start_response(
        f"{status} {phrase}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]


def exercise(base: str, target: Target) -> None:
    """Call the app the way a browser or another service would."""
    with httpx.Client(base_url=base, timeout=10) as caller:
        good = {"flow": target.flow_id, **{k: str(v) for k, v in target.inputs.items()}}
        bad = {"flow": target.flow_id, "customerId": "C-1042"}  # no "Flow." prefix
        for params in (good, bad):
            response = caller.get("/launch", params=params)
            print(f"GET /launch?{response.request.url.query.decode()}")
            print(f"  -> {response.status_code} {response.text}")
        metrics = caller.get("/metrics").text
    print("GET /metrics (flowscope_requests_total):")
    for line in metrics.splitlines():
        if line.startswith("flowscope_requests_total"):
            print(f"  {line}")


def main() -> int:
    parser = OneLineParser(description=__doc__)
    parser.add_argument("--serve", action="store_true", help="keep serving until Ctrl-C")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parse_args(__doc__, parser)

    with api_target(args) as target:
        config = flowscope.FlowScopeConfig(flow_names=target.flow_names)
        with flowscope.instrument(
            httpx.Client(base_url=target.api_base, timeout=10), config=config
        ) as client:
            client.headers["Authorization"] = f"Bearer {fetch_token(client, target)}"
            server = make_server(
                "127.0.0.1", args.port, make_app(client, target.flow_id), handler_class=QuietHandler
            )
            base = f"http://127.0.0.1:{server.server_port}"
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            print(f"web app on {base}  (/launch?flow={target.flow_id}, /metrics)")
            try:
                if args.serve:
                    thread.join()
                else:
                    exercise(base, target)
            except KeyboardInterrupt:
                pass
            finally:
                server.shutdown()
                server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

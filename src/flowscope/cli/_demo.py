"""``flowscope demo``: the sandbox, realistic traffic through an instrumented client, a report.

Everything runs on loopback: the sandbox flow API, the client, and ``/metrics``. The traffic
(``_traffic.py``, with fake inputs from ``_fake.py``) is a seeded mix of good launches and the
mistakes people really make, so the spans, metrics and report show what flowscope is for. This
module wires them together; the report (``_report.py``) is built from the calls' records, as
any ``on_record`` sink would see them.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ._common import CliError, LastRecord, otlp_target, reachable, shown_url, tracer_provider

__all__ = ["add_parser", "run"]


def add_parser(commands: Any) -> None:
    """Register ``demo`` on the top-level subcommand set."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "demo",
        help="drive realistic flow traffic through flowscope and report (no setup needed)",
        description=(
            "Start the sandbox flow API on loopback, drive a seeded mix of good launches and "
            "common mistakes through an instrumented httpx client, serve /metrics, and end "
            "with a per-flow report."
        ),
    )
    parser.add_argument(
        "--duration", type=float, default=20.0, metavar="SECONDS", help="default: 20"
    )
    parser.add_argument(
        "--rate", type=float, default=12.0, metavar="CALLS_PER_SECOND", help="default: 12"
    )
    parser.add_argument("--seed", type=int, default=7, help="default: 7")
    parser.add_argument(
        "--metrics-port", type=int, default=9464, metavar="PORT", help="0 picks a free port"
    )
    parser.add_argument(
        "--metrics-addr",
        default="127.0.0.1",
        metavar="ADDR",
        help="address /metrics listens on (default 127.0.0.1; 0.0.0.0 for a containerised "
        "Prometheus on Linux)",
    )
    parser.add_argument(
        "--serve",
        action="store_true",
        help="keep the traffic and /metrics running until Ctrl-C (for Grafana)",
    )
    parser.add_argument(
        "--otlp",
        metavar="URL",
        help="export traces over OTLP/HTTP, e.g. http://localhost:4318 "
        "(default: OTEL_EXPORTER_OTLP_ENDPOINT)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not args.serve and not 0 < args.duration <= 3600:
        raise CliError(
            f"--duration must be above 0 and at most 3600 seconds, got {args.duration:g}"
        )
    if not 0 < args.rate <= 200:
        raise CliError(
            f"--rate must be above 0 and at most 200 calls per second, got {args.rate:g}"
        )
    if not 0 <= args.metrics_port <= 65535:
        raise CliError("--metrics-port must be between 0 and 65535")

    import httpx

    from flowscope import CallRecord, FlowScopeConfig, instrument, serve_metrics
    from flowscope.sandbox import Sandbox

    from ._report import CallTally, Report, render_report
    from ._traffic import RATE_LIMIT_PER_MINUTE, UNAVAILABLE_RATE, Traffic

    provider = tracer_provider("flowscope-demo", args.otlp)
    try:
        server, _ = serve_metrics(args.metrics_port, args.metrics_addr)
    except OSError as exc:
        provider.shutdown()
        raise CliError(
            f"cannot serve metrics on {args.metrics_addr}:{args.metrics_port}: "
            f"{exc.strerror or exc} "
            "(use --metrics-port 0 for a free port)",
            1,
        ) from None
    shown_host = "127.0.0.1" if args.metrics_addr in ("0.0.0.0", "::", "") else args.metrics_addr
    metrics_url = f"http://{shown_host}:{server.server_port}/metrics"
    out = sys.stdout
    tally = CallTally()
    last = LastRecord()

    def on_record(record: CallRecord) -> None:
        tally(record)
        last(record)

    try:
        with Sandbox(
            rate_limit_per_minute=RATE_LIMIT_PER_MINUTE,
            unavailable_rate=UNAVAILABLE_RATE,
            seed=args.seed,
        ) as sandbox:
            flows = sandbox.flows
            config = FlowScopeConfig(flow_names={flow.id: flow.name for flow in flows})
            target = otlp_target(args.otlp)
            traces = shown_url(target) if target else None
            traces_line = "recorded, not exported (use --otlp URL)"
            if traces:
                traces_line = f"OTLP/HTTP to {traces}"
                if not reachable(target or ""):
                    traces_line += "  (nothing answers there yet: spans will be dropped)"
            out.write(
                "\n".join(
                    [
                        "flowscope demo",
                        f"  sandbox flow API  {sandbox.url}",
                        f"  metrics           {metrics_url}",
                        f"  traces            {traces_line}",
                        "  traffic           "
                        + (
                            f"{args.rate:g} calls/s until Ctrl-C"
                            if args.serve
                            else f"{args.rate:g} calls/s for {args.duration:g} s"
                        )
                        + f", seed {args.seed}",
                        "",
                    ]
                )
                + "\n"
            )
            out.flush()
            with httpx.Client(base_url=sandbox.url, timeout=10) as plain:
                client = instrument(
                    plain, config=config, tracer_provider=provider, on_record=on_record
                )
                traffic = Traffic(
                    client,
                    sandbox,
                    rate=float(args.rate),
                    duration=None if args.serve else float(args.duration),
                    seed=args.seed,
                    tally=tally,
                    last=last,
                )
                interrupted = traffic.run()
            report = Report.build(tally, traffic.examples, traffic.stats, flows)
        render_report(report, out, interrupted=interrupted and not args.serve)
        out.write(f"\nmetrics were served at {metrics_url}")
        out.write(f"; traces were sent to {traces}\n" if traces else "\n")
        out.flush()
    finally:
        server.shutdown()
        server.server_close()
        provider.shutdown()
    return 0

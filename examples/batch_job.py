"""A batch job: launch every flow listed in a CSV, follow each execution to its outcome, then
push flowscope's metrics to a Prometheus Pushgateway as the process exits (nothing scrapes a
job that is already gone).

Against a sandbox started here, or against your org (``GENESYS_CLIENT_ID``/``_SECRET``)::

    python examples/batch_job.py launches.csv --pushgateway localhost:9091
    python examples/batch_job.py launches.csv --pushgateway localhost:9091 \\
        --api-base https://api.mypurecloud.com --run-id "$(date +%F)"

The CSV has a ``flow_id`` column and one column per flow input (``Flow.customerId``...); a cell
that reads as JSON (``1042``, ``true``) is sent as that value, any other as text, an empty one
not at all.
"""

from __future__ import annotations

import argparse
import atexit
import csv
import json
import logging
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from _target import LAUNCH, api_target, fetch_token, parse_args

import flowscope


def read_launches(path: Path) -> list[dict[str, Any]]:
    """One launch body per CSV row."""
    launches = []
    with path.open(newline="", encoding="utf-8") as rows:
        for row in csv.DictReader(rows):
            flow_id = row.pop("flow_id")
            inputs = {key: _cell(value) for key, value in row.items() if key and value}
            launches.append({"flowId": flow_id, "inputData": inputs})
    return launches


def _cell(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", type=Path, help="the launches: flow_id, then one column per input")
    parser.add_argument("--pushgateway", required=True, help="host:port of the Pushgateway")
    parser.add_argument("--job", default="flow-launches", help="the job label of the push")
    parser.add_argument("--run-id", help="this run's grouping key (default: a new UUID)")
    args = parse_args(None, parser)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    launches = read_launches(args.csv)
    args.flow_id = args.flow_id or launches[0]["flowId"]
    run_id = args.run_id or str(uuid.uuid4())

    # The one line a batch job needs: push when the process exits, one group per run.
    atexit.register(
        flowscope.push_metrics, args.pushgateway, args.job, grouping_key={"run": run_id}
    )

    answered: Counter[int] = Counter()
    outcomes: Counter[str] = Counter()

    def count_outcome(record: flowscope.CallRecord) -> None:
        if record.execution is not None and record.execution.counted:
            outcomes[record.execution.status] += 1

    with api_target(args) as target:
        # follow_executions: flowscope polls each launch to its outcome, so the pushed metrics
        # say how the flows ended, not only that they started.
        config = flowscope.FlowScopeConfig(flow_names=target.flow_names, follow_executions=True)
        with flowscope.instrument(
            httpx.Client(base_url=target.api_base, timeout=30),
            config=config,
            on_record=count_outcome,
        ) as client:
            client.headers["Authorization"] = f"Bearer {fetch_token(client, target)}"
            for body in launches:
                answered[client.post(LAUNCH, json=body).status_code] += 1
            flowscope.wait_for_executions(client, timeout=300)
    summary = ", ".join(f"{n} answered {status}" for status, n in sorted(answered.items()))
    ended = ", ".join(f"{n} {status}" for status, n in sorted(outcomes.items())) or "none"
    print(f"run {run_id}: {len(launches)} launches ({summary}); outcomes: {ended}")
    print(f"pushing to {args.pushgateway}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""SPEC §12 short-lived jobs: a job process launches flows against the sandbox, pushes its
metrics to a real Pushgateway as it exits, and a real Prometheus scraping the Pushgateway
returns exactly the counts of what the job did."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flowscope.sandbox import Sandbox

from .prometheus_server import PrometheusServer
from .pushgateway import Pushgateway
from .test_examples import run_example

ORDER_STATUS = "9b1f3c2e-6a4d-4e8b-9f21-3c7d5a0e8b14"
LEGACY_SURVEY = "7a0c2e94-1f3b-4d6a-8e57-b9c1d4f2a083"  # deleted: launches answer 410
SECRET = "batch-test-secret-7c2e"
LAUNCHES = f"""flow_id,Flow.customerId,Flow.orderNumber,Flow.isVip
{ORDER_STATUS},C-1,1042,true
{ORDER_STATUS},C-2,7,false
{ORDER_STATUS},C-3,,
{ORDER_STATUS},C-4,,maybe
{LEGACY_SURVEY},,,
"""


@pytest.fixture(scope="module")
def pushgateway() -> Iterator[Pushgateway]:
    with Pushgateway() as running:
        yield running


def test_batch_job_pushes_at_exit_and_prometheus_scrapes_the_exact_counts(
    prometheus: PrometheusServer, pushgateway: Pushgateway, tmp_path: Path
) -> None:
    launches = tmp_path / "launches.csv"
    launches.write_text(LAUNCHES)
    with Sandbox(client_secret=SECRET, seed=5) as sandbox:
        out = run_example(
            "batch_job.py",
            str(launches),
            "--pushgateway",
            pushgateway.address,
            "--job",
            "nightly-launches",
            "--run-id",
            "run-42",
            "--api-base",
            sandbox.url,
            env={"GENESYS_CLIENT_ID": sandbox.client_id, "GENESYS_CLIENT_SECRET": SECRET},
        )
        assert sandbox.stats["launch"] == 5
    summary, pushing = out.stdout.splitlines()[-2:]
    assert summary.startswith(
        "run run-42: 5 launches (3 answered 200, 1 answered 400, 1 answered 410); outcomes: "
    )
    # The three accepted launches were followed to their outcomes before the job exited.
    counts = summary.split("outcomes: ")[1].split(", ")
    ended = {status: int(n) for n, status in (part.split(" ") for part in counts)}
    assert sum(ended.values()) == 3
    assert set(ended) <= {"COMPLETED", "FAILED"}
    assert pushing == f"pushing to {pushgateway.address}"

    prometheus.set_targets([pushgateway.address], honor_labels=True)
    try:
        pushed = '{job="nightly-launches", run="run-42"}'
        launched = '{job="nightly-launches", run="run-42", operation!="get_execution"}'
        result = prometheus.wait_for(f"flowscope_requests_total{launched}", lambda r: len(r) == 4)
        requests = {
            (s["metric"]["flow"], s["metric"]["operation"], s["metric"]["status_code"]): float(
                s["value"][1]
            )
            for s in result
        }
        assert requests == {
            (ORDER_STATUS, "launch", "200"): 3,
            (ORDER_STATUS, "launch", "400"): 1,
            (LEGACY_SURVEY, "launch", "410"): 1,
            ("__none__", "token", "200"): 1,
        }
        errors = prometheus.query(f"flowscope_errors_total{pushed}")
        assert {(s["metric"]["error_code"], float(s["value"][1])) for s in errors} == {
            ("invalid.value", 1.0),
            ("architect.flow.deleted", 1.0),
        }
        # Each execution counted once, however often it was polled, with the job's outcomes.
        executions = prometheus.query(f"flowscope_executions_total{pushed}")
        assert {
            (s["metric"]["flow"], s["metric"]["status"]): float(s["value"][1]) for s in executions
        } == {(ORDER_STATUS, status): float(n) for status, n in ended.items()}
        polls = prometheus.query(
            'sum(flowscope_requests_total{job="nightly-launches", operation="get_execution"})'
        )
        durations = prometheus.query(f"flowscope_request_duration_seconds_count{pushed}")
        assert {s["metric"]["flow"]: float(s["value"][1]) for s in durations} == {
            ORDER_STATUS: 4.0 + float(polls[0]["value"][1]),
            LEGACY_SURVEY: 1.0,
            "__none__": 1.0,
        }
    finally:
        prometheus.set_targets([], honor_labels=True)

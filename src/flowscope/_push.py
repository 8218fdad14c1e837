"""Push the metrics of a short-lived job to a Prometheus Pushgateway: a batch that launches
flows and exits is gone before any scrape."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, push_to_gateway

__all__ = ["push_metrics"]


def push_metrics(
    gateway: str,
    job: str,
    *,
    registry: CollectorRegistry | None = None,
    grouping_key: dict[str, str] | None = None,
    timeout: float | None = 30,
) -> None:
    """Push ``registry`` (default: the one flowscope writes to) to the Pushgateway at ``gateway``.

    prometheus-client's ``push_to_gateway``: the push replaces whatever the group
    ``job`` + ``grouping_key`` held, so give each run its own key (``{"run": run_id}``) to keep
    runs apart, or the same key to keep only the last run. Call it once the job is done, e.g.
    ``atexit.register(flowscope.push_metrics, "localhost:9091", "nightly-launches")``. Raises
    what the push raises (``URLError``, ``HTTPError``): unlike a failed call's metrics, a lost
    push is something the job should hear about.
    """
    if registry is None:
        from ._metrics import default_metrics

        registry = default_metrics().registry
    push_to_gateway(gateway, job=job, registry=registry, grouping_key=grouping_key, timeout=timeout)

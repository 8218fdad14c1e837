"""What one instrumented client shares: the record builder, its sinks, and fail-open counting.

One call flows one way through it::

    Engine.begin -> (the call) -> Engine.finish / Engine.fail -> CallRecord
        -> Sinks.publish: span (_otel) | metrics (_metrics) | log (_sinks) | on_record (yours)
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from ._config import FlowScopeConfig
from ._engine import Engine
from ._executions import ExecutionStore
from ._internal import InternalErrors
from ._otel import write_span
from ._redact import Redactor
from ._sinks import Sink, Sinks, log_failure

if TYPE_CHECKING:
    from ._labels import MetricsSink

__all__ = ["Pipeline", "execution_store"]

_stores: WeakKeyDictionary[object, ExecutionStore] = WeakKeyDictionary()
_stores_lock = threading.Lock()


def execution_store(metrics: MetricsSink, config: FlowScopeConfig) -> ExecutionStore:
    """The launched executions remembered for ``metrics``: one store per metrics instance, so
    per process with the default one. A launch on one client and its polls on another meet here.

    The first config to ask sets the bounds.
    """
    with _stores_lock:
        store = _stores.get(metrics)
        if store is None:
            store = _stores[metrics] = ExecutionStore(
                config.max_tracked_executions, config.execution_ttl_s
            )
        return store


class Pipeline:
    """Built once per :func:`flowscope.instrument` call (or per transport made on its own)."""

    def __init__(
        self,
        config: FlowScopeConfig | None,
        metrics: MetricsSink | None,
        on_record: Sink | None = None,
    ) -> None:
        config = config or FlowScopeConfig()
        if metrics is None:
            from ._metrics import default_metrics

            metrics = default_metrics()
        self.config = config
        self.metrics = metrics
        self.redactor = Redactor(
            redact_keys=config.redact_keys,
            redact_patterns=config.redact_patterns,
            redact_pii=config.redact_pii,
        )
        self.internal_error = InternalErrors(metrics, self.redactor)
        self.executions = execution_store(metrics, config)
        self.engine = Engine(
            config, self.redactor, self.internal_error, executions=self.executions
        )
        sinks: list[tuple[str, Sink]] = [("span", write_span), ("metrics", metrics.observe)]
        if config.log_failures:
            sinks.append(("log", log_failure))
        if on_record is not None:
            sinks.append(("sink", on_record))
        self.sinks = Sinks(sinks, self.internal_error)

"""What one instrumented client shares: the record builder, its sinks, and fail-open counting.

One call flows one way through it::

    Engine.begin -> (the call) -> Engine.finish / Engine.fail -> CallRecord
        -> Sinks.publish: span (_otel) | metrics (_metrics) | log (_sinks) | on_record (yours)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._config import FlowScopeConfig
from ._engine import Engine
from ._internal import InternalErrors
from ._otel import write_span
from ._redact import Redactor
from ._sinks import Sink, Sinks, log_failure

if TYPE_CHECKING:
    from ._metrics import FlowMetrics

__all__ = ["Pipeline"]


class Pipeline:
    """Built once per :func:`flowscope.instrument` call (or per transport made on its own)."""

    def __init__(
        self,
        config: FlowScopeConfig | None,
        metrics: FlowMetrics | None,
        on_record: Sink | None = None,
    ) -> None:
        config = config or FlowScopeConfig()
        if metrics is None:
            from ._metrics import default_metrics

            metrics = default_metrics()
        self.config = config
        self.metrics = metrics
        self.redactor = Redactor(
            redact_keys=config.redact_keys, redact_patterns=config.redact_patterns
        )
        self.internal_error = InternalErrors(metrics, self.redactor)
        self.engine = Engine(config, self.redactor, self.internal_error)
        sinks: list[tuple[str, Sink]] = [("span", write_span), ("metrics", metrics.observe)]
        if config.log_failures:
            sinks.append(("log", log_failure))
        if on_record is not None:
            sinks.append(("sink", on_record))
        self.sinks = Sinks(sinks, self.internal_error)

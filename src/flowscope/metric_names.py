"""The names of flowscope's Prometheus metrics, as exported with the default namespace.

Users' dashboards and alerts depend on these names (the README's metrics table). The metrics
sink, the demo's report, the dashboard generator and the shipped rules all take them from here::

    from flowscope import metric_names
    f"sum by (flow) (rate({metric_names.REQUESTS}[5m]))"
"""

from __future__ import annotations

__all__ = [
    "DURATION",
    "DURATION_BUCKET",
    "DURATION_COUNT",
    "ERRORS",
    "ERROR_FIELDS",
    "EXECUTIONS",
    "EXECUTIONS_IN_FLIGHT",
    "EXECUTION_DURATION",
    "EXECUTION_DURATION_BUCKET",
    "EXECUTION_DURATION_COUNT",
    "FOLLOW_DROPPED",
    "INTERNAL_ERRORS",
    "LABEL_OVERFLOW",
    "NAMESPACE",
    "RATELIMIT_ALLOWED",
    "RATELIMIT_RESET",
    "RATELIMIT_USED",
    "REQUESTS",
    "RETRY_AFTER",
    "RETRY_AFTER_BUCKET",
    "TRANSPORT_ERRORS",
]

#: The default ``FlowMetrics(namespace=...)``; every name below starts with it and ``_``.
NAMESPACE = "flowscope"

#: Counter: flow calls that got a response (``flow``, ``operation``, ``method``, ``status_code``).
REQUESTS = "flowscope_requests_total"
#: Histogram: duration of flow calls (``flow``).
DURATION = "flowscope_request_duration_seconds"
DURATION_BUCKET = DURATION + "_bucket"
DURATION_COUNT = DURATION + "_count"
#: Counter: answers with status >= 400 (``flow``, ``operation``, ``status_code``, ``error_code``).
ERRORS = "flowscope_errors_total"
#: Counter: fields named by error responses (``flow``, ``operation``, ``field``).
ERROR_FIELDS = "flowscope_error_fields_total"
#: Counter: calls that failed without a response (``flow``, ``operation``, ``exception``).
TRANSPORT_ERRORS = "flowscope_transport_errors_total"
#: Counter: label values folded into ``__other__`` (``label``).
LABEL_OVERFLOW = "flowscope_label_overflow_total"
#: Counter: errors inside flowscope itself (``stage``).
INTERNAL_ERRORS = "flowscope_internal_errors_total"
#: Histogram: ``Retry-After`` of 429 answers, in seconds (``flow``, ``operation``).
RETRY_AFTER = "flowscope_retry_after_seconds"
RETRY_AFTER_BUCKET = RETRY_AFTER + "_bucket"
#: Gauge: ``inin-ratelimit-allowed`` of the last response from a host (``host``).
RATELIMIT_ALLOWED = "flowscope_ratelimit_allowed"
#: Gauge: ``inin-ratelimit-count``, requests counted in the current window (``host``).
RATELIMIT_USED = "flowscope_ratelimit_used"
#: Gauge: seconds until the rate-limit window starts again (``host``).
RATELIMIT_RESET = "flowscope_ratelimit_reset_seconds"
#: Counter: executions by outcome, once each (``flow``, ``status``, ``error_code``).
EXECUTIONS = "flowscope_executions_total"
#: Histogram: dateCompleted - dateLaunched of each execution, once (``flow``, ``status``).
EXECUTION_DURATION = "flowscope_execution_duration_seconds"
EXECUTION_DURATION_BUCKET = EXECUTION_DURATION + "_bucket"
EXECUTION_DURATION_COUNT = EXECUTION_DURATION + "_count"
#: Gauge: executions launched here whose outcome is not seen yet (``flow``).
EXECUTIONS_IN_FLIGHT = "flowscope_executions_in_flight"
#: Counter: launches follow_executions gave up on (``reason``: queue_full, timeout, gone).
FOLLOW_DROPPED = "flowscope_follow_dropped_total"

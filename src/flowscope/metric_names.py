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
    "INTERNAL_ERRORS",
    "LABEL_OVERFLOW",
    "NAMESPACE",
    "REQUESTS",
    "TRANSPORT_ERRORS",
]

#: The default ``FlowMetrics(namespace=...)``; every name below starts with it and ``_``.
NAMESPACE = "flowscope"

#: Counter: flow calls that got a response (``flow``, ``operation``, ``method``, ``status_code``).
REQUESTS = "flowscope_requests_total"
#: Histogram: duration of flow calls (``flow``, ``operation``, ``outcome``).
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

"""flowscope: see what your Genesys Cloud flow-execution calls are doing.

Drop it into an existing httpx client::

    import httpx, flowscope
    client = flowscope.instrument(httpx.Client(base_url="https://api.mypurecloud.com"))

Every flow call then gets one OpenTelemetry span with the full (redacted) error body, the
failing fields, the correlation id and payload hints, and per-flow Prometheus metrics.
"""

from __future__ import annotations

import logging

from ._config import FlowScopeConfig
from ._errors import ErrorReport, parse_error_body
from ._hints import Hint, diagnose_launch, diagnose_payload
from ._instrument import instrument, uninstrument
from ._metrics import FlowMetrics, make_asgi_app, make_wsgi_app, serve_metrics
from ._record import CallRecord, CapturedBody, RecordedError
from ._redact import Redactor
from ._routes import DEFAULT_ROUTES, Route
from ._setup_tracing import setup_tracing
from ._transport import AsyncFlowScopeTransport, FlowScopeTransport

__version__ = "0.1.0"

# A library logs; the application decides where records go (no "No handlers" fallback output).
logging.getLogger("flowscope").addHandler(logging.NullHandler())

__all__ = [
    "DEFAULT_ROUTES",
    "AsyncFlowScopeTransport",
    "CallRecord",
    "CapturedBody",
    "ErrorReport",
    "FlowMetrics",
    "FlowScopeConfig",
    "FlowScopeTransport",
    "Hint",
    "RecordedError",
    "Redactor",
    "Route",
    "__version__",
    "diagnose_launch",
    "diagnose_payload",
    "instrument",
    "make_asgi_app",
    "make_wsgi_app",
    "parse_error_body",
    "serve_metrics",
    "setup_tracing",
    "uninstrument",
]

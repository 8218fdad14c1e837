"""Overhead, memory and cardinality benchmarks for flowscope.

``python -m benchmarks`` runs every scenario in one process and writes ``benchmarks/REPORT.md``;
``python -m benchmarks --smoke`` runs them all with tiny sizes so they cannot rot.

Every traced contender uses the stable HTTP semantic conventions, so the OpenTelemetry transport
alone does the same attribute work as the one inside flowscope.
"""

from __future__ import annotations

import os

# Read once, when the httpx instrumentation first initialises: set before anything imports it.
os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "http"

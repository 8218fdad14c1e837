"""A loopback imitation of the Genesys Cloud flow-execution API.

Used by the demo, the examples, the test suite and the benchmarks: a real HTTP server, so what
flowscope sees is what it would see on the wire, and an in-process httpx transport over the same
model (:meth:`Sandbox.transport`) where speed matters more. It answers ``POST /oauth/token``,
``POST /api/v2/flows/executions``, ``GET /api/v2/flows/executions/{id}`` and
``GET /api/v2/flows/{flowId}[/versions[/{v}]|/latestconfiguration]``.

The status codes, error codes, error-body shape and headers follow the platform. The exact
messages the platform returns for each launch mistake are not published, so the messages,
``details`` and ``messageParams`` here are a model of them.

Layout: ``_api`` is the API model (:class:`FlowApi`, no I/O), ``_errors`` its error bodies,
``_documents`` its success bodies, ``_inputs`` the input-schema checks (jsonschema), ``_http`` the
stdlib server, ``_sandbox`` the :class:`Sandbox` that ties them together, ``_main`` the command.

The library never imports this package.
"""

from __future__ import annotations

from ._api import MAX_BODY_BYTES, FlowApi, Reply
from ._flows import SandboxFlow, default_flows
from ._main import add_arguments, main, run_forever, serve
from ._sandbox import Sandbox

__all__ = [
    "MAX_BODY_BYTES",
    "FlowApi",
    "Reply",
    "Sandbox",
    "SandboxFlow",
    "add_arguments",
    "default_flows",
    "main",
    "run_forever",
    "serve",
]

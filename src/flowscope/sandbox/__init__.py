"""A loopback imitation of the Genesys Cloud flow-execution API.

Used by the demo, the examples, the test suite and the benchmarks: a real HTTP server, so what
flowscope sees is what it would see on the wire. It answers ``POST /oauth/token``,
``POST /api/v2/flows/executions``, ``GET /api/v2/flows/executions/{id}`` and
``GET /api/v2/flows/{flowId}[/versions[/{v}]|/latestconfiguration]``.

The status codes, error codes, error-body shape and headers follow the platform. The exact
messages the platform returns for each launch mistake are not published, so the messages,
``details`` and ``messageParams`` here are a model of them.

The library never imports this package.
"""

from __future__ import annotations

from ._flows import SandboxFlow, default_flows
from ._main import main, run_forever
from ._server import MAX_BODY_BYTES, Sandbox

__all__ = ["MAX_BODY_BYTES", "Sandbox", "SandboxFlow", "default_flows", "main", "run_forever"]

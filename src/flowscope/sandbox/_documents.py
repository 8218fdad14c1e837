"""The success bodies the sandbox answers with: flows, versions, configurations, executions.

Pure functions of a :class:`SandboxFlow` and a few values, in the platform's shapes.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from ._flows import SandboxFlow

__all__ = [
    "configuration_document",
    "execution_document",
    "flow_document",
    "iso",
    "version_document",
    "version_ref",
    "versions_page",
]


def iso(timestamp: float) -> str:
    """A wall-clock time as the platform writes it: UTC, milliseconds, ``Z``."""
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def version_ref(flow: SandboxFlow) -> dict[str, str]:
    """The ``flowVersion`` reference in flow and execution documents."""
    return {
        "id": flow.version,
        "name": flow.version,
        "selfUri": f"/api/v2/flows/{flow.id}/versions/{flow.version}",
    }


def flow_document(flow: SandboxFlow) -> dict[str, Any]:
    """``GET /api/v2/flows/{flowId}``."""
    return {
        "id": flow.id,
        "name": flow.name,
        "type": "workflow",
        "active": not flow.deleted,
        "deleted": flow.deleted,
        "publishedVersion": version_ref(flow),
        "selfUri": f"/api/v2/flows/{flow.id}",
    }


def version_document(flow: SandboxFlow) -> dict[str, Any]:
    """``GET /api/v2/flows/{flowId}/versions/{version}``: where the input schema is published."""
    return {
        **dict.fromkeys(("id", "name", "commitVersion", "configurationVersion"), flow.version),
        "type": "PUBLISH",
        "secure": False,
        "debug": False,
        "inputSchema": flow.input_schema,
        "outputSchema": flow.output_schema,
        "flow": {"id": flow.id, "name": flow.name, "selfUri": f"/api/v2/flows/{flow.id}"},
        "selfUri": f"/api/v2/flows/{flow.id}/versions/{flow.version}",
    }


def versions_page(flow: SandboxFlow) -> dict[str, Any]:
    """``GET /api/v2/flows/{flowId}/versions``: one page holding the published version."""
    return {
        "entities": [version_document(flow)],
        "pageSize": 25,
        "pageNumber": 1,
        "total": 1,
        "pageCount": 1,
    }


def configuration_document(flow: SandboxFlow) -> dict[str, Any]:
    """``GET /api/v2/flows/{flowId}/latestconfiguration``: the variables, marked in and out."""
    inputs = set(flow.input_schema.get("properties") or {})
    outputs = set(flow.output_schema.get("properties") or {})
    variables = [
        {"name": name, "isInput": name in inputs, "isOutput": name in outputs}
        for name in sorted(inputs | outputs)
    ]
    return {
        "id": flow.id,
        "name": flow.name,
        "type": "workflow",
        "version": flow.version,
        "variables": variables,
        "inputSchema": flow.input_schema,
        "outputSchema": flow.output_schema,
    }


def execution_document(execution_id: str, name: str, flow: SandboxFlow) -> dict[str, Any]:
    """The launch reply; ``GET`` of the execution adds its dates, status and outcome."""
    return {
        "id": execution_id,
        "name": name,
        "flowVersion": version_ref(flow),
        "selfUri": f"/api/v2/flows/executions/{execution_id}",
    }

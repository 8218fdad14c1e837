"""Which calls are flow calls: a small route table from method + path to an operation."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["DEFAULT_ROUTES", "Route", "RouteMatch", "RouteTable"]

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

# Literal segments of the flows API that sit where a `{flowId}` could: a path such as
# `/api/v2/flows/executions` must never be read as "the flow whose id is `executions`".
RESERVED_SEGMENTS = frozenset(
    {
        "executions",
        "instances",
        "divisionviews",
        "lookup",
        "datatables",
        "outcomes",
        "milestones",
        "jobs",
        "actions",
        "export",
        "search",
        "query",
        "publish",
        "checkin",
        "checkout",
        "revert",
        "deploy",
        "history",
        "locks",
        "types",
        "versions",
        "latestconfiguration",
        "configuration",
        "dependencies",
    }
)


@dataclass(frozen=True)
class Route:
    """One row of the route table.

    ``template`` is a path with ``{name}`` parameters. ``{flowId}``, ``{flowExecutionId}`` and
    ``{versionId}`` are understood by flowscope; other names are kept but not interpreted.
    ``method`` may be ``"*"``.
    """

    operation: str
    method: str
    template: str
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _literals: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts: list[str] = []
        pos = 0
        for m in _PARAM.finditer(self.template):
            parts.append(re.escape(self.template[pos : m.start()]))
            parts.append(f"(?P<{m.group(1)}>[^/]+)")
            pos = m.end()
        parts.append(re.escape(self.template[pos:].rstrip("/")))
        object.__setattr__(self, "_pattern", re.compile("".join(parts) + "/?"))
        literal = [s for s in self.template.split("/") if s and not _PARAM.fullmatch(s)]
        object.__setattr__(self, "_literals", len(literal))

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.method != "*" and self.method != method:
            return None
        m = self._pattern.fullmatch(path)
        if m is None:
            return None
        params = m.groupdict()
        if any(v.lower() in RESERVED_SEGMENTS for v in params.values()):
            return None
        return params


@dataclass(frozen=True)
class RouteMatch:
    """A request that matched a route: its operation, template and path parameters."""

    operation: str
    template: str
    params: Mapping[str, str]


DEFAULT_ROUTES: tuple[Route, ...] = (
    Route("launch", "POST", "/api/v2/flows/executions"),
    # Wrong, but common: the flow id put in the path. Seen as launches so the mistake is named.
    Route("launch", "POST", "/api/v2/flows/{flowId}/executions"),
    Route("launch", "POST", "/api/v2/flows/executions/{flowExecutionId}"),
    Route("get_execution", "GET", "/api/v2/flows/executions/{flowExecutionId}"),
    Route("get_flow", "GET", "/api/v2/flows/{flowId}"),
    Route("get_flow", "GET", "/api/v2/flows/{flowId}/versions"),
    Route("get_flow", "GET", "/api/v2/flows/{flowId}/versions/{versionId}"),
    Route("get_flow", "GET", "/api/v2/flows/{flowId}/versions/{versionId}/configuration"),
    Route("get_flow", "GET", "/api/v2/flows/{flowId}/latestconfiguration"),
    Route("token", "POST", "/oauth/token"),
)


class RouteTable:
    """Routes tried most specific first (more literal segments win), then in given order."""

    def __init__(self, routes: Iterable[Route]) -> None:
        ordered = list(routes)
        self.routes: tuple[Route, ...] = tuple(
            sorted(ordered, key=lambda r: (-r._literals, ordered.index(r)))
        )
        # A cheap gate so unmatched calls cost one string test.
        prefixes = {r.template.split("{", 1)[0][:8] for r in self.routes}
        self._prefixes = tuple(sorted(prefixes))

    def match(self, method: str, path: str) -> RouteMatch | None:
        if not path.startswith(self._prefixes):
            return None
        for route in self.routes:
            params = route.match(method, path)
            if params is not None:
                return RouteMatch(route.operation, route.template, params)
        return None

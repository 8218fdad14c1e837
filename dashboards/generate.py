"""Generate flowscope's Grafana dashboards.

The dashboards are code so that every panel gets the same datasource reference, units,
descriptions and ``$__rate_interval`` windows, and so the overview and the drill-down cannot drift
apart. The JSON beside this file is what Grafana loads; regenerate it after editing::

    python dashboards/generate.py           # rewrite the JSON files
    python dashboards/generate.py --check   # exit 1 when the committed JSON is stale

Standard library only: the files target Grafana 11 (schemaVersion 41).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["DASHBOARDS", "detail_dashboard", "main", "overview_dashboard", "render"]

Json = dict[str, Any]

SCHEMA_VERSION = 41
OVERVIEW_UID = "flowscope-overview"
DETAIL_UID = "flowscope-flow-detail"
TAGS = ["flowscope", "genesys"]

#: Every panel and target points at the dashboard's datasource variable, never a fixed uid.
DATASOURCE: Json = {"type": "prometheus", "uid": "${datasource}"}

REQUESTS = "flowscope_requests_total"
DURATION_BUCKET = "flowscope_request_duration_seconds_bucket"
DURATION_COUNT = "flowscope_request_duration_seconds_count"
ERRORS = "flowscope_errors_total"
ERROR_FIELDS = "flowscope_error_fields_total"
TRANSPORT_ERRORS = "flowscope_transport_errors_total"
LABEL_OVERFLOW = "flowscope_label_overflow_total"
BAD_REQUEST = 'status_code="400"'
RATE_LIMITED = 'status_code="429"'

#: A flow's 400 ratio is coloured orange from here and red from twice this; the alert uses it too.
RATIO_WARN = 0.05


def _selector(metric: str, flow: str, *matchers: str) -> str:
    return metric + "{" + ", ".join((flow, *matchers)) + "}"


def _rate(metric: str, flow: str, *matchers: str, fn: str = "rate") -> str:
    return f"{fn}({_selector(metric, flow, *matchers)}[$__rate_interval])"


def ratio_400(flow: str, by: str) -> str:
    """The share of answered calls that got a 400, by ``by``.

    Flows without a single 400 show 0 rather than no data (``or 0 * total``), so a healthy flow
    reads as healthy instead of missing.
    """
    total = f"sum by ({by}) ({_rate(REQUESTS, flow)})"
    bad = f"sum by ({by}) ({_rate(REQUESTS, flow, BAD_REQUEST)})"
    return f"({bad} or 0 * {total}) / {total}"


def latency_quantile(q: float, flow: str, by: str = "le") -> str:
    return f"histogram_quantile({q}, sum by ({by}) ({_rate(DURATION_BUCKET, flow)}))"


# -- building blocks -------------------------------------------------------------------------------


def target(
    expr: str,
    legend: str = "__auto",
    *,
    ref: str = "A",
    instant: bool = False,
    fmt: str = "time_series",
    exemplar: bool = False,
) -> Json:
    """A Prometheus query in code mode (what a user would type)."""
    query: Json = {
        "datasource": DATASOURCE,
        "editorMode": "code",
        "expr": expr,
        "format": fmt,
        "instant": instant,
        "legendFormat": legend,
        "range": not instant,
        "refId": ref,
    }
    if exemplar:
        query["exemplar"] = True
    return query


def thresholds(*steps: tuple[float, str]) -> Json:
    # Grafana treats the first step as -Infinity whatever its value; 0 keeps the schema happy.
    return {"mode": "absolute", "steps": [{"value": v, "color": c} for v, c in steps]}


def link(title: str, url: str, tooltip: str, icon: str = "dashboard") -> Json:
    """A link in the shape Grafana's schema wants for both panel and data links."""
    return {
        "title": title,
        "type": "link",
        "icon": icon,
        "tooltip": tooltip,
        "url": url,
        "tags": [],
        "asDropdown": False,
        "targetBlank": False,
        "includeVars": False,
        "keepTime": True,
    }


def detail_link(flow: str) -> Json:
    """A data link to the flow detail dashboard for the flow named by the ``flow`` expression."""
    url = (
        f"/d/{DETAIL_UID}/flowscope-flow-detail?var-flow={flow}"
        "&${datasource:queryparam}&${__url_time_range}"
    )
    return link(f"Flow detail: {flow}", url, "Open the drill-down dashboard for this flow")


RATIO_THRESHOLDS = thresholds((0, "green"), (RATIO_WARN, "orange"), (2 * RATIO_WARN, "red"))

TIMESERIES_OPTIONS: Json = {
    "legend": {
        "calcs": ["mean", "max", "lastNotNull"],
        "displayMode": "table",
        "placement": "bottom",
        "showLegend": True,
    },
    "tooltip": {"mode": "multi", "sort": "desc"},
}

TIMESERIES_STYLE: Json = {
    "drawStyle": "line",
    "lineInterpolation": "linear",
    "lineWidth": 1,
    "fillOpacity": 10,
    "gradientMode": "none",
    "showPoints": "never",
    "spanNulls": False,
    "axisSoftMin": 0,
    "stacking": {"mode": "none", "group": "A"},
}

STAT_OPTIONS: Json = {
    "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
    "colorMode": "background",
    "graphMode": "area",
    "justifyMode": "auto",
    "orientation": "auto",
    "textMode": "value_and_name",
    "wideLayout": True,
    "showPercentChange": False,
}


class Layout:
    """Places panels left to right on Grafana's 24-column grid and numbers them."""

    def __init__(self) -> None:
        self.panels: list[Json] = []
        self._x = 0
        self._y = 0
        self._row_height = 0

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append(
            {
                "type": "row",
                "id": len(self.panels) + 1,
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": self._y},
                "panels": [],
            }
        )
        self._y += 1

    def add(
        self,
        kind: str,
        title: str,
        description: str,
        targets: list[Json],
        *,
        unit: str,
        size: tuple[int, int],
        options: Json | None = None,
        custom: Json | None = None,
        color: Json | None = None,
        steps: Json | None = None,
        links: list[Json] | None = None,
        min_value: float | None = None,
        max_value: float | None = None,
        decimals: int | None = None,
        transformations: list[Json] | None = None,
    ) -> None:
        width, height = size
        if self._x + width > 24:
            self._newline()
        defaults: Json = {"unit": unit}
        if custom is not None:
            defaults["custom"] = custom
        if color is not None:
            defaults["color"] = color
        if steps is not None:
            defaults["thresholds"] = steps
        if links:
            defaults["links"] = links
        if min_value is not None:
            defaults["min"] = min_value
        if max_value is not None:
            defaults["max"] = max_value
        if decimals is not None:
            defaults["decimals"] = decimals
        panel: Json = {
            "type": kind,
            "id": len(self.panels) + 1,
            "title": title,
            "description": description,
            "datasource": DATASOURCE,
            "gridPos": {"h": height, "w": width, "x": self._x, "y": self._y},
            "targets": targets,
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": options if options is not None else {},
        }
        if transformations:
            panel["transformations"] = transformations
        self.panels.append(panel)
        self._x += width
        self._row_height = max(self._row_height, height)

    def _newline(self) -> None:
        self._y += self._row_height
        self._x = 0
        self._row_height = 0


def datasource_variable() -> Json:
    return {
        "type": "datasource",
        "name": "datasource",
        "label": "Prometheus",
        "description": "The Prometheus that scrapes your flowscope /metrics endpoint.",
        "query": "prometheus",
        "regex": "",
        "refresh": 1,
        "hide": 0,
        "includeAll": False,
        "multi": False,
        "options": [],
    }


def flow_variable(*, multi: bool) -> Json:
    variable: Json = {
        "type": "query",
        "name": "flow",
        "label": "Flow",
        "description": "Flow name (from flow_names) or flow id, as in the flow label.",
        "datasource": DATASOURCE,
        "query": f"label_values({REQUESTS}, flow)",
        "regex": "",
        "refresh": 2,
        "sort": 1,
        "hide": 0,
        "multi": multi,
        "includeAll": multi,
        "options": [],
    }
    if multi:
        variable["allValue"] = ".*"
        variable["current"] = {"selected": True, "text": ["All"], "value": ["$__all"]}
    return variable


def dashboard(
    uid: str,
    title: str,
    description: str,
    panels: list[Json],
    variables: list[Json],
    links: list[Json],
) -> Json:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": TAGS,
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "links": links,
        "templating": {"list": variables},
        "panels": panels,
    }


# -- the dashboards --------------------------------------------------------------------------------


def overview_dashboard() -> Json:
    """Every flow at a glance: where the 400s are, why, and how fast calls are."""
    flow = 'flow=~"$flow"'
    to_detail = detail_link("${__field.labels.flow}")
    # Table rows hold labels as columns, not as field labels.
    row_to_detail = detail_link("${__data.fields.flow}")
    layout = Layout()

    layout.row("400s")
    layout.add(
        "timeseries",
        "400 rate per flow",
        "Share of each flow's answered calls that got HTTP 400 (bad request), usually a payload "
        "mistake. Transport failures are not in the denominator. Click a series for that "
        "flow's drill-down.",
        [target(ratio_400(flow, "flow"), "{{flow}}")],
        unit="percentunit",
        size=(16, 9),
        options=TIMESERIES_OPTIONS,
        custom={**TIMESERIES_STYLE, "thresholdsStyle": {"mode": "line+area"}},
        steps=RATIO_THRESHOLDS,
        links=[to_detail],
        min_value=0,
    )
    layout.add(
        "stat",
        "Worst flow by 400 rate",
        "The flow with the highest 400 rate right now. Orange from 5 %, red from 10 %.",
        [target(f"topk(1, {ratio_400(flow, 'flow')})", "{{flow}}")],
        unit="percentunit",
        size=(8, 9),
        options=STAT_OPTIONS,
        color={"mode": "thresholds"},
        steps=RATIO_THRESHOLDS,
        links=[to_detail],
        decimals=1,
    )

    layout.row("Traffic and errors")
    layout.add(
        "timeseries",
        "Requests by status code",
        "Flow calls per second that got a response, split by HTTP status code.",
        [target(f"sum by (status_code) ({_rate(REQUESTS, flow)})", "{{status_code}}")],
        unit="reqps",
        size=(12, 9),
        options=TIMESERIES_OPTIONS,
        custom=TIMESERIES_STYLE,
    )
    layout.add(
        "bargauge",
        "Top error codes",
        "The error codes (the code field of Genesys error bodies, e.g. bad.request) most seen "
        "in the selected time range, with their HTTP status.",
        [
            target(
                f"topk(10, sum by (error_code, status_code) "
                f"(increase({_selector(ERRORS, flow)}[$__range])))",
                "{{error_code}} ({{status_code}})",
                instant=True,
            )
        ],
        unit="short",
        size=(12, 9),
        options={
            "displayMode": "gradient",
            "orientation": "horizontal",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "showUnfilled": True,
            "valueMode": "color",
            "namePlacement": "auto",
            "sizing": "auto",
            "minVizHeight": 16,
            "minVizWidth": 8,
            "maxVizHeight": 300,
        },
        color={"mode": "continuous-YlRd"},
        decimals=0,
    )
    layout.add(
        "table",
        "Top failing fields",
        "The request fields Genesys named in error responses (details[].fieldName and nested "
        "errors), per flow, over the selected time range: what to fix in the payload first.",
        [
            target(
                f"topk(20, sum by (flow, field) "
                f"(increase({_selector(ERROR_FIELDS, flow)}[$__range])))",
                "__auto",
                instant=True,
                fmt="table",
            )
        ],
        unit="short",
        size=(12, 9),
        options={
            "showHeader": True,
            "cellHeight": "sm",
            "sortBy": [{"displayName": "errors", "desc": True}],
            "footer": {"show": False, "reducer": ["sum"], "countRows": False, "fields": ""},
        },
        decimals=0,
        links=[row_to_detail],
        transformations=[
            {
                "id": "organize",
                "options": {
                    "excludeByName": {"Time": True},
                    "indexByName": {"flow": 0, "field": 1, "Value": 2},
                    "renameByName": {"Value": "errors"},
                },
            }
        ],
    )
    layout.add(
        "timeseries",
        "Latency p50 / p95 / p99",
        "Duration of flow calls, including those that failed without a response. The dots are "
        "exemplars: click one to open that call's trace in Jaeger.",
        [
            target(latency_quantile(0.5, flow), "p50", ref="A", exemplar=True),
            target(latency_quantile(0.95, flow), "p95", ref="B", exemplar=True),
            target(latency_quantile(0.99, flow), "p99", ref="C", exemplar=True),
        ],
        unit="s",
        size=(12, 9),
        options=TIMESERIES_OPTIONS,
        custom=TIMESERIES_STYLE,
    )

    layout.row("Rate limits, transport and cardinality")
    layout.add(
        "timeseries",
        "429 rate (rate limited)",
        "Calls per second answered 429 Too Many Requests. Genesys limits requests per OAuth "
        "client (about 3,000 a minute), so a storm usually hits every flow at once.",
        [target(f"sum by (flow) ({_rate(REQUESTS, flow, RATE_LIMITED)})", "{{flow}}")],
        unit="reqps",
        size=(8, 8),
        options=TIMESERIES_OPTIONS,
        custom=TIMESERIES_STYLE,
    )
    layout.add(
        "timeseries",
        "Transport errors",
        "Calls per second that failed without any HTTP response (timeouts, refused or reset "
        "connections), by exception type.",
        [
            target(
                f"sum by (flow, exception) ({_rate(TRANSPORT_ERRORS, flow)})",
                "{{flow}}: {{exception}}",
            )
        ],
        unit="reqps",
        size=(8, 8),
        options=TIMESERIES_OPTIONS,
        custom=TIMESERIES_STYLE,
    )
    layout.add(
        "timeseries",
        "Label overflow (cardinality guard)",
        "Label values folded into __other__ per second because the flow, field or error_code "
        "label reached its limit. Anything above zero means some series are merged: raise "
        "max_flows / max_fields / max_error_codes or map flow ids to names.",
        [target(f"sum by (label) (rate({LABEL_OVERFLOW}[$__rate_interval]))", "{{label}}")],
        unit="cps",
        size=(8, 8),
        options=TIMESERIES_OPTIONS,
        custom=TIMESERIES_STYLE,
    )

    return dashboard(
        OVERVIEW_UID,
        "flowscope / Flows overview",
        "Genesys Cloud flow calls made through flowscope: 400 rates, error codes, failing "
        "fields, latency with trace exemplars, rate limiting and transport errors.",
        layout.panels,
        [datasource_variable(), flow_variable(multi=True)],
        [
            {
                "title": "Flow detail",
                "type": "dashboards",
                "icon": "external link",
                "tooltip": "Drill down into one flow",
                "tags": ["flowscope"],
                "asDropdown": False,
                "targetBlank": False,
                "includeVars": True,
                "keepTime": True,
            }
        ],
    )


def detail_dashboard() -> Json:
    """One flow in depth: which operation fails, with which code, on which field."""
    flow = 'flow="$flow"'
    layout = Layout()

    layout.row("$flow")
    layout.add(
        "stat",
        "Request rate",
        "Calls per second to this flow that got a response.",
        [target(f"sum({_rate(REQUESTS, flow)})", "requests")],
        unit="reqps",
        size=(6, 5),
        options=STAT_OPTIONS,
        color={"mode": "fixed", "fixedColor": "blue"},
    )
    layout.add(
        "stat",
        "400 rate",
        "Share of this flow's answered calls that got HTTP 400. Orange from 5 %, red from 10 %.",
        [target(ratio_400(flow, "flow"), "400 rate")],
        unit="percentunit",
        size=(6, 5),
        options=STAT_OPTIONS,
        color={"mode": "thresholds"},
        steps=RATIO_THRESHOLDS,
        decimals=1,
    )
    layout.add(
        "stat",
        "p95 latency",
        "95th percentile duration of this flow's calls, failures included.",
        [target(latency_quantile(0.95, flow), "p95")],
        unit="s",
        size=(6, 5),
        options=STAT_OPTIONS,
        color={"mode": "fixed", "fixedColor": "purple"},
    )
    layout.add(
        "stat",
        "Transport errors in range",
        "Calls to this flow that got no response at all in the selected time range.",
        [
            target(
                f"sum(increase({_selector(TRANSPORT_ERRORS, flow)}[$__range])) or vector(0)",
                "transport errors",
                instant=True,
            )
        ],
        unit="short",
        size=(6, 5),
        options=STAT_OPTIONS,
        color={"mode": "thresholds"},
        steps=thresholds((0, "green"), (1, "red")),
        decimals=0,
    )

    layout.row("Traffic")
    layout.add(
        "timeseries",
        "Requests by operation and status",
        "Calls per second by operation (launch, get_execution, get_flow) and HTTP status code.",
        [
            target(
                f"sum by (operation, status_code) ({_rate(REQUESTS, flow)})",
                "{{operation}} {{status_code}}",
            )
        ],
        unit="reqps",
        size=(12, 8),
        options=TIMESERIES_OPTIONS,
        custom=TIMESERIES_STYLE,
    )
    layout.add(
        "timeseries",
        "400 rate by operation",
        "Share of answered calls that got HTTP 400, per operation of this flow.",
        [target(ratio_400(flow, "operation"), "{{operation}}")],
        unit="percentunit",
        size=(12, 8),
        options=TIMESERIES_OPTIONS,
        custom={**TIMESERIES_STYLE, "thresholdsStyle": {"mode": "line"}},
        steps=RATIO_THRESHOLDS,
        min_value=0,
    )
    layout.add(
        "timeseries",
        "Outcomes",
        "All calls per second by outcome: success, client_error (4xx), server_error (5xx) and "
        "transport_error (no response).",
        [target(f"sum by (outcome) ({_rate(DURATION_COUNT, flow)})", "{{outcome}}")],
        unit="reqps",
        size=(8, 8),
        options=TIMESERIES_OPTIONS,
        custom=TIMESERIES_STYLE,
    )
    layout.add(
        "timeseries",
        "429 rate (rate limited)",
        "This flow's calls per second answered 429 Too Many Requests.",
        [target(f"sum by (operation) ({_rate(REQUESTS, flow, RATE_LIMITED)})", "{{operation}}")],
        unit="reqps",
        size=(8, 8),
        options=TIMESERIES_OPTIONS,
        custom=TIMESERIES_STYLE,
    )
    layout.add(
        "timeseries",
        "Transport errors",
        "This flow's calls per second that failed without a response, by exception type.",
        [
            target(
                f"sum by (operation, exception) ({_rate(TRANSPORT_ERRORS, flow)})",
                "{{operation}}: {{exception}}",
            )
        ],
        unit="reqps",
        size=(8, 8),
        options=TIMESERIES_OPTIONS,
        custom=TIMESERIES_STYLE,
    )

    layout.row("Latency")
    layout.add(
        "timeseries",
        "Latency p50 / p95 / p99",
        "Duration of this flow's calls. The dots are exemplars: click one to open that call's "
        "trace in Jaeger, with the error body, the request body and the payload hints.",
        [
            target(latency_quantile(0.5, flow), "p50", ref="A", exemplar=True),
            target(latency_quantile(0.95, flow), "p95", ref="B", exemplar=True),
            target(latency_quantile(0.99, flow), "p99", ref="C", exemplar=True),
        ],
        unit="s",
        size=(12, 9),
        options=TIMESERIES_OPTIONS,
        custom=TIMESERIES_STYLE,
    )
    layout.add(
        "heatmap",
        "Latency distribution",
        "Calls per duration bucket over time. Exemplars link to traces in Jaeger.",
        [
            target(
                f"sum by (le) ({_rate(DURATION_BUCKET, flow, fn='increase')})",
                "{{le}}",
                fmt="heatmap",
                exemplar=True,
            )
        ],
        unit="short",
        size=(12, 9),
        options={
            "calculate": False,
            "cellGap": 1,
            "color": {
                "mode": "scheme",
                "scheme": "Oranges",
                "fill": "dark",
                "scale": "exponential",
                "exponent": 0.5,
                "steps": 64,
                "reverse": False,
            },
            "exemplars": {"color": "rgba(255,0,255,0.7)"},
            "filterValues": {"le": 1e-9},
            "legend": {"show": True},
            "rowsFrame": {"layout": "auto"},
            "tooltip": {"mode": "single", "yHistogram": False, "showColorScale": False},
            "yAxis": {"axisPlacement": "left", "reverse": False, "unit": "s"},
            "cellValues": {"unit": "short"},
        },
    )

    layout.row("Errors")
    layout.add(
        "table",
        "Error codes",
        "Error responses of this flow in the selected time range, by operation, HTTP status "
        "and the code in the Genesys error body.",
        [
            target(
                f"sum by (operation, status_code, error_code) "
                f"(increase({_selector(ERRORS, flow)}[$__range]))",
                "__auto",
                instant=True,
                fmt="table",
            )
        ],
        unit="short",
        size=(12, 9),
        options={
            "showHeader": True,
            "cellHeight": "sm",
            "sortBy": [{"displayName": "errors", "desc": True}],
            "footer": {"show": False, "reducer": ["sum"], "countRows": False, "fields": ""},
        },
        decimals=0,
        transformations=[
            {
                "id": "organize",
                "options": {
                    "excludeByName": {"Time": True},
                    "indexByName": {
                        "operation": 0,
                        "status_code": 1,
                        "error_code": 2,
                        "Value": 3,
                    },
                    "renameByName": {"Value": "errors"},
                },
            }
        ],
    )
    layout.add(
        "table",
        "Failing fields",
        "Fields Genesys named in this flow's error responses over the selected time range. "
        "Open a trace from the latency exemplars to read the full error body beside the request "
        "body.",
        [
            target(
                f"sum by (operation, field) (increase({_selector(ERROR_FIELDS, flow)}[$__range]))",
                "__auto",
                instant=True,
                fmt="table",
            )
        ],
        unit="short",
        size=(12, 9),
        options={
            "showHeader": True,
            "cellHeight": "sm",
            "sortBy": [{"displayName": "errors", "desc": True}],
            "footer": {"show": False, "reducer": ["sum"], "countRows": False, "fields": ""},
        },
        decimals=0,
        transformations=[
            {
                "id": "organize",
                "options": {
                    "excludeByName": {"Time": True},
                    "indexByName": {"operation": 0, "field": 1, "Value": 2},
                    "renameByName": {"Value": "errors"},
                },
            }
        ],
    )
    layout.add(
        "timeseries",
        "Error field rate",
        "Failing fields of this flow per second: a new line is a new kind of payload mistake.",
        [target(f"sum by (field) ({_rate(ERROR_FIELDS, flow)})", "{{field}}")],
        unit="cps",
        size=(24, 8),
        options=TIMESERIES_OPTIONS,
        custom=TIMESERIES_STYLE,
    )

    return dashboard(
        DETAIL_UID,
        "flowscope / Flow detail",
        "One Genesys Cloud flow through flowscope: operations, status codes, error codes, "
        "failing fields and latency with trace exemplars.",
        layout.panels,
        [datasource_variable(), flow_variable(multi=False)],
        [
            link(
                "Flows overview",
                f"/d/{OVERVIEW_UID}/flowscope-flows-overview?${{datasource:queryparam}}",
                "Back to all flows",
                icon="arrow-left",
            )
        ],
    )


#: File name beside this script -> the function that builds it.
DASHBOARDS = {
    "flowscope-overview.json": overview_dashboard,
    "flowscope-flow-detail.json": detail_dashboard,
}


def render() -> dict[str, str]:
    """The exact text of every dashboard file, as committed."""
    return {
        name: json.dumps(build(), indent=2, ensure_ascii=False) + "\n"
        for name, build in DASHBOARDS.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if a committed file differs; write nothing"
    )
    args = parser.parse_args(argv)
    here = Path(__file__).resolve().parent
    stale = []
    for name, text in render().items():
        path = here / name
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(name)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    if args.check and stale:
        sys.stderr.write(f"stale: {', '.join(stale)}; run python dashboards/generate.py\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Generate flowscope's Grafana dashboards and Prometheus rules.

The dashboards are code so that every panel gets the same datasource reference, units,
descriptions and ``$__rate_interval`` windows, and so the overview and the drill-down cannot drift
apart. The rules come from here too, so an alert and the panel colouring the same ratio share
one threshold, and every metric name comes from ``flowscope.metric_names``. The JSON and YAML
beside this file are what Grafana and Prometheus load; regenerate them after editing::

    python dashboards/generate.py           # rewrite the files
    python dashboards/generate.py --check   # exit 1 when a committed file is stale

Standard library and flowscope only: the dashboards target Grafana 11 (schemaVersion 41).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flowscope import metric_names

__all__ = [
    "DASHBOARDS",
    "RULES_FILE",
    "detail_dashboard",
    "main",
    "overview_dashboard",
    "render",
    "render_rules",
]

Json = dict[str, Any]

SCHEMA_VERSION = 41
OVERVIEW_UID = "flowscope-overview"
DETAIL_UID = "flowscope-flow-detail"
TAGS = ["flowscope", "genesys"]

#: Every panel and target points at the dashboard's datasource variable, never a fixed uid.
DATASOURCE: Json = {"type": "prometheus", "uid": "${datasource}"}

REQUESTS = metric_names.REQUESTS
DURATION_BUCKET = metric_names.DURATION_BUCKET
DURATION_COUNT = metric_names.DURATION_COUNT
ERRORS = metric_names.ERRORS
ERROR_FIELDS = metric_names.ERROR_FIELDS
TRANSPORT_ERRORS = metric_names.TRANSPORT_ERRORS
LABEL_OVERFLOW = metric_names.LABEL_OVERFLOW
BAD_REQUEST = 'status_code="400"'
RATE_LIMITED = 'status_code="429"'

#: A flow's 400 ratio is coloured orange from here and red from twice this; the alert uses it too.
RATIO_WARN = 0.05
#: The share of rate-limited (429) calls, over all flows, that raises the storm alert.
RATE_LIMITED_WARN = 0.1


def _selector(metric: str, flow: str, *matchers: str) -> str:
    return metric + "{" + ", ".join((flow, *matchers)) + "}"


def _rate(metric: str, flow: str, *matchers: str, fn: str = "rate") -> str:
    return f"{fn}({_selector(metric, flow, *matchers)}[$__rate_interval])"


def _in_range(metric: str, flow: str) -> str:
    """How much ``metric`` grew over the dashboard's whole time range (for instant queries)."""
    return f"increase({_selector(metric, flow)}[$__range])"


def _sum_by(labels: str, expr: str) -> str:
    return f"sum by ({labels}) ({expr})"


def _legend(label: str) -> str:
    return "{{" + label + "}}"


def ratio_400(flow: str, by: str) -> str:
    """The share of answered calls that got a 400, by ``by``.

    Flows without a single 400 show 0 rather than no data (``or 0 * total``), so a healthy flow
    reads as healthy instead of missing.
    """
    total = _sum_by(by, _rate(REQUESTS, flow))
    bad = _sum_by(by, _rate(REQUESTS, flow, BAD_REQUEST))
    return f"({bad} or 0 * {total}) / {total}"


def latency_quantile(q: float, flow: str, by: str = "le") -> str:
    return f"histogram_quantile({q}, {_sum_by(by, _rate(DURATION_BUCKET, flow))})"


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


def fixed_color(color: str) -> Json:
    return {"mode": "fixed", "fixedColor": color}


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
THRESHOLD_COLORS: Json = {"mode": "thresholds"}

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

TABLE_OPTIONS: Json = {
    "showHeader": True,
    "cellHeight": "sm",
    "sortBy": [{"displayName": "errors", "desc": True}],
    "footer": {"show": False, "reducer": ["sum"], "countRows": False, "fields": ""},
}

BARGAUGE_OPTIONS: Json = {
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
}

HEATMAP_OPTIONS: Json = {
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
}


# -- panel shapes ----------------------------------------------------------------------------------


def panel(
    kind: str,
    title: str,
    description: str,
    targets: list[Json],
    *,
    size: tuple[int, int],
    unit: str,
    options: Json,
    custom: Json | None = None,
    color: Json | None = None,
    steps: Json | None = None,
    links: Sequence[Json] = (),
    min_value: float | None = None,
    decimals: int | None = None,
    transformations: Sequence[Json] = (),
) -> Json:
    """Any panel ``size`` (width, height) wide and high; ``place`` numbers and positions it."""
    defaults: Json = {"unit": unit}
    if custom is not None:
        defaults["custom"] = custom
    if color is not None:
        defaults["color"] = color
    if steps is not None:
        defaults["thresholds"] = steps
    if links:
        defaults["links"] = list(links)
    if min_value is not None:
        defaults["min"] = min_value
    if decimals is not None:
        defaults["decimals"] = decimals
    built: Json = {
        "type": kind,
        "id": 0,  # set by place(), here so that it sits where Grafana writes it
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"h": size[1], "w": size[0]},
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
    }
    if transformations:
        built["transformations"] = list(transformations)
    return built


def timeseries(
    title: str,
    description: str,
    targets: list[Json],
    *,
    size: tuple[int, int],
    unit: str = "reqps",
    custom: Json = TIMESERIES_STYLE,
    steps: Json | None = None,
    links: Sequence[Json] = (),
    min_value: float | None = None,
) -> Json:
    return panel(
        "timeseries",
        title,
        description,
        targets,
        size=size,
        unit=unit,
        options=TIMESERIES_OPTIONS,
        custom=custom,
        steps=steps,
        links=links,
        min_value=min_value,
    )


def stat(
    title: str,
    description: str,
    query: Json,
    *,
    size: tuple[int, int],
    unit: str,
    color: Json,
    steps: Json | None = None,
    links: Sequence[Json] = (),
    decimals: int | None = None,
) -> Json:
    return panel(
        "stat",
        title,
        description,
        [query],
        size=size,
        unit=unit,
        options=STAT_OPTIONS,
        color=color,
        steps=steps,
        links=links,
        decimals=decimals,
    )


def counts_table(
    title: str,
    description: str,
    metric: str,
    flow: str,
    columns: Sequence[str],
    *,
    size: tuple[int, int],
    top: int | None = None,
    links: Sequence[Json] = (),
) -> Json:
    """How often each combination of ``columns`` was counted in the time range, most first."""
    expr = _sum_by(", ".join(columns), _in_range(metric, flow))
    if top is not None:
        expr = f"topk({top}, {expr})"
    # The instant query gives each row one "Value" column; show it last, named "errors".
    organize: Json = {
        "id": "organize",
        "options": {
            "excludeByName": {"Time": True},
            "indexByName": {column: i for i, column in enumerate((*columns, "Value"))},
            "renameByName": {"Value": "errors"},
        },
    }
    return panel(
        "table",
        title,
        description,
        [target(expr, instant=True, fmt="table")],
        size=size,
        unit="short",
        options=TABLE_OPTIONS,
        links=links,
        decimals=0,
        transformations=[organize],
    )


def row(title: str) -> Json:
    return {
        "type": "row",
        "id": 0,
        "title": title,
        "collapsed": False,
        "gridPos": {"h": 1, "w": 24},
        "panels": [],
    }


def place(*panels: Json) -> list[Json]:
    """Number ``panels`` and lay them left to right on Grafana's 24-column grid.

    A panel that does not fit in what is left of the line, and every row, starts a new line
    below the tallest panel of the previous one.
    """
    placed: list[Json] = []
    x = y = line_height = 0
    for number, built in enumerate(panels, start=1):
        grid = built["gridPos"]
        if built["type"] == "row" or x + grid["w"] > 24:
            x, y, line_height = 0, y + line_height, 0
        placed.append({**built, "id": number, "gridPos": {**grid, "x": x, "y": y}})
        x += grid["w"]
        line_height = max(line_height, grid["h"])
    return placed


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


# -- what both dashboards show: for the selected flows (by flow) or for one (by operation) --------


def ratio_400_timeseries(
    title: str,
    description: str,
    flow: str,
    by: str,
    *,
    size: tuple[int, int],
    thresholds_style: str,
    links: Sequence[Json] = (),
) -> Json:
    return timeseries(
        title,
        description,
        [target(ratio_400(flow, by), _legend(by))],
        size=size,
        unit="percentunit",
        custom={**TIMESERIES_STYLE, "thresholdsStyle": {"mode": thresholds_style}},
        steps=RATIO_THRESHOLDS,
        links=links,
        min_value=0,
    )


def ratio_400_stat(
    title: str,
    description: str,
    query: Json,
    *,
    size: tuple[int, int],
    links: Sequence[Json] = (),
) -> Json:
    return stat(
        title,
        description,
        query,
        size=size,
        unit="percentunit",
        color=THRESHOLD_COLORS,
        steps=RATIO_THRESHOLDS,
        links=links,
        decimals=1,
    )


def latency_timeseries(description: str, flow: str, *, size: tuple[int, int]) -> Json:
    quantiles = {"A": 0.5, "B": 0.95, "C": 0.99}
    return timeseries(
        "Latency p50 / p95 / p99",
        description,
        [
            target(latency_quantile(q, flow), f"p{round(q * 100)}", ref=ref, exemplar=True)
            for ref, q in quantiles.items()
        ],
        size=size,
        unit="s",
    )


def rate_limited_timeseries(description: str, flow: str, by: str, *, size: tuple[int, int]) -> Json:
    return timeseries(
        "429 rate (rate limited)",
        description,
        [target(_sum_by(by, _rate(REQUESTS, flow, RATE_LIMITED)), _legend(by))],
        size=size,
    )


def transport_errors_timeseries(
    description: str, flow: str, by: str, *, size: tuple[int, int]
) -> Json:
    expr = _sum_by(f"{by}, exception", _rate(TRANSPORT_ERRORS, flow))
    return timeseries(
        "Transport errors",
        description,
        [target(expr, _legend(by) + ": {{exception}}")],
        size=size,
    )


# -- the dashboards --------------------------------------------------------------------------------


def overview_dashboard() -> Json:
    """Every flow at a glance: where the 400s are, why, and how fast calls are."""
    flow = 'flow=~"$flow"'
    to_detail = [detail_link("${__field.labels.flow}")]
    panels = place(
        row("400s"),
        ratio_400_timeseries(
            "400 rate per flow",
            "Share of each flow's answered calls that got HTTP 400 (bad request), usually a "
            "payload mistake. Transport failures are not in the denominator. Click a series for "
            "that flow's drill-down.",
            flow,
            "flow",
            size=(16, 9),
            thresholds_style="line+area",
            links=to_detail,
        ),
        ratio_400_stat(
            "Worst flow by 400 rate",
            "The flow with the highest 400 rate right now. Orange from 5 %, red from 10 %.",
            target(f"topk(1, {ratio_400(flow, 'flow')})", "{{flow}}"),
            size=(8, 9),
            links=to_detail,
        ),
        row("Traffic and errors"),
        timeseries(
            "Requests by status code",
            "Flow calls per second that got a response, split by HTTP status code.",
            [target(_sum_by("status_code", _rate(REQUESTS, flow)), "{{status_code}}")],
            size=(12, 9),
        ),
        panel(
            "bargauge",
            "Top error codes",
            "The error codes (the code field of Genesys error bodies, e.g. bad.request) most "
            "seen in the selected time range, with their HTTP status.",
            [
                target(
                    f"topk(10, {_sum_by('error_code, status_code', _in_range(ERRORS, flow))})",
                    "{{error_code}} ({{status_code}})",
                    instant=True,
                )
            ],
            size=(12, 9),
            unit="short",
            options=BARGAUGE_OPTIONS,
            color={"mode": "continuous-YlRd"},
            decimals=0,
        ),
        counts_table(
            "Top failing fields",
            "The request fields Genesys named in error responses (details[].fieldName and "
            "nested errors), per flow, over the selected time range: what to fix in the payload "
            "first.",
            ERROR_FIELDS,
            flow,
            ("flow", "field"),
            size=(12, 9),
            top=20,
            # Table rows hold labels as columns, not as field labels.
            links=[detail_link("${__data.fields.flow}")],
        ),
        latency_timeseries(
            "Duration of flow calls, including those that failed without a response. The dots "
            "are exemplars: click one to open that call's trace in Jaeger.",
            flow,
            size=(12, 9),
        ),
        row("Rate limits, transport and cardinality"),
        rate_limited_timeseries(
            "Calls per second answered 429 Too Many Requests. Genesys limits requests per OAuth "
            "client (about 3,000 a minute), so a storm usually hits every flow at once.",
            flow,
            "flow",
            size=(8, 8),
        ),
        transport_errors_timeseries(
            "Calls per second that failed without any HTTP response (timeouts, refused or reset "
            "connections), by exception type.",
            flow,
            "flow",
            size=(8, 8),
        ),
        timeseries(
            "Label overflow (cardinality guard)",
            "Label values folded into __other__ per second because the flow, field or "
            "error_code label reached its limit. Anything above zero means some series are "
            "merged: raise max_flows / max_fields / max_error_codes or map flow ids to names.",
            [target(_sum_by("label", f"rate({LABEL_OVERFLOW}[$__rate_interval])"), "{{label}}")],
            size=(8, 8),
            unit="cps",
        ),
    )
    return dashboard(
        OVERVIEW_UID,
        "flowscope / Flows overview",
        "Genesys Cloud flow calls made through flowscope: 400 rates, error codes, failing "
        "fields, latency with trace exemplars, rate limiting and transport errors.",
        panels,
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
    panels = place(
        row("$flow"),
        stat(
            "Request rate",
            "Calls per second to this flow that got a response.",
            target(f"sum({_rate(REQUESTS, flow)})", "requests"),
            size=(6, 5),
            unit="reqps",
            color=fixed_color("blue"),
        ),
        ratio_400_stat(
            "400 rate",
            "Share of this flow's answered calls that got HTTP 400. Orange from 5 %, red from "
            "10 %.",
            target(ratio_400(flow, "flow"), "400 rate"),
            size=(6, 5),
        ),
        stat(
            "p95 latency",
            "95th percentile duration of this flow's calls, failures included.",
            target(latency_quantile(0.95, flow), "p95"),
            size=(6, 5),
            unit="s",
            color=fixed_color("purple"),
        ),
        stat(
            "Transport errors in range",
            "Calls to this flow that got no response at all in the selected time range.",
            target(
                f"sum({_in_range(TRANSPORT_ERRORS, flow)}) or vector(0)",
                "transport errors",
                instant=True,
            ),
            size=(6, 5),
            unit="short",
            color=THRESHOLD_COLORS,
            steps=thresholds((0, "green"), (1, "red")),
            decimals=0,
        ),
        row("Traffic"),
        timeseries(
            "Requests by operation and status",
            "Calls per second by operation (launch, get_execution, get_flow) and HTTP status code.",
            [
                target(
                    _sum_by("operation, status_code", _rate(REQUESTS, flow)),
                    "{{operation}} {{status_code}}",
                )
            ],
            size=(12, 8),
        ),
        ratio_400_timeseries(
            "400 rate by operation",
            "Share of answered calls that got HTTP 400, per operation of this flow.",
            flow,
            "operation",
            size=(12, 8),
            thresholds_style="line",
        ),
        timeseries(
            "Outcomes",
            "All calls per second by outcome: success, client_error (4xx), server_error (5xx) "
            "and transport_error (no response).",
            [target(_sum_by("outcome", _rate(DURATION_COUNT, flow)), "{{outcome}}")],
            size=(8, 8),
        ),
        rate_limited_timeseries(
            "This flow's calls per second answered 429 Too Many Requests.",
            flow,
            "operation",
            size=(8, 8),
        ),
        transport_errors_timeseries(
            "This flow's calls per second that failed without a response, by exception type.",
            flow,
            "operation",
            size=(8, 8),
        ),
        row("Latency"),
        latency_timeseries(
            "Duration of this flow's calls. The dots are exemplars: click one to open that "
            "call's trace in Jaeger, with the error body, the request body and the payload "
            "hints.",
            flow,
            size=(12, 9),
        ),
        panel(
            "heatmap",
            "Latency distribution",
            "Calls per duration bucket over time. Exemplars link to traces in Jaeger.",
            [
                target(
                    _sum_by("le", _rate(DURATION_BUCKET, flow, fn="increase")),
                    "{{le}}",
                    fmt="heatmap",
                    exemplar=True,
                )
            ],
            size=(12, 9),
            unit="short",
            options=HEATMAP_OPTIONS,
        ),
        row("Errors"),
        counts_table(
            "Error codes",
            "Error responses of this flow in the selected time range, by operation, HTTP status "
            "and the code in the Genesys error body.",
            ERRORS,
            flow,
            ("operation", "status_code", "error_code"),
            size=(12, 9),
        ),
        counts_table(
            "Failing fields",
            "Fields Genesys named in this flow's error responses over the selected time range. "
            "Open a trace from the latency exemplars to read the full error body beside the "
            "request body.",
            ERROR_FIELDS,
            flow,
            ("operation", "field"),
            size=(12, 9),
        ),
        timeseries(
            "Error field rate",
            "Failing fields of this flow per second: a new line is a new kind of payload mistake.",
            [target(_sum_by("field", _rate(ERROR_FIELDS, flow)), "{{field}}")],
            size=(24, 8),
            unit="cps",
        ),
    )
    return dashboard(
        DETAIL_UID,
        "flowscope / Flow detail",
        "One Genesys Cloud flow through flowscope: operations, status codes, error codes, "
        "failing fields and latency with trace exemplars.",
        panels,
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


# -- Prometheus rules -------------------------------------------------------------------------------

#: Where the rules file lives, relative to this script.
RULES_FILE = "prometheus/flowscope-rules.yml"

# The rules as Prometheus reads them, with <<NAME>> standing for a metric name or a threshold
# (Prometheus templates use braces and dollars, so neither can mark a placeholder here).
_RULES_TEMPLATE = """# Prometheus recording and alerting rules for flowscope's metrics.
# Generated by dashboards/generate.py: edit it there, then run python dashboards/generate.py.
# Load with `rule_files: [flowscope-rules.yml]`; unit tests: `promtool test rules flowscope-rules.test.yml`.
groups:
  - name: flowscope.recording
    rules:
      # Per-flow rate of calls that got a response.
      - record: flow:flowscope_requests:rate5m
        expr: sum by (flow) (rate(<<REQUESTS>>[5m]))

      # Share of a flow's answered calls that got a 400; 0 (not absent) for flows without 400s.
      - record: flow:flowscope_requests_400:ratio_rate5m
        expr: |
          (
              sum by (flow) (rate(<<REQUESTS>>{status_code="400"}[5m]))
            or
              0 * sum by (flow) (rate(<<REQUESTS>>[5m]))
          )
          /
          sum by (flow) (rate(<<REQUESTS>>[5m]))

      # Per-flow rate of 429 Too Many Requests answers.
      - record: flow:flowscope_requests_429:rate5m
        expr: sum by (flow) (rate(<<REQUESTS>>{status_code="429"}[5m]))

      # Per-flow 95th percentile call duration (failures included).
      - record: flow:flowscope_request_duration_seconds:p95_rate5m
        expr: |
          histogram_quantile(0.95,
            sum by (flow, le) (rate(<<DURATION_BUCKET>>[5m]))
          )

  - name: flowscope.alerts
    rules:
      - alert: FlowScopeFlow400RatioHigh
        # At least one call a minute, so a single failed call on an idle flow does not page.
        expr: |
          flow:flowscope_requests_400:ratio_rate5m > <<RATIO_WARN>>
          and on (flow)
          flow:flowscope_requests:rate5m > 1/60
        for: 10m
        labels:
          severity: warning
        annotations:
          summary: "Flow {{ $labels.flow }}: {{ $value | humanizePercentage }} of calls get 400"
          description: >-
            More than <<RATIO_WARN_PERCENT>> of the calls to flow {{ $labels.flow }} have been answered
            400 Bad Request for 10 minutes, usually a payload mistake. The flowscope flow
            detail dashboard lists the failing fields; a trace exemplar shows the error body
            beside the request body.

      - alert: FlowScopeNewErrorField
        # A (flow, field) pair whose counter series exists now but did not an hour ago: Genesys
        # started rejecting a field it did not reject before (a deploy changed the payload, or
        # the flow's input schema changed). Presence is compared, not increase(), because a
        # counter's first sample is its first increment and increase() cannot see it.
        # <<LABEL_OVERFLOW>> exists from the start, so the last line holds when the
        # application was already scraped an hour ago: a fresh deployment is not all "new".
        expr: |
          (
            count by (flow, field) (<<ERROR_FIELDS>>)
            unless on (flow, field)
            count by (flow, field) (<<ERROR_FIELDS>> offset 1h)
          )
          and on ()
          count(<<LABEL_OVERFLOW>> offset 1h) > 0
        labels:
          severity: info
        annotations:
          summary: "Flow {{ $labels.flow }}: new failing field {{ $labels.field }}"
          description: >-
            Error responses for flow {{ $labels.flow }} name the field {{ $labels.field }},
            which no error named an hour ago.

      - alert: FlowScope429Storm
        # Genesys rate limits count per OAuth client, not per flow: look at all flows together.
        expr: |
          sum by (job) (rate(<<REQUESTS>>{status_code="429"}[5m]))
          /
          sum by (job) (rate(<<REQUESTS>>[5m]))
          > <<RATE_LIMITED_WARN>>
        for: 5m
        labels:
          severity: warning
        annotations:
          summary: "{{ $value | humanizePercentage }} of flow calls are rate limited (429)"
          description: >-
            More than <<RATE_LIMITED_WARN_PERCENT>> of flow calls from {{ $labels.job }} have been answered
            429 Too Many Requests for 5 minutes. Slow down, honour Retry-After, or spread the
            load over more OAuth clients.
"""


def _percent(ratio: float) -> str:
    return f"{ratio * 100:g} %"


def render_rules() -> str:
    """The exact text of the rules file, as committed."""
    values = {
        "REQUESTS": REQUESTS,
        "DURATION_BUCKET": DURATION_BUCKET,
        "ERROR_FIELDS": ERROR_FIELDS,
        "LABEL_OVERFLOW": LABEL_OVERFLOW,
        "RATIO_WARN": f"{RATIO_WARN:g}",
        "RATIO_WARN_PERCENT": _percent(RATIO_WARN),
        "RATE_LIMITED_WARN": f"{RATE_LIMITED_WARN:g}",
        "RATE_LIMITED_WARN_PERCENT": _percent(RATE_LIMITED_WARN),
    }
    return re.sub(r"<<(\w+)>>", lambda match: values[match.group(1)], _RULES_TEMPLATE)


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
    for name, text in {**render(), RULES_FILE: render_rules()}.items():
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

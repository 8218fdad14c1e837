"""Static checks of the shipped Grafana dashboards, Prometheus rules and the compose stack.

What Grafana, Prometheus and docker compose would reject, or what would silently show nothing
to a user (a fixed datasource uid, a hard-coded job, a missing unit), fails here without running
any of them. ``test_dashboards_prometheus.py`` then runs every query against a real Prometheus.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import promql_parser
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS_DIR = ROOT / "dashboards"
DASHBOARD_FILES = {
    "overview": DASHBOARDS_DIR / "flowscope-overview.json",
    "flow-detail": DASHBOARDS_DIR / "flowscope-flow-detail.json",
}
RULES = DASHBOARDS_DIR / "prometheus" / "flowscope-rules.yml"
RULE_TESTS = DASHBOARDS_DIR / "prometheus" / "flowscope-rules.test.yml"
PROVISIONING = DASHBOARDS_DIR / "provisioning"
STACK = ROOT / "examples" / "stack"
SCHEMAS = Path(__file__).resolve().parent / "schemas" / "grafana"

DATASOURCE_REF = {"type": "prometheus", "uid": "${datasource}"}
RANGE_FUNCTIONS = re.compile(r"\b(rate|irate|increase)\s*\(")
RANGE_SELECTOR = re.compile(r"\[([^\]]+)\]")
JOB_OR_INSTANCE = re.compile(r"\b(job|instance)\s*(=|!=|=~|!~)")


# -- helpers, shared with test_dashboards_prometheus.py -------------------------------------------


def load_dashboard(name: str) -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD_FILES[name].read_text(encoding="utf-8"))
    return dashboard


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel that is not a row, including those nested in collapsed rows."""
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def targets(dashboard: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Every (panel, target) pair of a dashboard."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield panel, target


#: What each dashboard holds: panels (rows excluded), queries, latency graphs that draw exemplars.
SHAPE = {"overview": (9, 11, 3), "flow-detail": (14, 16, 4)}


def _panels(name: str) -> list[dict[str, Any]]:
    found = list(panels(load_dashboard(name)))
    assert len(found) == SHAPE[name][0], [p["title"] for p in found]
    return found


def _targets(name: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    found = list(targets(load_dashboard(name)))
    assert len(found) == SHAPE[name][1], [p["title"] for p, _ in found]
    return found


def substitute(expr: str, *, flow: str, rate_interval: str = "1m", range_: str = "1h") -> str:
    """The expression as Grafana sends it to Prometheus, for one value of ``$flow``."""
    replacements = {
        "$__rate_interval": rate_interval,
        "$__interval": "1m",
        "$__range": range_,
        "${flow}": flow,
        "$flow": flow,
    }
    pattern = re.compile("|".join(re.escape(key) for key in replacements))
    return pattern.sub(lambda match: replacements[match.group(0)], expr)


def recording_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"] if "record" in rule]


def alerting_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail(
            "promtool is not on PATH; install Prometheus (Debian: apt-get install prometheus)"
        )
    return subprocess.run(
        [binary, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(
        (STACK / "docker-compose.yml").read_text(encoding="utf-8")
    )
    return document


def mounts(service: str) -> dict[PurePosixPath, Path]:
    """Container path -> host path of every bind mount of a compose service."""
    result = {}
    for volume in compose()["services"][service]["volumes"]:
        source, target = volume.split(":")[:2]
        result[PurePosixPath(target)] = (STACK / source).resolve()
    return result


# -- the dashboards -------------------------------------------------------------------------------

DASHBOARD_NAMES = sorted(DASHBOARD_FILES)


@pytest.fixture(scope="module")
def dashboard_schema() -> jsonschema.Draft7Validator:
    schema = json.loads((SCHEMAS / "dashboard.jsonschema.json").read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


@pytest.fixture(scope="module")
def query_schema() -> jsonschema.Draft7Validator:
    schema = json.loads((SCHEMAS / "prometheus.jsonschema.json").read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


@pytest.mark.parametrize("name", DASHBOARD_NAMES)
def test_dashboard_validates_against_grafana_dashboard_schema(
    name: str, dashboard_schema: jsonschema.Draft7Validator
) -> None:
    errors = [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in dashboard_schema.iter_errors(load_dashboard(name))
    ]
    assert errors == []


@pytest.mark.parametrize("name", DASHBOARD_NAMES)
def test_every_target_validates_against_prometheus_query_schema(
    name: str, query_schema: jsonschema.Draft7Validator
) -> None:
    errors = [
        f"{panel['title']} {target.get('refId')}: {error.message}"
        for panel, target in _targets(name)
        for error in query_schema.iter_errors(target)
    ]
    assert errors == []


@pytest.mark.parametrize("name", DASHBOARD_NAMES)
def test_dashboard_uses_current_grafana_11_schema_version(name: str) -> None:
    assert load_dashboard(name)["schemaVersion"] >= 39


@pytest.mark.parametrize("name", DASHBOARD_NAMES)
def test_dashboard_has_prometheus_datasource_and_flow_variables(name: str) -> None:
    variables = {v["name"]: v for v in load_dashboard(name)["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    flow = variables["flow"]
    assert flow["type"] == "query"
    assert flow["query"] == "label_values(flowscope_requests_total, flow)"
    assert flow["datasource"] == DATASOURCE_REF


@pytest.mark.parametrize("name", DASHBOARD_NAMES)
def test_every_panel_and_target_uses_the_datasource_variable(name: str) -> None:
    wrong = [p["title"] for p in _panels(name) if p.get("datasource") != DATASOURCE_REF]
    wrong += [
        f"{p['title']} {t['refId']}"
        for p, t in _targets(name)
        if t.get("datasource") != DATASOURCE_REF
    ]
    assert wrong == []


@pytest.mark.parametrize("name", DASHBOARD_NAMES)
def test_every_panel_has_queries_a_unit_and_a_description(name: str) -> None:
    for panel in _panels(name):
        assert panel.get("targets"), panel["title"]
        assert panel["fieldConfig"]["defaults"].get("unit"), panel["title"]
        assert len(panel.get("description", "")) > 20, panel["title"]


@pytest.mark.parametrize("name", DASHBOARD_NAMES)
def test_every_rate_uses_rate_interval(name: str) -> None:
    """``rate``/``irate`` windows are ``$__rate_interval``; ``increase`` may also total the
    whole time range (``$__range``), but only in an instant query, where that is what it shows."""
    problems = []
    for panel, target in _targets(name):
        expr = target["expr"]
        windows = RANGE_SELECTOR.findall(expr)
        allowed = (
            {"$__rate_interval", "$__range"} if target.get("instant") else {"$__rate_interval"}
        )
        if not set(windows) <= allowed:
            problems.append(f"{panel['title']}: {windows}")
        if len(RANGE_FUNCTIONS.findall(expr)) > len(windows):
            problems.append(f"{panel['title']}: a range function without a window")
        if re.search(r"\b(rate|irate)\s*\([^\[]*\[\$__range\]", expr):
            problems.append(f"{panel['title']}: rate over $__range")
    assert problems == []


@pytest.mark.parametrize("name", DASHBOARD_NAMES)
def test_no_hard_coded_job_instance_or_datasource_uid(name: str) -> None:
    dashboard = load_dashboard(name)
    for panel, target in _targets(name):
        assert not JOB_OR_INSTANCE.search(target["expr"]), (panel["title"], target["expr"])
    uids = re.findall(r'"uid": "([^"]*)"', DASHBOARD_FILES[name].read_text(encoding="utf-8"))
    own_uid = dashboard["uid"]
    assert set(uids) <= {"${datasource}", "-- Grafana --", own_uid}


@pytest.mark.parametrize("name", DASHBOARD_NAMES)
@pytest.mark.parametrize("flow", [".*", "billing"])
def test_every_expression_parses_as_promql(name: str, flow: str) -> None:
    for panel, target in _targets(name):
        expr = substitute(target["expr"], flow=flow)
        assert "$" not in expr, (panel["title"], expr)
        try:
            promql_parser.parse(expr)
        except Exception as exc:  # the parser raises a bare ValueError-like error
            pytest.fail(f"{panel['title']}: {expr!r} does not parse: {exc}")


@pytest.mark.parametrize("name", DASHBOARD_NAMES)
def test_latency_panels_request_exemplars(name: str) -> None:
    """Exemplars are what links a latency spike to its trace in Jaeger; a stat panel has no
    time axis to draw them on, so only graphs over time must ask for them."""
    latency = [
        (panel, target)
        for panel, target in _targets(name)
        if "flowscope_request_duration_seconds_bucket" in target["expr"]
        and panel["type"] in {"timeseries", "heatmap"}
    ]
    assert len(latency) == SHAPE[name][2]
    assert all(target.get("exemplar") is True for _, target in latency), [
        panel["title"] for panel, target in latency if not target.get("exemplar")
    ]


@pytest.mark.parametrize("name", DASHBOARD_NAMES)
def test_panels_do_not_overlap_and_ids_are_unique(name: str) -> None:
    dashboard = load_dashboard(name)
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, (panel["title"], cells[(x, y)])
                cells[(x, y)] = panel["title"]


def test_overview_shows_every_metric_the_issue_lists() -> None:
    exprs = "\n".join(t["expr"] for _, t in targets(load_dashboard("overview")))
    for needle in (
        'status_code="400"',
        'status_code="429"',
        "sum by (status_code)",
        "flowscope_errors_total",
        "flowscope_error_fields_total",
        "histogram_quantile(0.5,",
        "histogram_quantile(0.95,",
        "histogram_quantile(0.99,",
        "flowscope_transport_errors_total",
        "flowscope_label_overflow_total",
    ):
        assert needle in exprs, needle
    kinds = {p["title"]: p["type"] for p in panels(load_dashboard("overview"))}
    assert kinds["Worst flow by 400 rate"] == "stat"
    assert kinds["Top failing fields"] == "table"


def test_overview_links_to_flow_detail_carrying_the_flow() -> None:
    overview = load_dashboard("overview")
    detail = load_dashboard("flow-detail")
    data_links = [
        link["url"]
        for panel in panels(overview)
        for link in panel["fieldConfig"]["defaults"].get("links", [])
    ]
    to_detail = [url for url in data_links if url.startswith(f"/d/{detail['uid']}/")]
    flow_values = ("var-flow=${__field.labels.flow}&", "var-flow=${__data.fields.flow}&")
    assert all(any(value in url for value in flow_values) for url in to_detail), to_detail
    assert len(to_detail) == 3  # the 400 graph, the worst-flow stat and the failing fields
    dashboard_links = [
        link for link in overview["links"] if link["type"] == "dashboards" and link["includeVars"]
    ]
    assert len(dashboard_links) == 1
    assert set(dashboard_links[0]["tags"]) <= set(detail["tags"])


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location(
        "flowscope_dashboards", DASHBOARDS_DIR / "generate.py"
    )
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    return generator


def test_committed_dashboards_match_their_generator() -> None:
    generator = _generator()
    rendered: dict[str, str] = generator.render()
    assert sorted(rendered) == sorted(path.name for path in DASHBOARD_FILES.values())
    for file_name, text in rendered.items():
        committed = (DASHBOARDS_DIR / file_name).read_text(encoding="utf-8")
        assert committed == text, f"{file_name} is stale: run python dashboards/generate.py"


# -- Prometheus rules -----------------------------------------------------------------------------


def test_committed_rules_match_their_generator_and_share_the_dashboard_thresholds() -> None:
    generator = _generator()
    assert RULES.read_text(encoding="utf-8") == generator.render_rules()
    alerts = {rule["alert"]: rule for rule in alerting_rules()}
    # The 400 ratio that turns a dashboard cell orange is the one that raises the alert.
    assert generator.RATIO_THRESHOLDS["steps"][1]["value"] == generator.RATIO_WARN == 0.05
    assert "ratio_rate5m > 0.05\n" in alerts["FlowScopeFlow400RatioHigh"]["expr"]
    assert (
        "More than 5 % of the calls"
        in alerts["FlowScopeFlow400RatioHigh"]["annotations"]["description"]
    )
    assert "> 0.1\n" in alerts["FlowScope429Storm"]["expr"]


def test_rules_pass_promtool_check() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass_promtool_test() -> None:
    result = promtool("test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_rules_record_rate_400_ratio_and_p95_per_flow_and_alert_on_the_issue_cases() -> None:
    records = {rule["record"]: rule["expr"] for rule in recording_rules()}
    assert any('status_code="400"' in expr for expr in records.values())
    assert any("histogram_quantile(0.95" in expr for expr in records.values())
    assert all(name.startswith("flow:") for name in records)
    alerts = {rule["alert"]: rule for rule in alerting_rules()}
    assert alerts["FlowScopeFlow400RatioHigh"]["for"] == "10m"
    assert "offset 1h" in alerts["FlowScopeNewErrorField"]["expr"]
    assert 'status_code="429"' in alerts["FlowScope429Storm"]["expr"]
    rules = [*recording_rules(), *alerting_rules()]
    assert (len(records), len(alerts), len(rules)) == (4, 3, 7)
    for rule in rules:
        assert not JOB_OR_INSTANCE.search(rule["expr"]), rule


# -- Grafana provisioning -------------------------------------------------------------------------


def test_prometheus_datasource_sends_exemplar_trace_ids_to_jaeger() -> None:
    provisioning = yaml.safe_load(
        (PROVISIONING / "datasources" / "flowscope.yml").read_text(encoding="utf-8")
    )
    sources = {source["type"]: source for source in provisioning["datasources"]}
    jaeger = sources["jaeger"]
    assert jaeger["uid"] == "jaeger"
    assert jaeger["url"] == "http://jaeger:16686"
    destinations = sources["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    assert {"name": "trace_id", "datasourceUid": "jaeger"} in destinations
    assert sources["prometheus"]["url"] == "http://prometheus:9090"


def test_dashboard_provider_reads_the_directory_grafana_mounts_the_dashboards_in() -> None:
    provider = yaml.safe_load(
        (PROVISIONING / "dashboards" / "flowscope.yml").read_text(encoding="utf-8")
    )["providers"][0]
    assert provider["type"] == "file"
    folder = PurePosixPath(provider["options"]["path"])
    grafana = mounts("grafana")
    mounted = {host.name for container, host in grafana.items() if container.parent == folder}
    assert mounted == {path.name for path in DASHBOARD_FILES.values()}
    assert PurePosixPath("/etc/grafana/provisioning/dashboards") in grafana
    assert PurePosixPath("/etc/grafana/provisioning/datasources") in grafana


# -- the compose stack ----------------------------------------------------------------------------


def test_compose_stack_runs_jaeger_v2_prometheus_and_grafana_on_their_ports() -> None:
    services = compose()["services"]
    assert set(services) >= {"jaeger", "prometheus", "grafana"}
    assert re.fullmatch(r"jaegertracing/jaeger:2\.\d+\.\d+", services["jaeger"]["image"])
    assert {"4317:4317", "4318:4318", "16686:16686"} <= set(services["jaeger"]["ports"])
    assert "9090:9090" in services["prometheus"]["ports"]
    assert "3000:3000" in services["grafana"]["ports"]


def test_compose_prometheus_stores_exemplars_and_reaches_the_host() -> None:
    prometheus = compose()["services"]["prometheus"]
    assert "--enable-feature=exemplar-storage" in prometheus["command"]
    assert "host.docker.internal:host-gateway" in prometheus["extra_hosts"]
    config = yaml.safe_load((STACK / "prometheus.yml").read_text(encoding="utf-8"))
    scraped = [
        target
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    ]
    assert "host.docker.internal:9464" in scraped


@pytest.mark.parametrize("service", ["prometheus", "grafana"])
def test_compose_mounts_files_that_exist(service: str) -> None:
    for container, host in mounts(service).items():
        assert host.exists(), f"{service}: {host} (mounted at {container}) does not exist"


def test_stack_prometheus_config_passes_promtool_with_the_rules_where_compose_mounts_them(
    tmp_path: Path,
) -> None:
    # Rebuild the container's /etc/prometheus from the compose mounts, so the relative
    # rule_files path in prometheus.yml is checked against where the rules really land.
    etc = PurePosixPath("/etc/prometheus")
    for container, host in mounts("prometheus").items():
        copy = tmp_path / container.relative_to(etc)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(host, copy)
    result = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout

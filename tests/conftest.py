from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from flowscope import FlowMetrics

from .prometheus_server import prometheus_session_fixture  # noqa: F401
from .servers import ScriptedServer

#: Markers whose tests run only when an environment variable opts into them (set to "1"); they
#: are the only tests allowed to be skipped.
OPT_IN = {"soak": "FLOWSCOPE_SOAK"}


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker, variable in OPT_IN.items():
        if item.get_closest_marker(marker) and os.environ.get(variable) != "1":
            pytest.skip(f"opt-in: set {variable}=1 to run")


def _unexpected_skips(config: pytest.Config) -> list[pytest.TestReport]:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    reports = reporter.stats.get("skipped", []) if reporter is not None else []
    return [r for r in reports if not (set(OPT_IN) & set(r.keywords))]


def pytest_terminal_summary(terminalreporter: object, config: pytest.Config) -> None:
    skipped = _unexpected_skips(config)
    if skipped:
        write = config.pluginmanager.get_plugin("terminalreporter").write_line
        write(f"FAILED: {len(skipped)} test(s) skipped without an opt-in variable:", red=True)
        for report in skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
            write(f"  {report.nodeid}: {reason}", red=True)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A skipped test is a failure: a missing binary or a skip must not pass as green."""
    if _unexpected_skips(session.config) and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


class Spans:
    """The spans a test's tracer provider exported."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def all(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def one(self) -> ReadableSpan:
        spans = self.all()
        assert len(spans) == 1, [s.name for s in spans]
        return spans[0]

    def clear(self) -> None:
        self.exporter.clear()


@pytest.fixture
def spans() -> Iterator[Spans]:
    s = Spans()
    yield s
    s.provider.shutdown()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> FlowMetrics:
    return FlowMetrics(registry)


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as s:
        yield s


class LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def flowscope_logs() -> Iterator[LogCapture]:
    handler = LogCapture()
    log = logging.getLogger("flowscope")
    log.addHandler(handler)
    old = log.level
    log.setLevel(logging.DEBUG)
    yield handler
    log.removeHandler(handler)
    log.setLevel(old)


def report_lines(request: pytest.FixtureRequest, lines: list[str]) -> None:
    """Print figures a test file measured (examples tried, bytes compared) under its dots."""
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter is None or capture is None or not lines:
        return
    with capture.global_and_fixture_disabled():
        for line in lines:
            reporter.write_line(line)

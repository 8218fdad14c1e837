"""Run a real Prometheus process for integration tests.

Tests check what Prometheus actually stores (series, exemplars, rule results), not what we think
the exposition means. Prometheus is slow to take a new target (its discovery and scrape managers
each batch updates for up to 5 s), so a test session shares one process and tells it what to
scrape through a file_sd targets file.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pytest

__all__ = ["PrometheusServer", "free_port", "prometheus_session_fixture"]

_JOB = "flowscope"
#: The job scraping Pushgateways: ``honor_labels`` keeps the ``job`` each push named.
_PUSHED_JOB = "pushgateway"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def end_process(process: subprocess.Popen[bytes] | None, directory: Path | None) -> None:
    """Stop a binary a test started (terminate, then kill) and remove its temp dir."""
    if process is not None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)


class PrometheusServer:
    """One Prometheus process on loopback, with its own config and storage in a temp dir.

    Every target is scraped every ``scrape_interval`` under ``job="flowscope"``, with exemplar
    storage on; Prometheus asks for OpenMetrics, so exemplars are ingested.
    """

    def __init__(
        self,
        targets: Sequence[str] = (),
        *,
        scrape_interval: str = "1s",
        rule_files: Sequence[Path] = (),
        binary: str = "prometheus",
    ) -> None:
        self._targets = list(targets)
        self._pushgateways: list[str] = []
        self._scrape_interval = scrape_interval
        self._rule_files = [Path(path).resolve() for path in rule_files]
        self._binary = binary
        self._dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._port = 0
        self._http = httpx.Client(timeout=10)  # replaced on each start, closed on stop

    @property
    def url(self) -> str:
        if self._process is None:
            raise RuntimeError("Prometheus is not running")
        return f"http://127.0.0.1:{self._port}"

    def start(self) -> PrometheusServer:
        """Start Prometheus and wait until it is ready; raises RuntimeError when it cannot."""
        binary = shutil.which(self._binary)
        if binary is None:
            raise RuntimeError(
                f"the {self._binary!r} binary is not on PATH; install it "
                "(Debian: apt-get install prometheus) to run the Prometheus integration tests"
            )
        self._http = httpx.Client(timeout=10)
        self._dir = Path(tempfile.mkdtemp(prefix="flowscope-prometheus-"))
        self.set_targets(self._targets)
        self.set_targets(self._pushgateways, honor_labels=True)
        config = self._dir / "prometheus.yml"
        config.write_text(self._config())
        # The port is picked before Prometheus binds it; on the rare clash, try another.
        for _attempt in range(3):
            self._port = free_port()
            if self._launch(binary, config):
                return self
        log = (self._dir / "prometheus.log").read_text(errors="replace")
        self.stop()
        raise RuntimeError(f"Prometheus did not become ready; its log ends with:\n{log[-4000:]}")

    def stop(self) -> None:
        """Stop Prometheus (terminate, then kill) and remove its temp dir."""
        end_process(self._process, self._dir)
        self._process = self._dir = None
        self._http.close()

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def set_targets(self, targets: Sequence[str], *, honor_labels: bool = False) -> None:
        """Replace the scraped targets (``host:port``); a running Prometheus picks them up.

        ``honor_labels=True`` sets the targets of the job that scrapes Pushgateways, where the
        pushed ``job`` and grouping-key labels win over the scrape's own.
        """
        if honor_labels:
            self._pushgateways = list(targets)
        else:
            self._targets = list(targets)
        if self._dir is None:
            return
        name = "pushed.json" if honor_labels else "targets.json"
        groups = [{"targets": list(targets), "labels": {}}] if targets else []
        # Write then rename, so Prometheus never reads a half-written file.
        staging = self._dir / f"{name}.tmp"
        staging.write_text(json.dumps(groups))
        os.replace(staging, self._dir / name)

    def query(self, expr: str, time: float | None = None) -> list[dict[str, Any]]:
        """An instant query; returns ``data.result`` (the vector's samples)."""
        params: dict[str, str | float] = {"query": expr}
        if time is not None:
            params["time"] = time
        result: list[dict[str, Any]] = self._api("query", params)["result"]
        return result

    def query_range(
        self, expr: str, start: float, end: float, step: float = 1.0
    ) -> list[dict[str, Any]]:
        """A range query; returns ``data.result`` (one entry per series, with ``values``)."""
        params: dict[str, str | float] = {"query": expr, "start": start, "end": end, "step": step}
        result: list[dict[str, Any]] = self._api("query_range", params)["result"]
        return result

    def exemplars(self, expr: str, start: float, end: float) -> list[dict[str, Any]]:
        """Stored exemplars of the series ``expr`` selects: ``[{seriesLabels, exemplars}]``."""
        params: dict[str, str | float] = {"query": expr, "start": start, "end": end}
        result: list[dict[str, Any]] = self._api("query_exemplars", params)
        return result

    def targets(self) -> list[dict[str, Any]]:
        """The active targets with their scrape health and last error."""
        result: list[dict[str, Any]] = self._api("targets", {})["activeTargets"]
        return result

    def wait_for(
        self,
        expr: str,
        predicate: Callable[[list[dict[str, Any]]], bool] = bool,
        timeout: float = 30,
    ) -> list[dict[str, Any]]:
        """Poll ``expr`` until ``predicate(result)`` holds; else TimeoutError with the last one."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if predicate(result):
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{expr!r} did not satisfy the condition within {timeout} s; last result: "
                    f"{result!r}; targets: {self.targets()!r}"
                )
            time.sleep(0.2)

    def _api(self, endpoint: str, params: dict[str, str | float]) -> Any:
        response = self._http.get(f"{self.url}/api/v1/{endpoint}", params=params)
        body = response.json()
        if response.status_code != 200 or body.get("status") != "success":
            raise RuntimeError(
                f"Prometheus /api/v1/{endpoint} {params!r} failed: "
                f"{response.status_code} {body.get('errorType')}: {body.get('error')}"
            )
        return body["data"]

    def _config(self) -> str:
        assert self._dir is not None
        # JSON is valid YAML, and needs no YAML library.
        config = {
            "global": {
                "scrape_interval": self._scrape_interval,
                "scrape_timeout": self._scrape_interval,
                "evaluation_interval": self._scrape_interval,
            },
            "rule_files": [str(path) for path in self._rule_files],
            "scrape_configs": [
                {
                    "job_name": _JOB,
                    "scrape_interval": self._scrape_interval,
                    "file_sd_configs": [
                        {"files": [str(self._dir / "targets.json")], "refresh_interval": "1s"}
                    ],
                },
                {
                    "job_name": _PUSHED_JOB,
                    "honor_labels": True,
                    "scrape_interval": self._scrape_interval,
                    "file_sd_configs": [
                        {"files": [str(self._dir / "pushed.json")], "refresh_interval": "1s"}
                    ],
                },
            ],
        }
        return json.dumps(config, indent=2)

    def _launch(self, binary: str, config: Path) -> bool:
        assert self._dir is not None
        storage = self._dir / "data"
        shutil.rmtree(storage, ignore_errors=True)
        with open(self._dir / "prometheus.log", "wb") as log:
            self._process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={storage}",
                    f"--web.listen-address=127.0.0.1:{self._port}",
                    "--enable-feature=exemplar-storage",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                return False
            try:
                if self._http.get(f"{self.url}/-/ready").status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self._process.kill()
        self._process.wait()
        self._process = None
        return False


@pytest.fixture(scope="session", name="prometheus")
def prometheus_session_fixture() -> Iterator[PrometheusServer]:
    """One Prometheus for the whole test session; tests point it at targets with set_targets."""
    with PrometheusServer() as server:
        yield server

"""``make demo`` on a fresh copy of the repository: the one command, with ARGS, and a small venv.

It creates its own ``.venv`` and installs the ``cli`` extra from the configured package index, as
on a new machine, so it takes about half a minute.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEV_TOOLS = ("ruff", "mypy", "pytest", "hypothesis")


def test_make_demo_installs_only_the_cli_extra_and_passes_args(tmp_path: Path) -> None:
    copy = tmp_path / "flowscope"
    shutil.copytree(
        ROOT,
        copy,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "__pycache__", "*_cache", "*.egg-info", "build", "dist"
        ),
    )
    result = subprocess.run(
        ["make", "demo", "ARGS=--duration 2 --metrics-port 0"],
        cwd=copy,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "pip install -q -e '.[cli]'" in result.stdout
    assert "flowscope demo --duration 2 --metrics-port 0" in result.stdout
    # --metrics-port 0 reached the demo: it served on a free port, not on 9464.
    served = re.search(r"metrics were served at http://127\.0\.0\.1:(\d+)/metrics", result.stdout)
    assert served, result.stdout[-2000:]
    assert served.group(1) != "9464"

    bin_dir = copy / ".venv" / "bin"
    assert (bin_dir / "flowscope").is_file()
    assert [tool for tool in DEV_TOOLS if (bin_dir / tool).exists()] == []
    installed = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout.lower()
    assert "rich==" in installed
    assert "opentelemetry-exporter-otlp-proto-http==" in installed
    for package in (*DEV_TOOLS, "purecloudplatformclientv2"):
        assert f"\n{package}==" not in "\n" + installed, package

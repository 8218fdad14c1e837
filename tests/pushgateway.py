"""Run a real Prometheus Pushgateway (Debian's ``prometheus-pushgateway``) for a test."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import httpx

from .prometheus_server import end_process, free_port

__all__ = ["Pushgateway"]


class Pushgateway:
    """One Pushgateway on loopback; its persistence file lives in a temp dir removed on stop."""

    def __init__(self, binary: str = "prometheus-pushgateway") -> None:
        self._binary = binary
        self._dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``: what ``push_metrics`` and Prometheus's targets take."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> Pushgateway:
        binary = shutil.which(self._binary)
        if binary is None:
            raise RuntimeError(
                f"the {self._binary!r} binary is not on PATH; install it "
                "(Debian: apt-get install prometheus-pushgateway)"
            )
        self._dir = Path(tempfile.mkdtemp(prefix="flowscope-pushgateway-"))
        for _attempt in range(3):  # the port is picked before the gateway binds it
            self.port = free_port()
            if self._launch(binary):
                return self
        log = (self._dir / "pushgateway.log").read_text(errors="replace")
        self.stop()
        raise RuntimeError(f"the Pushgateway did not become ready:\n{log[-4000:]}")

    def stop(self) -> None:
        end_process(self._process, self._dir)
        self._process = self._dir = None

    def __enter__(self) -> Pushgateway:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _launch(self, binary: str) -> bool:
        assert self._dir is not None
        with open(self._dir / "pushgateway.log", "ab") as log:
            self._process = subprocess.Popen(
                [
                    binary,
                    f"--web.listen-address={self.address}",
                    f"--persistence.file={self._dir / 'pushgateway.data'}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                return False
            try:
                if httpx.get(f"http://{self.address}/-/ready", timeout=2).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self._process.kill()
        self._process.wait()
        self._process = None
        return False

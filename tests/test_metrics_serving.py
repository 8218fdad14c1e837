"""The WSGI/ASGI helpers serve flowscope's metrics from the start, as `serve_metrics` does."""

from __future__ import annotations

import subprocess
import sys

import pytest

# A fresh interpreter: the default registry must not already hold flowscope's metrics.
_WSGI = """
import flowscope
app = flowscope.make_wsgi_app()
status = []
body = b"".join(app({"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics", "QUERY_STRING": ""},
                    lambda s, h: status.append(s)))
print(status[0])
print(body.decode())
"""

_ASGI = """
import asyncio, flowscope
app = flowscope.make_asgi_app()
sent = []
async def receive():
    return {"type": "http.request", "body": b"", "more_body": False}
async def send(message):
    sent.append(message)
scope = {"type": "http", "method": "GET", "path": "/metrics", "query_string": b"", "headers": []}
asyncio.run(app(scope, receive, send))
print(sent[0]["status"])
print(b"".join(m.get("body", b"") for m in sent[1:]).decode())
"""


@pytest.mark.parametrize("program", [_WSGI, _ASGI], ids=["wsgi", "asgi"])
def test_web_app_helpers_expose_flowscope_metrics_before_the_first_call(program: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    )
    status, _, body = result.stdout.partition("\n")
    assert status.startswith("200")
    # The overflow counters exist from the start, so dashboards read zero rather than nothing.
    for label in ("flow", "field", "error_code"):
        assert f'flowscope_label_overflow_total{{label="{label}"}} 0.0' in body.splitlines()

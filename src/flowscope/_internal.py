"""Fail open: flowscope's own errors are counted, logged once per stage, and go no further."""

from __future__ import annotations

import contextlib
import logging
import threading
import traceback
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._metrics import FlowMetrics
    from ._redact import Redactor

__all__ = ["InternalErrors"]

logger = logging.getLogger("flowscope")


class InternalErrors:
    """Called as ``errors(stage, exc)`` wherever flowscope catches an error of its own.

    Counts it in ``flowscope_internal_errors_total{stage}`` and logs it: at ERROR the first time
    in a stage, at DEBUG after that, so a bug on every call cannot flood the application's log.
    """

    def __init__(self, metrics: FlowMetrics, redactor: Redactor) -> None:
        self._metrics = metrics
        self._redactor = redactor
        self._failed_stages: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, stage: str, exc: BaseException) -> None:
        with contextlib.suppress(Exception):  # the registry itself may be what is broken
            self._metrics.internal_error(stage)
        with self._lock:
            first = stage not in self._failed_stages
            self._failed_stages.add(stage)
        level = logging.ERROR if first else logging.DEBUG
        if not logger.isEnabledFor(level):
            return
        # The traceback is logged as redacted text, not exc_info: an exception raised while
        # handling a call may quote what it was handling (a header, a piece of the body).
        try:
            detail = self._redactor.text("".join(traceback.format_exception(exc))).value
        except Exception:
            detail = type(exc).__qualname__
        if first:
            logger.error(
                "flowscope internal error in stage %r; the call itself is unaffected "
                "(further errors in this stage are logged at DEBUG)\n%s",
                stage,
                detail,
            )
        else:
            logger.debug("flowscope internal error in stage %r\n%s", stage, detail)

"""The executions this process saw launched, remembered until their outcome is seen.

A launch answers ``200`` when the flow *starts*; its outcome comes later, in a
``GET /api/v2/flows/executions/{id}`` response. To join the two (a link from the poll's span to
the launch's, the launch's ``flow`` label on the poll's metrics, each outcome counted once however
often it is polled) the launch is remembered here. Bounded in count (oldest forgotten first) and
in age: a launch forgotten before its outcome was seen is handed back, so that it can be counted
as unobserved.

Also here, as pure functions of dicts: what a poll's response says (:func:`read_execution`), the
shape of a launch payload kept for diagnosis (:func:`launch_shape`: keys and value types, never
values) and the hints that shape gives when the execution failed (:func:`diagnose_failure`).
No I/O, no httpx, no OpenTelemetry.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ._hints import Hint
from ._vocabulary import json_type_name

__all__ = [
    "EXECUTION_HINT_CODES",
    "TERMINAL_STATUSES",
    "ExecutionStore",
    "LaunchShape",
    "PolledExecution",
    "TrackedLaunch",
    "declared_inputs",
    "diagnose_failure",
    "launch_shape",
    "read_execution",
]

#: The statuses after which an execution does not change (SPEC §10).
TERMINAL_STATUSES = frozenset({"COMPLETED", "FAILED", "ERROR", "TERMINATED"})
_STATUSES = frozenset({"RUNNING", "UNKNOWN", *TERMINAL_STATUSES})
#: The failed outcomes a launch payload may explain.
FAILED_STATUSES = frozenset({"FAILED", "ERROR"})
#: The ``hint.code`` of each hint a failed execution's poll may carry (the README's hint table).
EXECUTION_HINT_CODES = (
    "execution-input-ignored",
    "execution-input-missing",
    "execution-input-nested",
)
#: Keys of one launch's ``inputData`` kept for diagnosis; a payload rarely has a tenth of this.
_MAX_SHAPE_KEYS = 200
_PREFIX = "Flow."


@dataclass(frozen=True, slots=True)
class LaunchShape:
    """What a launch sent, minus every value: its ``inputData`` keys and their JSON types."""

    #: ``(key, JSON type name)`` of each ``inputData`` key, in the order sent.
    inputs: tuple[tuple[str, str], ...]
    #: The JSON type of ``inputData`` itself; ``None`` when the launch had none.
    input_type: str | None


@dataclass(slots=True)
class TrackedLaunch:
    """One remembered execution: the launch that started it, and whether its outcome was seen."""

    execution_id: str
    #: The launch's flow id (already safe to show) and its ``flow`` label before bounding.
    flow_id: str
    flow_label: str
    trace_id: str | None
    span_id: str | None
    shape: LaunchShape | None
    #: The flow's declared input names when its input schema was known at launch.
    declared: tuple[str, ...] | None
    remembered_at: float
    #: Whether this process launched it (``False``: an outcome seen for a foreign execution,
    #: remembered only so that it is counted once).
    launched_here: bool = True
    settled: bool = False
    #: Values redacted from the launch's body (with their keys), removed from its execution's
    #: error wherever a poll shows it; empty when the body had nothing to redact.
    secrets: tuple[tuple[str, str | None], ...] = ()


class ExecutionStore:
    """Remembered executions, at most ``max_size``, each for at most ``ttl_s`` seconds.

    Thread-safe. ``clock`` (monotonic seconds) is injectable for tests. Entries are kept in the
    order they were remembered, so the oldest are forgotten first, by count or by age.
    """

    def __init__(
        self, max_size: int, ttl_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_size < 0:
            raise ValueError(f"max_tracked_executions must be >= 0, got {max_size}")
        self.max_size = max_size
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[str, TrackedLaunch] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def remember(self, launch: TrackedLaunch) -> list[TrackedLaunch]:
        """Track a launch; returns the launches forgotten to make room, outcome unseen."""
        with self._lock:
            launch.remembered_at = self._clock()
            self._entries.pop(launch.execution_id, None)
            self._entries[launch.execution_id] = launch
            return self._trim()

    def lookup(self, execution_id: str) -> TrackedLaunch | None:
        """The remembered launch of ``execution_id``, settled or not."""
        with self._lock:
            return self._entries.get(execution_id)

    def settle(
        self, execution_id: str, foreign: Callable[[], TrackedLaunch]
    ) -> tuple[bool, TrackedLaunch, list[TrackedLaunch]]:
        """Mark the outcome of ``execution_id`` seen.

        Returns whether this is the first time (the outcome is counted then, and only then), the
        remembered launch (``foreign()`` when it was not launched here, remembered from now on),
        and the launches forgotten meanwhile.
        """
        with self._lock:
            entry = self._entries.get(execution_id)
            if entry is not None:
                first = not entry.settled
                entry.settled = True
                return first, entry, self._trim()
            entry = foreign()
            entry.settled = True
            entry.remembered_at = self._clock()
            self._entries[execution_id] = entry
            return True, entry, self._trim()

    def expire(self) -> list[TrackedLaunch]:
        """Forget what is too old now; the forgotten launches whose outcome was not seen."""
        with self._lock:
            return self._trim()

    def _trim(self) -> list[TrackedLaunch]:
        forgotten: list[TrackedLaunch] = []
        entries = self._entries
        while len(entries) > self.max_size:
            _, old = entries.popitem(last=False)
            if not old.settled:
                forgotten.append(old)
        deadline = self._clock() - self.ttl_s
        while entries:
            oldest = next(iter(entries.values()))
            if oldest.remembered_at > deadline:
                break
            entries.popitem(last=False)
            if not oldest.settled:
                forgotten.append(oldest)
        return forgotten


# -- what a poll says ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PolledExecution:
    """A ``GET /api/v2/flows/executions/{id}`` response, as read (nothing redacted yet)."""

    status: str
    completion_reason: str | None
    #: ``flowErrorInfo``, an error body, when the execution has one.
    error_info: Mapping[str, Any] | None
    duration_s: float | None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


def read_execution(document: Mapping[str, Any]) -> PolledExecution | None:
    """What a poll's JSON body says; ``None`` when it has no ``status`` string."""
    status = document.get("status")
    if not isinstance(status, str):
        return None
    status = status.upper() if status.upper() in _STATUSES else "UNKNOWN"
    reason = document.get("completionReason")
    info = document.get("flowErrorInfo")
    return PolledExecution(
        status=status,
        completion_reason=reason if isinstance(reason, str) else None,
        error_info=info if isinstance(info, Mapping) else None,
        duration_s=_duration(document.get("dateLaunched"), document.get("dateCompleted")),
    )


def _duration(launched: object, completed: object) -> float | None:
    if not isinstance(launched, str) or not isinstance(completed, str):
        return None
    try:
        start = datetime.fromisoformat(launched.replace("Z", "+00:00"))
        end = datetime.fromisoformat(completed.replace("Z", "+00:00"))
        seconds = (end - start).total_seconds()
    except (ValueError, TypeError):  # TypeError: one naive, one aware
        return None
    return seconds if seconds >= 0 else None


# -- the launch payload, kept for diagnosis -------------------------------------------------------


def launch_shape(document: object) -> LaunchShape | None:
    """The keys and value types of a launch body's ``inputData``; ``None`` if not a JSON object."""
    if not isinstance(document, Mapping):
        return None
    inputs = document.get("inputData")
    if inputs is None:
        return LaunchShape((), None)
    if not isinstance(inputs, Mapping):
        return LaunchShape((), json_type_name(inputs))
    pairs = []
    for index, (key, value) in enumerate(inputs.items()):
        if index >= _MAX_SHAPE_KEYS:
            break
        pairs.append((str(key), json_type_name(value)))
    return LaunchShape(tuple(pairs), "object")


def declared_inputs(schema: Mapping[str, Any] | None) -> tuple[str, ...] | None:
    """The input names a flow version's ``inputSchema`` declares."""
    if not isinstance(schema, Mapping):
        return None
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return None
    return tuple(str(name) for name in list(properties)[:_MAX_SHAPE_KEYS])


def diagnose_failure(launch: TrackedLaunch, status: str, named: tuple[str, ...] = ()) -> list[Hint]:
    """Why the launch may have made its execution fail, from what it sent (never its values).

    The platform does not refuse input keys it does not know when they lack the ``Flow.``
    prefix: it ignores them, the variable keeps its initial value, and the flow fails later.
    ``named`` are the fields the execution's ``flowErrorInfo`` names: when it names an input the
    launch left out (or sent without its prefix), no other missing input is reported.
    """
    shape = launch.shape
    if status not in FAILED_STATUSES or shape is None:
        return []
    hints: list[Hint] = []
    sent = {key for key, _ in shape.inputs}
    declared = set(launch.declared or ())
    for key, kind in shape.inputs:
        if key.startswith(_PREFIX):
            continue
        field = f"inputData.{key}"
        if kind == "object":
            hints.append(
                Hint(
                    "execution-input-nested",
                    f"The launch sent its inputs nested under '{key}'; the platform reads only "
                    "top-level 'Flow.'-named keys of inputData, so the flow ran without them. "
                    f"Send each input as its own key, e.g. 'Flow.<name>', not inside '{key}'.",
                    field,
                )
            )
        else:
            target = f"{_PREFIX}{key}"
            note = f" (the flow declares '{target}')" if target in declared else ""
            hints.append(
                Hint(
                    "execution-input-ignored",
                    f"The launch sent input '{key}' without the 'Flow.' prefix; the platform "
                    f"ignores such keys, so the flow ran without it{note}. Send '{target}'.",
                    field,
                )
            )
    ignored = {f"{_PREFIX}{key}" for key, _ in shape.inputs}
    missing = [n for n in launch.declared or () if n not in sent and n not in ignored]
    if any(name in named for name in (*missing, *ignored)):
        # The flowErrorInfo names the variable: the others the launch left out are not why.
        missing = [name for name in missing if name in named]
    for name in missing:
        hints.append(
            Hint(
                "execution-input-missing",
                f"The flow declares input '{name}' but the launch did not send it: the "
                "variable kept its initial value, which may be why the execution "
                f"ended {status}.",
                f"inputData.{name}",
            )
        )
    return hints

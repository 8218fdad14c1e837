"""Active following (``follow_executions=True``): poll each launched execution to its outcome.

The polls are ordinary flow calls sent through the instrumented transport that carried the
launch, so each gets its span, its metrics and its record like a poll the caller made; the
outcome is then counted once, by the same path. They run beside the caller's calls, never in
them: a background thread for a sync client, one task on the event loop for an async client,
each started with the first launch and stopped when the client closes.

:class:`FollowPlan` decides *when* (backoff per execution, the per-process poll budget,
``Retry-After``, giving up); it does no I/O. :class:`Follower` and :class:`AsyncFollower` run it.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import ClassVar

import httpx

from ._config import FlowScopeConfig
from ._executions import TERMINAL_STATUSES

__all__ = ["AsyncFollower", "FollowJob", "FollowPlan", "Follower", "PollBudget", "poll_request"]

logger = logging.getLogger("flowscope")

# Launch headers a poll must not repeat: they describe the launch's body or its trace.
_DROPPED_HEADERS = frozenset(
    {"content-type", "content-length", "transfer-encoding", "traceparent", "tracestate", "baggage"}
)
_WINDOW_S = 60.0


@dataclass(order=True)
class FollowJob:
    """One execution to follow; ordered by when its next poll is due."""

    due: float
    seq: int
    execution_id: str = field(compare=False)
    url: str = field(compare=False)
    headers: tuple[tuple[str, str], ...] = field(compare=False)
    deadline: float = field(compare=False, default=0.0)
    interval: float = field(compare=False, default=1.0)


class PollBudget:
    """At most ``per_minute`` polls in any 60 seconds; shared by every follower in the process."""

    _shared: ClassVar[dict[int, PollBudget]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()

    @classmethod
    def shared(cls, per_minute: int) -> PollBudget:
        """The process's budget for this rate."""
        with cls._shared_lock:
            budget = cls._shared.get(per_minute)
            if budget is None:
                budget = cls._shared[per_minute] = cls(per_minute)
            return budget

    def take(self) -> float:
        """Spend one poll now and return 0, or return how long to wait before asking again."""
        now = self._clock()
        with self._lock:
            sent = self._sent
            while sent and sent[0] <= now - _WINDOW_S:
                sent.popleft()
            if self.per_minute <= 0:
                return _WINDOW_S
            if len(sent) < self.per_minute:
                sent.append(now)
                return 0.0
            return max(sent[0] + _WINDOW_S - now, 0.001)


class FollowPlan:
    """The executions being followed and when each is polled next. Thread-safe, no I/O."""

    def __init__(
        self,
        config: FlowScopeConfig,
        budget: PollBudget,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.budget = budget
        self._clock = clock
        self._queue: list[FollowJob] = []
        self._active = 0  # jobs taken out for a poll and not yet put back or finished
        self._seq = itertools.count()
        self._lock = threading.Lock()

    @property
    def pending(self) -> int:
        """Executions not yet seen to end (queued or being polled)."""
        with self._lock:
            return len(self._queue) + self._active

    def add(self, execution_id: str, url: str, headers: tuple[tuple[str, str], ...]) -> bool:
        """Follow one more execution; ``False`` when the queue is full."""
        config = self.config
        now = self._clock()
        with self._lock:
            if len(self._queue) + self._active >= config.follow_queue_size:
                return False
            first = config.follow_initial_interval_s
            job = FollowJob(
                now + first,
                next(self._seq),
                execution_id,
                url,
                headers,
                deadline=now + config.follow_timeout_s,
                interval=first,
            )
            heapq.heappush(self._queue, job)
            return True

    def take(self) -> tuple[FollowJob | None, float | None]:
        """The job to poll now, or ``None`` and how long to wait (``None``: nothing queued)."""
        now = self._clock()
        with self._lock:
            if not self._queue:
                return None, None
            head = self._queue[0]
            if head.due > now:
                return None, head.due - now
            wait = self.budget.take()
            if wait > 0:
                return None, wait
            heapq.heappop(self._queue)
            self._active += 1
            return head, 0.0

    def again(self, job: FollowJob, retry_after: float | None = None) -> bool:
        """Put a job back after a poll that showed no outcome; ``False`` once it is out of time."""
        now = self._clock()
        with self._lock:
            self._active -= 1
            if now >= job.deadline:
                return False
            if retry_after is not None:
                job.due = now + retry_after
            else:
                job.interval = min(job.interval * 2, self.config.follow_max_interval_s)
                job.due = now + job.interval
            job.seq = next(self._seq)
            heapq.heappush(self._queue, job)
            return True

    def finished(self) -> None:
        """A job taken out by :meth:`take` is done (its outcome seen, or given up)."""
        with self._lock:
            self._active -= 1

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()


def poll_request(job: FollowJob) -> httpx.Request:
    """The ``GET`` of a followed execution, with the launch's own headers."""
    request = httpx.Request("GET", job.url, headers=list(job.headers))
    return request


def job_parts(
    url: str, request_headers: list[tuple[str, str]], execution_id: str
) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The poll URL and headers for the execution a launch to ``url`` started."""
    launch = httpx.URL(url)
    path = launch.path.rstrip("/") + "/" + execution_id
    poll = launch.copy_with(path=path, query=None)
    headers = tuple((k, v) for k, v in request_headers if k.lower() not in _DROPPED_HEADERS)
    return str(poll), headers


@dataclass(frozen=True)
class PollResult:
    """What one poll told the follower."""

    done: bool
    retry_after: float | None = None
    gone: bool = False


def read_poll(status: int, headers: httpx.Headers, body: bytes) -> PollResult:
    """Whether the execution ended, from the poll's response."""
    if status == 429:
        retry = headers.get("retry-after")
        try:
            seconds = float(retry) if retry is not None else None
        except ValueError:
            seconds = None
        return PollResult(False, retry_after=seconds)
    if status in (404, 410):
        return PollResult(True, gone=True)
    if not 200 <= status < 300:
        return PollResult(False)
    try:
        document = json.loads(body)
    except ValueError:
        return PollResult(False)
    state = document.get("status") if isinstance(document, dict) else None
    return PollResult(isinstance(state, str) and state.upper() in TERMINAL_STATUSES)


OnDropped = Callable[[str], None]


class _Base:
    def __init__(self, plan: FollowPlan, on_dropped: OnDropped) -> None:
        self.plan = plan
        self._on_dropped = on_dropped

    def _settle(self, job: FollowJob, result: PollResult | None) -> None:
        """After a poll (``None``: it raised): finish the job or put it back."""
        if result is not None and result.done:
            self.plan.finished()
            if result.gone:
                self._on_dropped("gone")
            return
        retry = result.retry_after if result is not None else None
        if not self.plan.again(job, retry):
            self._on_dropped("timeout")

    def _dropped(self) -> None:
        self._on_dropped("queue_full")


class Follower(_Base):
    """Runs the plan on one daemon thread, started by the first launch, joined by :meth:`stop`."""

    def __init__(
        self,
        plan: FollowPlan,
        send: Callable[[httpx.Request], httpx.Response],
        on_dropped: OnDropped,
    ) -> None:
        super().__init__(plan, on_dropped)
        self._send = send
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def add(self, execution_id: str, url: str, headers: tuple[tuple[str, str], ...]) -> None:
        with self._wake:
            if self._stopped:
                return
            if not self.plan.add(execution_id, url, headers):
                self._dropped()
                return
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="flowscope-follow", daemon=True
                )
                self._thread.start()
            self._wake.notify_all()

    def _run(self) -> None:
        while True:
            with self._wake:
                if self._stopped:
                    return
                job, wait = self.plan.take()
                if job is None:
                    self._wake.wait(wait)
                    continue
            self._poll(job)
            with self._wake:
                self._wake.notify_all()  # wakes wait_idle

    def _poll(self, job: FollowJob) -> None:
        try:
            response = self._send(poll_request(job))
            try:
                body = response.read()
            finally:
                response.close()
            result: PollResult | None = read_poll(response.status_code, response.headers, body)
        except Exception:  # the platform unreachable: the caller's own calls will say so
            logger.debug("follow poll failed", exc_info=True)
            result = None
        self._settle(job, result)

    def wait_idle(self, timeout: float | None) -> bool:
        """Block until every followed execution ended or was given up; ``False`` on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._wake:
            while self.plan.pending and not self._stopped:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._wake.wait(left if left is None else min(left, 0.5))
            return self.plan.pending == 0

    def stop(self) -> None:
        """Stop following and join the thread (after its poll in flight, if any)."""
        with self._wake:
            self._stopped = True
            thread, self._thread = self._thread, None
            self._wake.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self.plan.clear()


class AsyncFollower(_Base):
    """Runs the plan as one task on the client's event loop, cancelled by :meth:`stop`."""

    def __init__(
        self,
        plan: FollowPlan,
        send: Callable[[httpx.Request], Awaitable[httpx.Response]],
        on_dropped: OnDropped,
    ) -> None:
        super().__init__(plan, on_dropped)
        self._send = send
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._stopped = False

    def add(self, execution_id: str, url: str, headers: tuple[tuple[str, str], ...]) -> None:
        if self._stopped:
            return
        if not self.plan.add(execution_id, url, headers):
            self._dropped()
            return
        if self._task is None or self._task.done():
            loop = asyncio.get_running_loop()
            self._wake = asyncio.Event()
            self._idle = asyncio.Event()
            self._task = loop.create_task(self._run(), name="flowscope-follow")
        assert self._wake is not None and self._idle is not None
        self._idle.clear()
        self._wake.set()

    async def _run(self) -> None:
        wake, idle = self._wake, self._idle
        assert wake is not None and idle is not None
        while not self._stopped:
            job, wait = self.plan.take()
            if job is None:
                if wait is None:
                    idle.set()
                wake.clear()
                with suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(wake.wait(), wait)
                continue
            await self._poll(job)

    async def _poll(self, job: FollowJob) -> None:
        try:
            response = await self._send(poll_request(job))
            try:
                body = await response.aread()
            finally:
                await response.aclose()
            result: PollResult | None = read_poll(response.status_code, response.headers, body)
        except asyncio.CancelledError:
            self.plan.finished()
            raise
        except Exception:
            logger.debug("follow poll failed", exc_info=True)
            result = None
        self._settle(job, result)

    async def wait_idle(self, timeout: float | None) -> bool:
        """Wait until every followed execution ended or was given up; ``False`` on timeout."""
        if self.plan.pending == 0 or self._idle is None:
            return self.plan.pending == 0
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return self.plan.pending == 0

    async def stop(self) -> None:
        """Cancel the task and wait for it to end."""
        self._stopped = True
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        self.plan.clear()

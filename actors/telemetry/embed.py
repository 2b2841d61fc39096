"""Embedding: recording from threads that are not the monitor's event loop thread.

Inside a trio host, use `Telemetry` directly (same thread, no cost). For asyncio or synchronous
hosts the monitor runs its own trio loop in a background thread (`MonitoringThread`), and the host
records through a `ThreadSafeRecorder`: each call is appended to a deque (atomic, lock-free under
the GIL) and one `run_sync_soon` callback per burst applies the queued calls on the loop thread, so
the store itself never sees two threads.

Thread-safe recording is fire-and-forget: a call returns before it is applied, so invalid values
(which `Telemetry` would raise on) are counted in `errors` and logged on the loop thread instead.
At most `max_pending` calls wait; beyond that new calls are dropped and counted in `dropped`.

The composition root (`supervisor.app`) owns building the tree; it passes the tree's entry point
and the `Telemetry` it built to `MonitoringThread.start`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import trio

from actors.telemetry.exceptions import TelemetryError
from actors.telemetry.recording import Telemetry

__all__ = ["MonitoringThread", "ThreadSafeRecorder"]

_log = logging.getLogger(__name__)


class ThreadSafeRecorder:
    """The recording API, callable from any thread (see the module docstring)."""

    def __init__(
        self,
        telemetry: Telemetry,
        token: trio.lowlevel.TrioToken,
        *,
        max_pending: int = 100_000,
        logger: logging.Logger | None = None,
    ) -> None:
        self._telemetry = telemetry
        self._token = token
        self._queue: deque[tuple[Callable[..., None], tuple[Any, ...]]] = deque()
        self._scheduled = False
        self.max_pending = max_pending
        self.dropped = 0
        self.errors = 0
        self._log = logger or _log

    def _submit(self, fn: Callable[..., None], args: tuple[Any, ...]) -> None:
        if len(self._queue) >= self.max_pending:
            self.dropped += 1
            return
        self._queue.append((fn, args))  # append first, then check: see _drain
        if not self._scheduled:
            self._scheduled = True
            try:
                self._token.run_sync_soon(self._drain)
            except trio.RunFinishedError:
                self._queue.clear()

    def _drain(self) -> None:
        # clear the flag before draining: a call appended after this point schedules a new drain
        self._scheduled = False
        queue = self._queue
        while queue:
            fn, args = queue.popleft()
            try:
                fn(*args)
            except TelemetryError as exc:
                self.errors += 1
                self._log.warning("telemetry call rejected: %s", exc)

    def flush(self) -> None:
        """Block until every call made so far (by this thread) is applied.

        Raises:
            trio.RunFinishedError: the monitor's loop has stopped.
        """
        trio.from_thread.run_sync(self._drain, trio_token=self._token)

    def record_agent_execution(self, agent: str, duration_seconds: float, success: bool) -> None:
        """See `Telemetry.record_agent_execution`."""
        self._submit(self._telemetry.record_agent_execution, (agent, duration_seconds, success))

    def record_heartbeat(self, agent: str) -> None:
        """See `Telemetry.record_heartbeat`."""
        self._submit(self._telemetry.record_heartbeat, (agent,))

    def record_ml_prediction(
        self, model: str, latency_seconds: float, confidence: float | None = None
    ) -> None:
        """See `Telemetry.record_ml_prediction`."""
        self._submit(self._telemetry.record_ml_prediction, (model, latency_seconds, confidence))

    def record_ml_accuracy(self, model: str, accuracy: float) -> None:
        """See `Telemetry.record_ml_accuracy`."""
        self._submit(self._telemetry.record_ml_accuracy, (model, accuracy))

    def record_api_request(
        self, endpoint: str, method: str, status: int, duration_seconds: float
    ) -> None:
        """See `Telemetry.record_api_request`."""
        self._submit(
            self._telemetry.record_api_request, (endpoint, method, status, duration_seconds)
        )

    def record_user_message(self, intent: str, organization: str) -> None:
        """See `Telemetry.record_user_message`."""
        self._submit(self._telemetry.record_user_message, (intent, organization))

    def record_business_metric(
        self, name: str, value: float, labels: Mapping[str, str] | None = None
    ) -> None:
        """See `Telemetry.record_business_metric`."""
        self._submit(self._telemetry.record_business_metric, (name, value, dict(labels or {})))

    def record(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        """See `Telemetry.record` (any declared metric)."""
        self._submit(self._telemetry.record, (name, value, dict(labels or {})))


class MonitoringThread:
    """Runs the monitor's trio loop in a daemon thread; `recorder` records into it.

    `main(task_status=...)` is the tree's entry point (it calls `task_status.started()` when
    ready and runs until cancelled). Use `start()`, then `stop()` (or the context manager form).
    """

    def __init__(
        self,
        main: Callable[..., Awaitable[None]],
        *,
        telemetry: Telemetry,
        name: str = "blipee-monitor",
        max_pending: int = 100_000,
    ) -> None:
        self._main = main
        self._telemetry = telemetry
        self._name = name
        self._max_pending = max_pending
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._cancel: trio.CancelScope | None = None
        self._error: BaseException | None = None
        self.recorder: ThreadSafeRecorder | None = None

    async def _run(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        with trio.CancelScope() as scope:
            self._cancel = scope
            async with trio.open_nursery() as nursery:
                await nursery.start(self._main)
                self._ready.set()

    def _thread_main(self) -> None:
        try:
            trio.run(self._run)
        except BaseException as exc:  # reported to the starting thread, never swallowed there
            self._error = exc
        finally:
            self._ready.set()

    def start(self, timeout: float = 30.0) -> ThreadSafeRecorder:
        """Start the thread and wait until the tree is started; returns the recorder.

        Raises:
            RuntimeError: already started, the tree failed to start, or not ready in `timeout`.
        """
        if self._thread is not None:
            raise RuntimeError("monitoring thread already started")
        self._thread = threading.Thread(target=self._thread_main, name=self._name, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"monitoring did not start within {timeout}s")
        if self._error is not None or self._token is None:
            raise RuntimeError(f"monitoring failed to start: {self._error!r}") from self._error
        self.recorder = ThreadSafeRecorder(
            self._telemetry, self._token, max_pending=self._max_pending
        )
        return self.recorder

    def stop(self, timeout: float = 30.0) -> None:
        """Cancel the tree (graceful: actors run their cleanup) and join the thread.

        Raises:
            RuntimeError: the thread did not stop within `timeout`, or the tree failed.
        """
        thread, token, scope = self._thread, self._token, self._cancel
        if thread is None:
            return
        if token is not None and scope is not None:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(scope.cancel)
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError(f"monitoring did not stop within {timeout}s")
        if self._error is not None:
            raise RuntimeError(f"monitoring failed: {self._error!r}") from self._error

    def __enter__(self) -> ThreadSafeRecorder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

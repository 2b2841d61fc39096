"""`Supervisor`: OTP-style supervision of child tasks on anyio (trio and asyncio).

Start contract (as OTP's ``start_link`` of a supervisor): ``await nursery.start(sup.run)``
returns once every child has called ``task_status.started()`` once in this run. What a child
does after that is supervision, not start: a child that crashes right after started() (even in
the same step) is restarted by the strategy like any later crash, and the children after it are
started at once, without waiting for it to come up again. A child that fails *before* its first
started() is a start failure: it is retried with backoff (counted against the intensity) and the
children after it wait; if the intensity is exceeded first, `run` raises
`RestartIntensityExceeded` and so does ``nursery.start``.
"""

from __future__ import annotations

import logging
import math
import random
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from typing import Any, TypeVar

import anyio
import anyio.abc

from ._backoff import Backoff, RestartWindow
from ._exceptions import (
    ChildNotFoundError,
    ChildStartError,
    DuplicateChildError,
    NotSupervisedError,
    RestartIntensityExceeded,
    StartTimeoutError,
    SupervisorStateError,
)
from ._spec import (
    AutoShutdown,
    ChildInfo,
    ChildSpec,
    ChildState,
    EventKind,
    Restart,
    Strategy,
    SupervisorEvent,
    SupervisorInfo,
    SupervisorStatistics,
)

__all__ = ["ChildContext", "Supervisor", "current_child"]

_logger = logging.getLogger("supervisor.runtime")

# Per-task, not global state: each child task sets it for itself (tasks get a copy of their
# spawner's context, so tasks a child spawns see their child's context too).
_current_child: ContextVar[ChildContext] = ContextVar("supervisor.runtime.current_child")

_R = TypeVar("_R")


def current_child() -> ChildContext:
    """The `ChildContext` of the supervised child the calling task belongs to.

    Raises:
        NotSupervisedError: the calling task is not running inside a supervised child.
    """
    try:
        return _current_child.get()
    except LookupError:
        raise NotSupervisedError from None


class ChildContext:
    """What a running child can learn about itself; the graceful stop protocol.

    A child that wants a graceful stop "traps" the stop request (OTP: trap_exit) by awaiting
    `wait_stop_requested` (or passing it as a shutdown trigger, e.g. to hypercorn's
    ``serve(..., shutdown_trigger=current_child().wait_stop_requested)``). When its supervisor
    stops a trapping child with a ``shutdown`` timeout, it sets the stop request and waits up to
    that timeout for the child to return before cancelling it. A child that never trapped is
    cancelled at once (it can still clean up in ``finally``, bounded by its own
    ``anyio.move_on_after(..., shield=True)``). Nested supervisors trap, so a tree stops in
    order.
    """

    __slots__ = ("_callbacks", "_event", "_id", "_stop_requested", "_supervisor", "_trapping")

    def __init__(self, child_id: str, supervisor: str) -> None:
        self._id = child_id
        self._supervisor = supervisor
        self._stop_requested = False
        self._trapping = False
        self._event: anyio.Event | None = None
        self._callbacks: list[Callable[[], object]] = []

    def __repr__(self) -> str:
        return f"<ChildContext {self._supervisor}/{self._id}>"

    @property
    def id(self) -> str:
        """The child's id."""
        return self._id

    @property
    def supervisor(self) -> str:
        """The name of the supervisor running the child."""
        return self._supervisor

    @property
    def stop_requested(self) -> bool:
        """True once the supervisor asked this child to stop."""
        return self._stop_requested

    async def wait_stop_requested(self) -> None:
        """Trap the stop request and wait until the supervisor asks this child to stop."""
        self._trapping = True
        if self._stop_requested:
            await anyio.lowlevel.checkpoint()
            return
        if self._event is None:
            self._event = anyio.Event()
        await self._event.wait()

    def _on_stop_requested(self, callback: Callable[[], object]) -> None:
        """Trap the stop request by a synchronous callback (used by nested supervisors)."""
        self._trapping = True
        if self._stop_requested:
            callback()
        else:
            self._callbacks.append(callback)

    def _request_stop(self) -> None:
        if self._stop_requested:
            return
        self._stop_requested = True
        if self._event is not None:
            self._event.set()
        for callback in self._callbacks:
            callback()


class _Attempt:
    """One incarnation of a child (from launch to exit)."""

    __slots__ = (
        "child",
        "context",
        "done",
        "handled",
        "outcome",
        "returned",
        "scope",
        "settled",
        "started",
        "started_at",
        "stop_requested",
    )

    def __init__(self, child: _Child, supervisor: str) -> None:
        self.child = child
        self.context = ChildContext(child.spec.id, supervisor)
        self.scope = anyio.CancelScope()
        self.settled = anyio.Event()  # set on started() or on exit
        self.done = anyio.Event()  # set on exit
        self.started = False
        self.started_at: float | None = None
        self.outcome: Exception | None = None
        self.returned = False
        self.stop_requested = False
        self.handled = False  # its exit has been dealt with by the main loop


class _TaskStatus:
    """The ``task_status`` handed to a child: records the moment it reports started."""

    __slots__ = ("_attempt",)

    def __init__(self, attempt: _Attempt) -> None:
        self._attempt = attempt

    def started(self, value: object = None) -> None:
        """Report the child ready; the value is ignored.

        Raises:
            RuntimeError: called more than once.
        """
        attempt = self._attempt
        if attempt.started:
            raise RuntimeError("called 'started' twice on the same task status")
        attempt.started = True
        attempt.started_at = anyio.current_time()
        attempt.settled.set()


class _Child:
    __slots__ = (
        "attempt",
        "consecutive",
        "failures",
        "is_restart",
        "last_error",
        "pending",
        "restarts",
        "since",
        "spec",
        "started_in_run",
        "starts",
        "state",
    )

    def __init__(self, spec: ChildSpec) -> None:
        self.spec = spec
        self.state = ChildState.STOPPED
        self.since: float | None = None
        self.attempt: _Attempt | None = None
        self.pending: _Sequence | None = None
        self.is_restart = False  # its next launch counts as a restart
        self.consecutive = 0  # consecutive restarts, for the backoff
        self.restarts = 0
        self.failures = 0
        self.starts = 0
        self.last_error: str | None = None
        self.started_in_run = False  # called started() at least once during the current run

    @property
    def active(self) -> bool:
        return self.attempt is not None or self.pending is not None

    @property
    def holds_start(self) -> bool:
        """Whether this child keeps its supervisor from reporting started.

        It does while it is still to come up for the first time in this run; once it called
        started(), or once it is no longer going to run (not restarted, stopped, deleted), it
        does not, whatever happens to it afterwards.
        """
        return self.active and not self.started_in_run


class _Sequence:
    """Children to start in order, not before `due`."""

    __slots__ = ("due", "ids")

    def __init__(self, ids: list[str], due: float) -> None:
        self.ids = ids
        self.due = due


class _Exited:
    __slots__ = ("attempt",)

    def __init__(self, attempt: _Attempt) -> None:
        self.attempt = attempt


class _Call:
    __slots__ = ("done", "error", "op", "result")

    def __init__(self, op: Callable[[], Awaitable[Any]]) -> None:
        self.op = op
        self.done = anyio.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class _StopRequest:
    __slots__ = ()


class _Stop(Exception):
    """Internal: leave the main loop and stop every child (no error)."""


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "returned normally"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Supervisor:
    """Runs children, restarts them by policy, stops them in order.

    Children start in list order, each once the previous one called ``task_status.started()``;
    ``await nursery.start(sup.run)`` returns as soon as each has called it once, whatever the
    children did since: one that crashed right after started() is being restarted by policy,
    and that restart (and any later one, under every strategy) never holds the start again. They
    stop in reverse order. A child that exits is handled by its `Restart` type; a restart
    applies the `Strategy` and waits the child's `Backoff` delay (``rng`` draws the jitter: pass
    a seeded ``random.Random`` for deterministic tests). More than `intensity` restarts within
    `period` seconds stop every child and make `run` raise `RestartIntensityExceeded`; a parent
    supervisor treats that as a failure of that child (escalation).

    A child that exits before it called started() is a start failure. It counts as a failure
    like any other (retried with backoff, counted against the intensity) and the children after
    it in that start sequence wait for it; if it is the child's first start in this `run`, the
    supervisor is not started until it comes up, so exceeding the intensity meanwhile makes
    ``nursery.start`` raise `RestartIntensityExceeded` (OTP: the supervisor fails to start).
    A child that is not restarted after such an exit (TEMPORARY, or TRANSIENT returning
    normally) no longer holds the start.

    Stopping a child: brutal (``shutdown`` None or 0) cancels it at once; graceful
    (``shutdown`` > 0) sets its stop request (see `ChildContext`) if the child trapped it and
    cancels after ``shutdown`` seconds, else cancels at once. `stop()` (or a parent's stop
    request) stops the supervisor gracefully: children in reverse order, each by its own
    shutdown, then `run` returns. Cancelling `run` from outside cancels all children at once.

    With ``auto_shutdown`` other than NEVER, `significant` children exiting by themselves (not
    restarted, not stopped by the supervisor) make the supervisor stop itself: `run` returns.

    With ``ordered=False`` the children are independent of each other (as the workers of OTP's
    simple_one_for_one): the ones due together are launched together and the supervisor waits
    for all of them at once, so a start costs one scheduler pass, not one per child; a child
    that fails before started() is retried by policy without holding the others; a stop
    requests every child to stop at once (each by its own shutdown) and waits for them
    together, in no order. Only with ONE_FOR_ONE, where no child's restart involves another.

    `listener`, if given, is called synchronously with every `SupervisorEvent` (exceptions it
    raises are logged and ignored). Crashes are logged on the ``supervisor.runtime`` logger
    with the child id in the message and as the record attributes ``actor`` and ``supervisor``
    (tracebacks at ERROR level, through logging only: nothing is printed).

    The dynamic methods (`start_child`, `terminate_child`, `restart_child`, `delete_child`) are
    awaited from any task while `run` runs; they are executed one at a time by the supervisor
    itself, between its own restarts. Cancelling a caller does not undo its operation.

    Raises:
        DuplicateChildError: two specs with the same id.
        ValueError: ``intensity < 0`` or ``period <= 0``, or ``ordered=False`` with a strategy
            other than ONE_FOR_ONE.
    """

    def __init__(
        self,
        children: Iterable[ChildSpec] = (),
        *,
        name: str = "supervisor",
        strategy: Strategy = Strategy.ONE_FOR_ONE,
        intensity: int = 1,
        period: float = 5.0,
        backoff: Backoff | None = None,
        auto_shutdown: AutoShutdown = AutoShutdown.NEVER,
        listener: Callable[[SupervisorEvent], object] | None = None,
        rng: random.Random | None = None,
        ordered: bool = True,
    ) -> None:
        if not ordered and strategy is not Strategy.ONE_FOR_ONE:
            raise ValueError(
                f"supervisor {name!r}: unordered children need the ONE_FOR_ONE strategy"
            )
        self._name = name
        self._strategy = strategy
        self._ordered = ordered
        self._window = RestartWindow(intensity, period)
        self._backoff = Backoff() if backoff is None else backoff
        self._auto_shutdown = auto_shutdown
        self._listener = listener
        self._rng = random.Random() if rng is None else rng
        self._children: list[_Child] = []
        self._by_id: dict[str, _Child] = {}
        for spec in children:
            self._add(spec)
        self._running = False
        self._task_group: anyio.abc.TaskGroup | None = None
        self._inbox: deque[_Exited | _Call | _StopRequest] = deque()
        self._wakeup: anyio.Event | None = None
        self._sequences: list[_Sequence] = []
        self._finished: anyio.Event | None = None
        self._restarts_total = 0
        self._failures_total = 0

    def __repr__(self) -> str:
        return f"<Supervisor {self._name!r} {self._strategy.name} children={len(self._children)}>"

    @property
    def name(self) -> str:
        """The supervisor's name (logs, snapshots, metric paths)."""
        return self._name

    @property
    def running(self) -> bool:
        """True while `run` runs."""
        return self._running

    # -- introspection ---------------------------------------------------------------------------

    def _info(self, child: _Child) -> ChildInfo:
        nested = child.spec.nested
        return ChildInfo(
            id=child.spec.id,
            state=child.state,
            restart=child.spec.restart,
            significant=child.spec.significant,
            restarts=child.restarts,
            failures=child.failures,
            starts=child.starts,
            last_error=child.last_error,
            since=child.since,
            supervisor=None if nested is None else nested.tree(),
        )

    def which_children(self) -> list[ChildInfo]:
        """Frozen snapshots of the children, in start order (nested supervisors included)."""
        return [self._info(child) for child in self._children]

    def tree(self) -> SupervisorInfo:
        """A frozen snapshot of this supervisor and its whole subtree."""
        return SupervisorInfo(
            name=self._name,
            strategy=self._strategy,
            running=self._running,
            restarts=self._restarts_total,
            failures=self._failures_total,
            children=tuple(self.which_children()),
        )

    def statistics(self) -> SupervisorStatistics:
        """Counters of this supervisor and its direct children."""
        try:
            in_period = self._window.count(anyio.current_time()) if self._running else 0
        except RuntimeError:  # no event loop
            in_period = 0
        return SupervisorStatistics(
            name=self._name,
            running=self._running,
            children=len(self._children),
            children_running=sum(c.state is ChildState.RUNNING for c in self._children),
            restarts_total=self._restarts_total,
            failures_total=self._failures_total,
            restarts_in_period=in_period,
        )

    # -- bookkeeping -----------------------------------------------------------------------------

    def _add(self, spec: ChildSpec) -> _Child:
        if spec.id in self._by_id:
            raise DuplicateChildError(self._name, spec.id)
        child = _Child(spec)
        self._children.append(child)
        self._by_id[spec.id] = child
        return child

    def _remove(self, child_ids: set[str]) -> None:
        """Forget the children `child_ids` (stopped), in one pass over the list."""
        self._children = [c for c in self._children if c.spec.id not in child_ids]
        for child_id in child_ids:
            self._by_id.pop(child_id, None)

    def _get(self, child_id: str) -> _Child:
        try:
            return self._by_id[child_id]
        except KeyError:
            raise ChildNotFoundError(self._name, child_id) from None

    def _set_state(self, child: _Child, state: ChildState) -> None:
        child.state = state
        child.since = anyio.current_time()

    def _emit(
        self,
        kind: EventKind,
        child: str | None = None,
        *,
        error: str | None = None,
        delay: float | None = None,
    ) -> None:
        listener = self._listener
        if listener is None:
            return
        event = SupervisorEvent(kind, self._name, child, anyio.current_time(), error, delay)
        try:
            listener(event)
        except Exception:
            _logger.exception("supervisor %r: listener failed on %s", self._name, kind.name)

    def _extra(self, child_id: str) -> dict[str, str]:
        """Structured fields of log records about a child (for JSON log formatters)."""
        return {"supervisor": self._name, "actor": child_id}

    def _post(self, message: _Exited | _Call | _StopRequest) -> None:
        self._inbox.append(message)
        wakeup = self._wakeup
        if wakeup is not None:
            wakeup.set()

    def _request_stop(self) -> None:
        self._post(_StopRequest())
        if not self._running:
            return
        if self._ordered:
            self._stop_last_child_now()
        else:
            self._stop_started_children_now()

    def _ask_now(self, attempt: _Attempt) -> None:
        """Ask the started `attempt` to stop as `_stop_children` will: a child that traps the
        request (with a shutdown) is asked, any other is cancelled."""
        attempt.stop_requested = True
        if attempt.child.spec.shutdown and attempt.context._trapping:
            attempt.context._request_stop()
        else:
            attempt.scope.cancel()

    def _stop_last_child_now(self) -> None:
        """Ordered: ask the child that `_stop_all` stops first (the last one that is active) in
        the requesting call, rather than a scheduler pass later, when the supervisor's own task
        runs. When that child is a nested supervisor, the request goes on down in the same call
        (its own `_request_stop`), so a stop of the root reaches the checks, which start last
        and stop first, in the call that asked it. Nothing is asked while that child is still
        starting or waiting to start (a sequence in progress: children after it may still come
        up, and they stop before it); `_stop_all` then stops every child in reverse order, as
        always."""
        for child in reversed(self._children):
            if not child.active:
                continue
            attempt = child.attempt
            if attempt is not None and attempt.started and not attempt.done.is_set():
                self._ask_now(attempt)
            return

    def _stop_started_children_now(self) -> None:
        """Unordered: ask every started child to stop in the requesting call, as `_stop_all`
        will (a child that does not trap the request, or is brutal, is cancelled; one that
        traps it is asked), rather than a scheduler pass later, when the supervisor's own task
        runs: on a busy loop each pass is long, and a stop crosses several (the signal, the
        parent, this supervisor). `_stop_all` then only waits and records. A child still
        starting is left to `_stop_all` (its start must not look like a failure)."""
        for child in self._children:
            attempt = child.attempt
            if attempt is None or not attempt.started or attempt.done.is_set():
                continue
            self._ask_now(attempt)

    # -- the child task --------------------------------------------------------------------------

    async def _child_main(self, attempt: _Attempt) -> None:
        _current_child.set(attempt.context)
        try:
            with attempt.scope:
                await attempt.child.spec.func(task_status=_TaskStatus(attempt))
                attempt.returned = True
        except Exception as exc:
            attempt.outcome = exc
        finally:
            # Also on a cancellation from outside, which propagates (never swallowed).
            attempt.done.set()
            attempt.settled.set()
            self._post(_Exited(attempt))

    async def _launch(self, child: _Child) -> _Attempt:
        """Start one incarnation of `child` and wait until it started or exited."""
        attempt = self._spawn(child)
        await self._await_start(attempt, anyio.current_time())
        self._settle(attempt)
        return attempt

    async def _launch_all(self, children: list[_Child]) -> list[_Attempt]:
        """Start one incarnation of each of `children` at once and wait until each started or
        exited (unordered supervisors: one scheduler pass for all, not one per child)."""
        now = anyio.current_time()
        attempts = [self._spawn(child) for child in children]
        for attempt in attempts:
            await self._await_start(attempt, now)
        for attempt in attempts:
            self._settle(attempt)
        return attempts

    def _spawn(self, child: _Child) -> _Attempt:
        assert self._task_group is not None
        attempt = _Attempt(child, self._name)
        child.attempt = attempt
        if child.is_restart:
            child.is_restart = False
            child.restarts += 1
            self._restarts_total += 1
        self._set_state(child, ChildState.STARTING)
        self._task_group.start_soon(self._child_main, attempt, name=f"{self._name}/{child.spec.id}")
        return attempt

    async def _await_start(self, attempt: _Attempt, launched: float) -> None:
        """Wait until `attempt` started or exited, or its start timeout (counted from
        `launched`) expired: then cancel it and record a `StartTimeoutError`."""
        if attempt.settled.is_set():
            return
        timeout = attempt.child.spec.start_timeout
        if timeout is None:
            await attempt.settled.wait()
            return
        with anyio.move_on_at(launched + timeout):
            await attempt.settled.wait()
        if not attempt.settled.is_set():
            attempt.scope.cancel()
            await attempt.done.wait()
            attempt.started = attempt.returned = False
            attempt.outcome = StartTimeoutError(self._name, attempt.child.spec.id, timeout)

    def _settle(self, attempt: _Attempt) -> None:
        """Record the outcome of a start: running, or no longer the child's attempt."""
        child = attempt.child
        if attempt.started:
            child.starts += 1
            child.started_in_run = True
            self._set_state(child, ChildState.RUNNING)
            self._emit(EventKind.CHILD_STARTED, child.spec.id)
        else:
            attempt.handled = True
            child.attempt = None

    async def _stop_child(self, child: _Child) -> None:
        """Stop `child` (running or waiting for a restart); it will not be restarted."""
        await self._stop_children([child])

    async def _stop_children(self, children: list[_Child]) -> None:
        """Stop `children` together (each by its own shutdown) and wait for all of them; none
        will be restarted. One child: the stop of OTP's ordered supervisors."""
        stopping: list[tuple[_Child, _Attempt, bool]] = []
        trapped: list[tuple[_Attempt, float]] = []
        now = anyio.current_time()
        for child in children:
            child.pending = None
            attempt = child.attempt
            if attempt is None:
                if child.state is ChildState.RESTARTING:
                    self._set_state(child, ChildState.STOPPED)
                continue
            # Not one asked to stop already (`_ask_now`) that has done so.
            asked = attempt.stop_requested
            exited_by_itself = attempt.done.is_set() and not asked
            attempt.stop_requested = True
            self._set_state(child, ChildState.STOPPING)
            stopping.append((child, attempt, exited_by_itself))
            if exited_by_itself:
                continue
            shutdown = child.spec.shutdown
            if shutdown and attempt.context._trapping:
                attempt.context._request_stop()
                trapped.append((attempt, now + shutdown))
            elif not asked:  # one asked already was cancelled then: thousands, not again
                attempt.scope.cancel()
        for attempt, deadline in trapped:
            if not attempt.done.is_set():
                with anyio.move_on_at(deadline):
                    await attempt.done.wait()
            if not attempt.done.is_set():
                _logger.warning(
                    "supervisor %r: child %r did not stop within %g s; cancelling it",
                    self._name,
                    attempt.child.spec.id,
                    attempt.child.spec.shutdown,
                    extra=self._extra(attempt.child.spec.id),
                )
                attempt.scope.cancel()
        now = anyio.current_time()
        for child, attempt, _ in stopping:
            if attempt.done.is_set():
                continue
            with anyio.move_on_at(now + (child.spec.shutdown or 0)):
                await attempt.done.wait()
            if not attempt.done.is_set():
                _logger.warning(
                    "supervisor %r: child %r still running after cancellation; waiting for it",
                    self._name,
                    child.spec.id,
                    extra=self._extra(child.spec.id),
                )
                await attempt.done.wait()
        for child, attempt, exited_by_itself in stopping:
            self._finish_stop(child, attempt, exited_by_itself)

    def _finish_stop(self, child: _Child, attempt: _Attempt, exited_by_itself: bool) -> None:
        attempt.handled = True
        child.attempt = None
        exc = attempt.outcome
        if exc is not None and exited_by_itself:
            self._record_failure(child, attempt)
        elif exc is not None:
            _logger.warning(
                "supervisor %r: child %r raised while stopping: %s",
                self._name,
                child.spec.id,
                _describe(exc),
                exc_info=exc,
                extra=self._extra(child.spec.id),
            )
        self._set_state(child, ChildState.STOPPED)
        self._emit(EventKind.CHILD_STOPPED, child.spec.id)

    async def _stop_all(self) -> None:
        self._sequences.clear()
        if not self._ordered:
            await self._stop_children([c for c in self._children if c.active])
            return
        for child in reversed(self._children):
            if child.active:
                await self._stop_child(child)

    # -- failure handling ------------------------------------------------------------------------

    def _schedule(self, ids: list[str], due: float) -> None:
        sequence = _Sequence(ids, due)
        for child_id in ids:
            child = self._by_id[child_id]
            child.pending = sequence
            if child.state is not ChildState.RESTARTING:
                self._set_state(child, ChildState.RESTARTING)
        self._sequences.append(sequence)

    def _group(self, child: _Child) -> list[_Child]:
        """The children a failure of `child` restarts (before filtering), in start order."""
        if self._strategy is Strategy.ONE_FOR_ONE:
            return [child]
        if self._strategy is Strategy.ONE_FOR_ALL:
            return [c for c in self._children if c is child or c.active]
        index = self._children.index(child)
        return [child, *(c for c in self._children[index + 1 :] if c.active)]

    async def _on_exit(self, child: _Child, attempt: _Attempt, remaining: list[str]) -> None:
        """Apply the policies to a child that exited by itself.

        `remaining`: children of an interrupted start sequence that still have to start.

        Raises:
            RestartIntensityExceeded: (children not yet stopped).
            _Stop: auto-shutdown triggered.
        """
        now = anyio.current_time()
        exc = attempt.outcome
        child_id = child.spec.id
        if exc is None:
            what = "returned" if attempt.returned else "was cancelled"
            if not attempt.started:
                _logger.warning(
                    "supervisor %r: child %r %s without calling task_status.started()",
                    self._name,
                    child_id,
                    what,
                    extra=self._extra(child_id),
                )
            else:
                _logger.info(
                    "supervisor %r: child %r %s",
                    self._name,
                    child_id,
                    what,
                    extra=self._extra(child_id),
                )
            self._emit(EventKind.CHILD_EXITED, child_id)
        else:
            self._record_failure(child, attempt)
        kind = child.spec.restart
        if kind is Restart.TEMPORARY or (kind is Restart.TRANSIENT and exc is None):
            self._set_state(child, ChildState.STOPPED if exc is None else ChildState.FAILED)
            if child.spec.significant:
                self._check_auto_shutdown()
            if remaining:
                self._schedule(remaining, now)
            return
        if not self._window.add(now):
            self._set_state(child, ChildState.FAILED)
            self._emit(EventKind.INTENSITY_EXCEEDED, child_id, error=child.last_error)
            raise RestartIntensityExceeded(
                self._name, child_id, self._window.intensity, self._window.period
            ) from exc
        if attempt.started_at is not None and now - attempt.started_at >= self._backoff.reset_after:
            child.consecutive = 0
        delay = self._backoff.delay(child.consecutive, self._rng)
        child.consecutive += 1
        child.is_restart = True
        group = self._group(child)
        # Stop the running siblings of the group in reverse start order.
        for sibling in reversed(group):
            if sibling is not child and sibling.attempt is not None:
                await self._stop_child(sibling)
                if sibling.spec.restart is not Restart.TEMPORARY:
                    sibling.is_restart = True
                    self._set_state(sibling, ChildState.RESTARTING)
        restart_ids = {
            c.spec.id
            for c in group
            if c is child or (c.spec.restart is not Restart.TEMPORARY and c.state in _RESTARTABLE)
        }
        restart_ids.update(remaining)
        ordered = [c.spec.id for c in self._children if c.spec.id in restart_ids]
        self._drop_from_sequences(restart_ids)
        self._schedule(ordered, now + delay)
        _logger.info(
            "supervisor %r: restarting %s in %.3f s",
            self._name,
            ", ".join(repr(i) for i in ordered),
            delay,
        )
        self._emit(EventKind.CHILD_RESTART_SCHEDULED, child_id, delay=delay)

    def _record_failure(self, child: _Child, attempt: _Attempt) -> None:
        exc = attempt.outcome
        child.failures += 1
        self._failures_total += 1
        child.last_error = _describe(exc)
        _logger.error(
            "supervisor %r: child %r crashed%s: %s",
            self._name,
            child.spec.id,
            "" if attempt.started else " before it reported started",
            child.last_error,
            exc_info=exc,
            extra=self._extra(child.spec.id),
        )
        self._emit(EventKind.CHILD_FAILED, child.spec.id, error=child.last_error)

    def _drop_from_sequences(self, ids: set[str]) -> None:
        for sequence in self._sequences:
            sequence.ids = [i for i in sequence.ids if i not in ids]
        self._sequences = [s for s in self._sequences if s.ids]

    def _check_auto_shutdown(self) -> None:
        mode = self._auto_shutdown
        if mode is AutoShutdown.NEVER:
            return
        significant = [c for c in self._children if c.spec.significant]
        if mode is AutoShutdown.ANY_SIGNIFICANT or not any(c.active for c in significant):
            _logger.info("supervisor %r: significant child exited; shutting down", self._name)
            raise _Stop

    # -- main loop -------------------------------------------------------------------------------

    async def _run_together(self, sequence: _Sequence) -> None:
        """Unordered supervisors: launch the sequence's children at once; each that failed to
        start is handled alone."""
        due = [self._by_id[i] for i in sequence.ids if i in self._by_id]
        due = [child for child in due if child.pending is sequence]
        for child in due:
            child.pending = None
        for attempt in await self._launch_all(due):
            if not attempt.started:
                await self._on_exit(attempt.child, attempt, [])

    async def _run_sequence(self, sequence: _Sequence) -> None:
        if not self._ordered:
            await self._run_together(sequence)
            return
        ids = sequence.ids
        for index, child_id in enumerate(ids):
            child = self._by_id.get(child_id)
            if child is None or child.pending is not sequence:
                continue
            child.pending = None
            attempt = await self._launch(child)
            if not attempt.started:
                rest = [
                    i
                    for i in ids[index + 1 :]
                    if i in self._by_id and self._by_id[i].pending is sequence
                ]
                await self._on_exit(child, attempt, rest)
                return

    async def _run_due(self) -> bool:
        """Run the sequence that is due first, if any; return whether one ran."""
        if not self._sequences:
            return False
        sequence = min(self._sequences, key=lambda s: s.due)
        if sequence.due > anyio.current_time():
            return False
        self._sequences.remove(sequence)
        await self._run_sequence(sequence)
        return True

    async def _handle(self, message: _Exited | _Call | _StopRequest) -> None:
        if isinstance(message, _Exited):
            attempt = message.attempt
            child = attempt.child
            if attempt.handled or child.attempt is not attempt:
                return
            attempt.handled = True
            child.attempt = None
            await self._on_exit(child, attempt, [])
        elif isinstance(message, _Call):
            try:
                message.result = await message.op()
            except (_Stop, RestartIntensityExceeded):
                message.error = SupervisorStateError(self._name, "stopped during the call")
                raise
            except Exception as exc:
                message.error = exc
            finally:
                message.done.set()
        else:
            raise _Stop

    async def _main(self, task_status: anyio.abc.TaskStatus[None]) -> None:
        if self._children:
            self._schedule([c.spec.id for c in self._children], anyio.current_time())
        reported = False
        inbox = self._inbox
        while True:
            # Report as soon as every child came up once, before any further step: a child that
            # crashed right after started() is then restarted as after the start (OTP), and a
            # crash loop (even one without backoff, which never lets the queues drain) does not
            # hold the caller of `nursery.start`, nor the siblings after us in a parent.
            if not reported and not any(c.holds_start for c in self._children):
                reported = True
                task_status.started()
                self._emit(EventKind.SUPERVISOR_STARTED)
            # One step at a time, messages first, so that a stop request or a call is served
            # even while some child is in a tight crash loop.
            if inbox:
                await self._handle(inbox.popleft())
            elif await self._run_due():
                pass
            else:
                deadline = min((s.due for s in self._sequences), default=math.inf)
                wakeup = self._wakeup = anyio.Event()
                with anyio.move_on_at(deadline):
                    await wakeup.wait()
                self._wakeup = None

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Start the children in order, report started, supervise until stopped.

        Reports started once every child has called ``task_status.started()`` once in this run
        (or will not run: not restarted, terminated or deleted); later restarts never delay it.
        Returns after `stop()`, a parent's stop request, or an auto-shutdown, once every child
        has stopped. Can be run again after it returned or failed (counters keep growing; the
        children are the current list, including dynamic changes).

        Raises:
            RestartIntensityExceeded: too many restarts; every child has been stopped. Before
                started was reported (a child kept failing before its first started()) this is
                what ``nursery.start`` raises.
            SupervisorStateError: already running.
        """
        if self._running:
            raise SupervisorStateError(self._name, "run() called while already running")
        self._running = True
        self._finished = anyio.Event()
        self._window.reset()
        self._inbox.clear()
        self._sequences.clear()
        for child in self._children:
            child.attempt = None
            child.pending = None
            child.consecutive = 0
            child.is_restart = False
            child.started_in_run = False
        error: RestartIntensityExceeded | None = None
        try:
            parent = _current_child.get(None)
            if parent is not None:
                parent._on_stop_requested(self._request_stop)
            async with anyio.create_task_group() as task_group:
                self._task_group = task_group
                try:
                    await self._main(task_status)
                except _Stop:
                    await self._stop_all()
                except RestartIntensityExceeded as exc:
                    await self._stop_all()
                    error = exc
                finally:
                    task_group.cancel_scope.cancel()
        finally:
            self._running = False
            self._task_group = None
            self._wakeup = None
            while self._inbox:
                message = self._inbox.popleft()
                if isinstance(message, _Call):
                    message.error = SupervisorStateError(self._name, "stopped during the call")
                    message.done.set()
            self._finished.set()
            self._emit(EventKind.SUPERVISOR_STOPPED, error=None if error is None else str(error))
        if error is not None:
            _logger.error("%s", error)
            raise error

    # -- control from other tasks ----------------------------------------------------------------

    async def _call(self, op: Callable[[], Awaitable[_R]]) -> _R:
        if not self._running:
            raise SupervisorStateError(self._name, "not running")
        call = _Call(op)
        self._post(call)
        await call.done.wait()
        if call.error is not None:
            raise call.error
        result: _R = call.result
        return result

    async def stop(self) -> None:
        """Stop gracefully (children in reverse order) and wait until `run` has returned.

        Returns at once if not running.
        """
        finished = self._finished
        if not self._running or finished is None:
            return
        self._request_stop()
        await finished.wait()

    def request_stop(self) -> None:
        """Ask for the graceful stop of `stop()` without waiting for it (a signal handler's
        call: synchronous, no checkpoint). The first child to stop is asked in this call: every
        started child of an unordered supervisor, the last active child of an ordered one (and,
        when that child is a nested supervisor, its own first children, and so on down); the
        rest stop in order from the supervisor's own task. Asking again, or after `run` has
        returned, does nothing more. `stop()` afterwards waits for the same stop.
        """
        if self._running:
            self._request_stop()

    async def start_child(self, spec: ChildSpec) -> ChildInfo:
        """Add a child after the existing ones and start it; return once it reported started.

        Raises:
            DuplicateChildError: a child with this id exists (delete it first).
            ChildStartError: it exited before calling started(); it is not added.
            SupervisorStateError: not running.
        """

        async def op() -> ChildInfo:
            child = self._add(spec)
            attempt = await self._launch(child)
            if not attempt.started:
                self._remove({spec.id})
                raise ChildStartError(
                    self._name, spec.id, _describe(attempt.outcome)
                ) from attempt.outcome
            return self._info(child)

        return await self._call(op)

    async def start_children(self, specs: Iterable[ChildSpec]) -> dict[str, ChildStartError]:
        """Add children after the existing ones and start them, as `start_child` does for
        each; return once each reported started or failed to start. An unordered supervisor
        launches them together (one scheduler pass for thousands, not one each), an ordered one
        in the given order. A child that exited before started() is not added.

        Returns the children that failed to start, by id (empty: all of them run).

        Raises:
            DuplicateChildError: an id is already a child's, or given twice (none is started).
            SupervisorStateError: not running.
        """
        batch = list(specs)
        ids = [spec.id for spec in batch]
        seen: set[str] = set()
        for child_id in ids:
            if child_id in self._by_id or child_id in seen:
                raise DuplicateChildError(self._name, child_id)
            seen.add(child_id)

        async def op() -> dict[str, ChildStartError]:
            children = [self._add(spec) for spec in batch]
            if self._ordered:
                attempts = [await self._launch(child) for child in children]
            else:
                attempts = await self._launch_all(children)
            failed: dict[str, ChildStartError] = {}
            for attempt in attempts:
                if attempt.started:
                    continue
                child_id = attempt.child.spec.id
                failed[child_id] = ChildStartError(self._name, child_id, _describe(attempt.outcome))
                failed[child_id].__cause__ = attempt.outcome
            if failed:
                self._remove(set(failed))
            return failed

        return await self._call(op)

    async def terminate_child(self, child_id: str) -> None:
        """Stop a child (by its shutdown policy); it stays stopped until `restart_child`.

        Stopping an already stopped child does nothing. Not counted as a restart or a failure,
        and never triggers an auto-shutdown.

        Raises:
            ChildNotFoundError: no such child.
            SupervisorStateError: not running.
        """

        async def op() -> None:
            child = self._get(child_id)
            if child.active:
                self._drop_from_sequences({child_id})
                await self._stop_child(child)

        await self._call(op)

    async def restart_child(self, child_id: str, spec: ChildSpec | None = None) -> ChildInfo:
        """Stop the child if it runs, then start it again in place; return once it started.

        With `spec` (same id) its specification is replaced first: this is how a hot reload
        applies a changed configuration without touching the other children. Not counted as a
        restart (nor toward the intensity); its backoff starts over.

        Raises:
            ChildNotFoundError: no such child.
            ValueError: `spec` has another id.
            ChildStartError: it exited before calling started(); it is left FAILED/STOPPED.
            SupervisorStateError: not running.
        """
        if spec is not None and spec.id != child_id:
            raise ValueError(f"restart_child({child_id!r}) given a spec for {spec.id!r}")

        async def op() -> ChildInfo:
            child = self._get(child_id)
            if child.active:
                self._drop_from_sequences({child_id})
                await self._stop_child(child)
            if spec is not None:
                child.spec = spec
            child.consecutive = 0
            attempt = await self._launch(child)
            if not attempt.started:
                exc = attempt.outcome
                if exc is not None:
                    child.failures += 1
                    self._failures_total += 1
                    child.last_error = _describe(exc)
                self._set_state(child, ChildState.STOPPED if exc is None else ChildState.FAILED)
                raise ChildStartError(self._name, child_id, _describe(exc)) from exc
            return self._info(child)

        return await self._call(op)

    async def delete_child(self, child_id: str) -> None:
        """Stop the child if it runs and remove it from the supervisor.

        Raises:
            ChildNotFoundError: no such child.
            SupervisorStateError: not running.
        """

        async def op() -> None:
            child = self._get(child_id)
            if child.active:
                self._drop_from_sequences({child_id})
                await self._stop_child(child)
            self._remove({child_id})

        await self._call(op)

    async def delete_children(self, child_ids: Iterable[str]) -> None:
        """Stop the given children that run and remove them all, as `delete_child` does for
        each; an unordered supervisor stops them together (each by its own shutdown), an
        ordered one in reverse start order.

        Raises:
            ChildNotFoundError: an id is no child's (none is deleted).
            SupervisorStateError: not running.
        """
        doomed = set(child_ids)
        for child_id in doomed:
            self._get(child_id)

        async def op() -> None:
            children = [c for c in self._children if c.spec.id in doomed]
            self._drop_from_sequences(doomed)
            if self._ordered:
                for child in reversed(children):
                    if child.active:
                        await self._stop_child(child)
            else:
                await self._stop_children([c for c in children if c.active])
            self._remove(doomed)

        await self._call(op)


_RESTARTABLE = frozenset({ChildState.RESTARTING})

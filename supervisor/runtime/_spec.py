"""Plain data of the runtime: policies (enums), child specifications and frozen snapshots."""

from __future__ import annotations

import enum
import math
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._supervisor import Supervisor

__all__ = [
    "AutoShutdown",
    "ChildFunction",
    "ChildInfo",
    "ChildSpec",
    "ChildState",
    "EventKind",
    "Restart",
    "Strategy",
    "SupervisorEvent",
    "SupervisorInfo",
    "SupervisorStatistics",
]

#: A child is an async function called as ``func(task_status=...)``; it calls
#: ``task_status.started()`` once it is ready. Typed loosely so that functions annotated with
#: either ``trio.TaskStatus`` or ``anyio.abc.TaskStatus`` fit.
ChildFunction = Callable[..., Awaitable[Any]]


class Strategy(enum.Enum):
    """Which children are restarted when one of them fails."""

    ONE_FOR_ONE = "one_for_one"
    """Only the failed child."""
    ONE_FOR_ALL = "one_for_all"
    """All active children: stopped in reverse order, then started again in order."""
    REST_FOR_ONE = "rest_for_one"
    """The failed child and the active children after it in start order."""


class Restart(enum.Enum):
    """When a child that exited is restarted."""

    PERMANENT = "permanent"
    """Always (after a crash and after a normal return)."""
    TRANSIENT = "transient"
    """Only after a crash (an exception); a normal return or a requested stop is final."""
    TEMPORARY = "temporary"
    """Never; its crash does not count toward the intensity nor stop the supervisor."""


class AutoShutdown(enum.Enum):
    """Whether the supervisor stops itself when `significant` children exit by themselves."""

    NEVER = "never"
    ANY_SIGNIFICANT = "any_significant"
    ALL_SIGNIFICANT = "all_significant"


class ChildState(enum.Enum):
    """Life cycle of a child as the supervisor sees it."""

    STARTING = "starting"
    """Launched, has not called ``task_status.started()`` yet."""
    RUNNING = "running"
    STOPPING = "stopping"
    """Asked to stop (graceful shutdown in progress)."""
    RESTARTING = "restarting"
    """Waiting to be started again (backoff delay, or children before it are starting)."""
    STOPPED = "stopped"
    """Not running: never started, stopped on request, or returned normally and not restarted."""
    FAILED = "failed"
    """Not running after a crash, and will not be restarted."""


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """How to run and supervise one child.

    Attributes:
        id: unique within its supervisor; used in logs, snapshots and metrics labels.
        func: ``async def func(*, task_status=anyio.TASK_STATUS_IGNORED)``; it must call
            ``task_status.started()`` once ready (the supervisor starts the next child only
            then), and should never swallow cancellation.
        restart: see `Restart`.
        shutdown: graceful stop timeout in seconds. ``None`` or ``0`` is brutal (cancelled at
            once); ``math.inf`` waits forever (the default for nested supervisors). See
            `Supervisor` for the stop protocol.
        significant: with the supervisor's `auto_shutdown`, this child exiting by itself can stop
            the supervisor. Only for TRANSIENT and TEMPORARY children (as in OTP).
        start_timeout: seconds the child may take to call started(); when it expires the child
            is cancelled and that counts as a failure (`StartTimeoutError`). None: no limit
            (OTP's default; the supervisor waits, since later children depend on this one).
        nested: the `Supervisor` whose ``run`` is `func`, so that snapshots include its subtree.
            Filled in automatically when `func` is a bound ``Supervisor.run``; see
            `ChildSpec.supervisor`.

    Raises:
        ValueError: empty id, negative shutdown or start_timeout, or a significant PERMANENT
            child.
    """

    id: str
    func: ChildFunction
    restart: Restart = Restart.PERMANENT
    shutdown: float | None = 5.0
    significant: bool = False
    start_timeout: float | None = None
    nested: Supervisor | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"ChildSpec.id must be a non-empty string, got {self.id!r}")
        if self.shutdown is not None and not self.shutdown >= 0:
            raise ValueError(f"ChildSpec.shutdown must be >= 0 or None, got {self.shutdown!r}")
        if self.start_timeout is not None and not self.start_timeout >= 0:
            raise ValueError(
                f"ChildSpec.start_timeout must be >= 0 or None, got {self.start_timeout!r}"
            )
        if self.significant and self.restart is Restart.PERMANENT:
            raise ValueError(f"child {self.id!r}: a significant child cannot be PERMANENT")
        if self.nested is None:
            from ._supervisor import Supervisor  # here: _supervisor imports this module

            owner = getattr(self.func, "__self__", None)
            if isinstance(owner, Supervisor) and getattr(self.func, "__name__", "") == "run":
                object.__setattr__(self, "nested", owner)

    @classmethod
    def supervisor(
        cls,
        sup: Supervisor,
        *,
        id: str | None = None,
        restart: Restart = Restart.PERMANENT,
        shutdown: float | None = math.inf,
        significant: bool = False,
        start_timeout: float | None = None,
    ) -> ChildSpec:
        """A child that runs the nested supervisor `sup` (id defaults to ``sup.name``).

        The default shutdown is infinite, as in OTP: the nested supervisor gets all the time
        it needs to stop its own children in reverse order, each within its own timeout.
        """
        return cls(
            id=sup.name if id is None else id,
            func=sup.run,
            restart=restart,
            shutdown=shutdown,
            significant=significant,
            start_timeout=start_timeout,
            nested=sup,
        )


@dataclass(frozen=True, slots=True)
class ChildInfo:
    """Frozen snapshot of one child.

    `restarts` counts restarts done by the supervisor (after this child's failure or as part of a
    strategy group), `failures` the crashes (exceptions, including failures before started),
    `starts` the successful starts. All three only grow over the supervisor's lifetime, so they
    can be exported as Prometheus counters. `since` is the event-loop time
    (`anyio.current_time`) of the last state change, None if it never changed. `supervisor` is
    the snapshot of a nested supervisor.
    """

    id: str
    state: ChildState
    restart: Restart
    significant: bool
    restarts: int
    failures: int
    starts: int
    last_error: str | None
    since: float | None
    supervisor: SupervisorInfo | None = None


@dataclass(frozen=True, slots=True)
class SupervisorInfo:
    """Frozen snapshot of a supervisor and, recursively, its children."""

    name: str
    strategy: Strategy
    running: bool
    restarts: int
    failures: int
    children: tuple[ChildInfo, ...]

    def walk(self, prefix: str = "") -> Iterator[tuple[str, ChildInfo]]:
        """Yield ``(path, info)`` for every child in the tree, depth first, in start order.

        The path joins supervisor names and child ids with ``/``, starting at this
        supervisor's name (or `prefix` if given): ``root/checks/http-api``. Use it as the
        ``actor`` label of ``actor_restarts_total``.
        """
        base = prefix or self.name
        for child in self.children:
            path = f"{base}/{child.id}"
            yield path, child
            if child.supervisor is not None:
                yield from child.supervisor.walk(path)


@dataclass(frozen=True, slots=True)
class SupervisorStatistics:
    """Counters of one supervisor (its direct children only)."""

    name: str
    running: bool
    children: int
    children_running: int
    restarts_total: int
    failures_total: int
    restarts_in_period: int


class EventKind(enum.Enum):
    """What a `SupervisorEvent` reports."""

    CHILD_STARTED = "child_started"
    CHILD_EXITED = "child_exited"
    """Returned normally (or was cancelled) without being asked to stop."""
    CHILD_FAILED = "child_failed"
    """Raised an exception; `error` says what."""
    CHILD_RESTART_SCHEDULED = "child_restart_scheduled"
    """Will be started again after `delay` seconds."""
    CHILD_STOPPED = "child_stopped"
    """Stopped by the supervisor."""
    SUPERVISOR_STARTED = "supervisor_started"
    SUPERVISOR_STOPPED = "supervisor_stopped"
    INTENSITY_EXCEEDED = "intensity_exceeded"


@dataclass(frozen=True, slots=True)
class SupervisorEvent:
    """One thing that happened in a supervisor, passed to its `listener`."""

    kind: EventKind
    supervisor: str
    child: str | None
    time: float
    error: str | None = None
    delay: float | None = None

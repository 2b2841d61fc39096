"""Every exception raised by `supervisor.runtime`.

The tree::

    Exception
    └── SupervisorError                  base of everything raised here
        ├── RestartIntensityExceeded     Supervisor.run: too many restarts within `period`
        ├── ChildStartError              start_child/restart_child: child exited before started()
        ├── StartTimeoutError            (also TimeoutError) a child's start_timeout expired
        ├── ChildNotFoundError           (also LookupError) no child with that id
        ├── DuplicateChildError          (also ValueError) a child with that id already exists
        ├── SupervisorStateError         (also RuntimeError) run() while running, a call on a
        │                                supervisor that is not running
        └── NotSupervisedError           (also LookupError) current_child() outside a child

`Mailbox` raises anyio's stream exceptions, like a memory object stream would:
`anyio.WouldBlock` (``*_nowait`` cannot proceed), `anyio.EndOfStream` (receive on a closed, drained
mailbox) and `anyio.ClosedResourceError` (send on a closed mailbox).

Each exception carries its context as attributes and builds its own message.
"""

from __future__ import annotations

__all__ = [
    "ChildNotFoundError",
    "ChildStartError",
    "DuplicateChildError",
    "NotSupervisedError",
    "RestartIntensityExceeded",
    "StartTimeoutError",
    "SupervisorError",
    "SupervisorStateError",
]


class SupervisorError(Exception):
    """Base class of every exception raised by `supervisor.runtime`."""


class RestartIntensityExceeded(SupervisorError):
    """More than `intensity` restarts happened within `period` seconds in one supervisor.

    The supervisor has stopped all its children (in reverse start order) before this is raised
    from `Supervisor.run`. A parent supervisor treats it as a failure of that child, which is how
    escalation works through nested supervisors. `__cause__` is the error of the child whose
    failure exceeded the intensity (None if it returned normally).
    """

    def __init__(self, supervisor: str, child: str, intensity: int, period: float) -> None:
        self.supervisor = supervisor
        self.child = child
        self.intensity = intensity
        self.period = period
        super().__init__(
            f"supervisor {supervisor!r}: more than {intensity} restart(s) within {period:g} s "
            f"(last failure: child {child!r}); all children stopped"
        )


class ChildStartError(SupervisorError):
    """A child started through `start_child`/`restart_child` exited before calling started().

    `__cause__` is the child's exception, None if it returned normally.
    """

    def __init__(self, supervisor: str, child: str, reason: str) -> None:
        self.supervisor = supervisor
        self.child = child
        self.reason = reason
        super().__init__(
            f"supervisor {supervisor!r}: child {child!r} exited before it reported started: "
            f"{reason}"
        )


class StartTimeoutError(SupervisorError, TimeoutError):
    """A child did not call ``task_status.started()`` within its `ChildSpec.start_timeout`.

    It is the failure recorded for that child (it was cancelled); it is not raised to callers
    except as the ``__cause__`` of `ChildStartError`.
    """

    def __init__(self, supervisor: str, child: str, timeout: float) -> None:
        self.supervisor = supervisor
        self.child = child
        self.timeout = timeout
        super().__init__(
            f"supervisor {supervisor!r}: child {child!r} did not report started within "
            f"{timeout:g} s"
        )


class ChildNotFoundError(SupervisorError, LookupError):
    """No child with this id in this supervisor."""

    def __init__(self, supervisor: str, child: str) -> None:
        self.supervisor = supervisor
        self.child = child
        super().__init__(f"supervisor {supervisor!r} has no child {child!r}")

    def __str__(self) -> str:  # LookupError would repr() the args
        return str(self.args[0])


class DuplicateChildError(SupervisorError, ValueError):
    """A child with this id already exists in this supervisor."""

    def __init__(self, supervisor: str, child: str) -> None:
        self.supervisor = supervisor
        self.child = child
        super().__init__(f"supervisor {supervisor!r} already has a child {child!r}")


class SupervisorStateError(SupervisorError, RuntimeError):
    """The supervisor is not in a state that allows this call (running twice, not running)."""

    def __init__(self, supervisor: str, problem: str) -> None:
        self.supervisor = supervisor
        self.problem = problem
        super().__init__(f"supervisor {supervisor!r}: {problem}")


class NotSupervisedError(SupervisorError, LookupError):
    """`current_child()` was called from a task that is not (inside) a supervised child."""

    def __init__(self) -> None:
        super().__init__("current_child() called outside a supervised child task")

    def __str__(self) -> str:
        return str(self.args[0])


def leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups, or `exc` itself."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]

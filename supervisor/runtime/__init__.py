"""Generic OTP-style supervision runtime on anyio (runs on trio and asyncio).

`Supervisor` runs `ChildSpec` children with OTP strategies, restart types, restart intensity
(escalating through nested supervisors), exponential `Backoff` with jitter, ordered start and
reverse-order stop with per-child shutdown timeouts, significant children with auto-shutdown,
dynamic children and frozen introspection snapshots. `Mailbox` is the bounded, typed channel
between children that survives their restarts.

This package imports only anyio, trio and the standard library, and knows nothing of
monitoring. The implementation lives in private modules; this module is the public surface.
"""

from __future__ import annotations

from ._backoff import Backoff, RestartWindow
from ._exceptions import (
    ChildNotFoundError,
    ChildStartError,
    DuplicateChildError,
    NotSupervisedError,
    RestartIntensityExceeded,
    StartTimeoutError,
    SupervisorError,
    SupervisorStateError,
)
from ._mailbox import Mailbox, MailboxStatistics, Overflow
from ._spec import (
    AutoShutdown,
    ChildFunction,
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
from ._supervisor import ChildContext, Supervisor, current_child

__all__ = [
    "AutoShutdown",
    "Backoff",
    "ChildContext",
    "ChildFunction",
    "ChildInfo",
    "ChildNotFoundError",
    "ChildSpec",
    "ChildStartError",
    "ChildState",
    "DuplicateChildError",
    "EventKind",
    "Mailbox",
    "MailboxStatistics",
    "NotSupervisedError",
    "Overflow",
    "Restart",
    "RestartIntensityExceeded",
    "RestartWindow",
    "StartTimeoutError",
    "Strategy",
    "Supervisor",
    "SupervisorError",
    "SupervisorEvent",
    "SupervisorInfo",
    "SupervisorStateError",
    "SupervisorStatistics",
    "current_child",
]

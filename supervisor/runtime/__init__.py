"""Generic OTP-style supervision runtime on anyio (runs on trio and asyncio).

`Supervisor` runs `ChildSpec` children with OTP strategies, restart types, restart intensity
(escalating through nested supervisors), exponential `Backoff` with jitter, ordered start and
reverse-order stop with per-child shutdown timeouts, significant children with auto-shutdown,
dynamic children and frozen introspection snapshots. `Mailbox` is the bounded, typed channel
between children that survives their restarts.

This package imports only anyio, trio and the standard library, and knows nothing of
monitoring. The implementation lives in private modules; this module is the public surface.

Example::

    results: Mailbox[CheckResult] = Mailbox("results", 1024)   # owned by the composition root
    checks = Supervisor([ChildSpec("http-api", http_check.run)], name="checks", intensity=10)
    root = Supervisor(
        [ChildSpec("state", state.run), ChildSpec.supervisor(checks), ChildSpec("web", web.run)],
        name="root", strategy=Strategy.ONE_FOR_ONE, intensity=3, period=5.0,
        backoff=Backoff(initial=0.0, base=0.5, factor=2.0, maximum=30.0, jitter=0.1),
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(root.run)      # every child has called task_status.started()
        ...
        await checks.restart_child("http-api", ChildSpec("http-api", new_check.run))  # reload
        for path, info in root.tree().walk():  # "root/checks/http-api", ChildInfo(...)
            restarts_total.labels(actor=path).set(info.restarts)
        await root.stop()                  # graceful: reverse order, per-child shutdown
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
    leaves,
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
    "leaves",
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

"""What a subsystem is (`Subsystem`) and what the composition root lends each one (`Wiring`).

A subsystem (telemetry, checks, notify, routing, web) builds the objects of its concern once,
gives the child specs it runs in the supervision tree (`specs()`), and applies its part of a
configuration change on reload (`apply(old, new, report)`: it works out its part of the diff
with `supervisor.app.reload`, starts, stops or restarts only that, and fills in the report).
`App` (`supervisor.app.root`) only wires them: it builds them in dependency order, puts their
specs under the root supervisor in start order, and hands each reload to them in turn.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from actors.clock import Clock
from supervisor.app.reload import ReportBuilder
from supervisor.config import Config, SupervisorConfig
from supervisor.runtime import Backoff, ChildSpec, Strategy, Supervisor, SupervisorInfo

__all__ = ["Subsystem", "Wiring"]


class Subsystem(Protocol):
    """One concern of the process: its child specs, and how it takes a configuration change."""

    def specs(self) -> list[ChildSpec]:
        """The children it runs, in start order (built once; a reload replaces them itself)."""
        ...

    async def apply(self, old: Config, new: Config, report: ReportBuilder) -> None:
        """Apply its part of the change from `old` to `new` on the running tree; what it
        started, stopped or restarted and any error go into `report`.

        Raises: nothing for a bad part of the configuration (it is reported in `report.errors`
        and the rest keeps running).
        """
        ...


@dataclass(frozen=True, kw_only=True)
class Wiring:
    """What the composition root lends every subsystem.

    Attributes:
        clock: the clock seam.
        settings: [supervisor] (restart intensity, backoff, graceful stop); a reload does not
            change it.
        root: the root supervisor, once built (a subsystem whose children are the root's own
            restarts them through it).
        tree: the root supervisor's snapshot (None before it runs).
    """

    clock: Clock
    settings: SupervisorConfig
    root: Callable[[], Supervisor]
    tree: Callable[[], SupervisorInfo | None]

    @property
    def shutdown(self) -> float:
        """Seconds a worker child may take to stop gracefully."""
        return min(5.0, self.settings.shutdown_timeout)

    def child(self, child_id: str, run: Callable[..., Awaitable[Any]]) -> ChildSpec:
        """A worker child spec with the graceful stop time of `shutdown`."""
        return ChildSpec(child_id, run, shutdown=self.shutdown)

    def supervisor(
        self, name: str, children: Sequence[ChildSpec], *, ordered: bool = True
    ) -> Supervisor:
        """A one-for-one supervisor with the [supervisor] intensity, period and backoff;
        ``ordered=False`` for independent children that start and stop together (see
        `Supervisor`)."""
        settings = self.settings
        return Supervisor(
            children,
            name=name,
            strategy=Strategy.ONE_FOR_ONE,
            intensity=settings.intensity,
            period=settings.period,
            backoff=Backoff(
                initial=settings.backoff_initial,
                base=settings.backoff_initial,
                maximum=settings.backoff_max,
            ),
            ordered=ordered,
        )

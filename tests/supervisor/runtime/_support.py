"""Test actors for the runtime tests; backend-neutral (anyio) so asyncio tests reuse them."""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import anyio.abc

from supervisor.runtime import current_child

__all__ = ["Actor", "Boom", "Step"]

#: One incarnation's behaviour: "run" (forever), "crash", "return", "crash_before_start",
#: "return_before_start", "trap" (graceful: wait for the stop request, then clean up for
#: `delay` seconds), optionally with a delay: ("crash", 1.0) crashes 1 s after started.
Step = str | tuple[str, float]


class Boom(Exception):
    """The error test actors crash with."""


class Actor:
    """A child function with a scripted behaviour per incarnation; records what happens.

    Log entries: ``name:up`` (started), ``name:crash``, ``name:return``, ``name:cancelled``,
    ``name:stop-requested``, ``name:cleaned``, ``name:begin`` (called).
    """

    def __init__(
        self,
        name: str,
        log: list[str],
        plan: Sequence[Step] = (),
        *,
        start_delay: float = 0.0,
    ) -> None:
        self.name = name
        self.log = log
        self.plan = list(plan)
        self.start_delay = start_delay
        self.incarnations = 0
        self.up_times: list[float] = []

    async def __call__(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        self.incarnations += 1
        step = self.plan.pop(0) if self.plan else "run"
        kind, delay = step if isinstance(step, tuple) else (step, 0.0)
        self.log.append(f"{self.name}:begin")
        if self.start_delay:
            await anyio.sleep(self.start_delay)
        if kind == "crash_before_start":
            self.log.append(f"{self.name}:crash")
            raise Boom(f"{self.name} failed to start")
        if kind == "return_before_start":
            self.log.append(f"{self.name}:return")
            return
        task_status.started()
        self.up_times.append(anyio.current_time())
        self.log.append(f"{self.name}:up")
        try:
            if kind == "run":
                await anyio.sleep_forever()
            if kind == "trap":
                await current_child().wait_stop_requested()
                self.log.append(f"{self.name}:stop-requested")
                await anyio.sleep(delay)
                self.log.append(f"{self.name}:cleaned")
                return
            await anyio.sleep(delay)
        except anyio.get_cancelled_exc_class():
            self.log.append(f"{self.name}:cancelled")
            raise
        if kind == "crash":
            self.log.append(f"{self.name}:crash")
            raise Boom(f"{self.name} crashed")
        self.log.append(f"{self.name}:return")

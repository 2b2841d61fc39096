"""Scheduler passes, counted: for tests that pin how soon something happens on a busy loop
(each pass is long there), not how many seconds it takes."""

from __future__ import annotations

import trio


class Passes(trio.abc.Instrument):
    """Counts the scheduler's passes (each pass ends in one wait for I/O); `cancelled_at` holds
    the pass in which each `sleeper` task was cancelled."""

    def __init__(self) -> None:
        self.count = 0
        self.cancelled_at: list[int] = []

    def before_io_wait(self, timeout: float) -> None:
        self.count += 1

    async def sleeper(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """A child that starts, then sleeps until cancelled, noting the pass it was cancelled in."""
        task_status.started()
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            self.cancelled_at.append(self.count)
            raise

"""The clock seam: every actor asks a `Clock` for time, so tests can drive it.

`now()` is wall time (Unix seconds) for what users see; `monotonic()` is the event loop's clock
for deadlines and windows. `VirtualClock` ties wall time to the loop's clock so that tests running
under pytest-trio's autojump clock see both move together, without real sleeps.
"""

from __future__ import annotations

import time
from typing import Protocol

import anyio

__all__ = ["Clock", "FixedClock", "SystemClock", "VirtualClock"]


class Clock(Protocol):
    """What actors need to know about time."""

    def now(self) -> float:
        """Wall-clock time in Unix seconds."""
        ...

    def monotonic(self) -> float:
        """Monotonic seconds; only differences are meaningful."""
        ...


class SystemClock:
    """Real time: `time.time()` and the running event loop's clock.

    `monotonic()` must be called from inside an anyio event loop (trio or asyncio).
    """

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return anyio.current_time()


class VirtualClock:
    """Wall time that follows the event loop's (possibly virtual) clock: `start + loop time`.

    Under pytest-trio's `autojump_clock`, sleeping an hour advances `now()` by an hour instantly.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._start = start

    def now(self) -> float:
        return self._start + anyio.current_time()

    def monotonic(self) -> float:
        return anyio.current_time()


class FixedClock:
    """A clock that moves only when told to, for pure-logic tests outside an event loop."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._wall = start
        self._mono = 0.0

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by `seconds`."""
        self._wall += seconds
        self._mono += seconds

    def now(self) -> float:
        return self._wall

    def monotonic(self) -> float:
        return self._mono

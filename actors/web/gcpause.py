"""`CollectorPause`: the cyclic garbage collector paused while /metrics snapshots exist, within a
bound.

Why pause: a render's snapshot of 40,000 series is as many tracked objects; alive through the
render's steps, they were promoted to the oldest generation and set off a full collection, ~60
ms of the event loop in one piece. Paused, the snapshot is freed by reference counting before
any collection sees it.

Why a bound: renders overlap (each format has its own; back-to-back scrapes start one before the
previous ended), and a pause that lasts while any render holds it could last for ever under
steady scrapes: the collector would never run and cyclic garbage would pile up. So:

- sections (`paused()`) may overlap: the collector is disabled from the first one's start and
  enabled again when the last one ends;
- however they overlap, it is never kept disabled longer than `longest` seconds: `check()`
  (called at every step of a render, and when a section starts or ends) enables it once the
  pause has lasted that long; the sections then open run with the collector on (a collection
  may then walk a snapshot: the ~60 ms step, at most once per bound), and the next section that
  starts after all of them ended pauses again;
- a collector disabled by something else is left alone (never enabled by this object).

The collector is one per process: a process's renderers should share one `CollectorPause`.
Independent ones stay correct (only the one that disabled the collector enables it), they only
pause less. Must be used from one thread (trio's).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import trio

__all__ = ["LONGEST_PAUSE", "CollectorPause", "PauseStatistics"]

LONGEST_PAUSE = 5.0
"""Seconds the collector may stay disabled by overlapping renders (a render of 40,000 series
needs a few hundred milliseconds of the loop's CPU; the cyclic garbage of a few seconds is
small)."""


@dataclass(frozen=True, slots=True)
class PauseStatistics:
    """A snapshot of a `CollectorPause`.

    Attributes:
        sections: sections open now.
        holding: whether this object holds the collector disabled now.
        pauses: times it disabled the collector.
        cut_short: pauses ended by the bound while sections were still open.
    """

    sections: int
    holding: bool
    pauses: int
    cut_short: int


class CollectorPause:
    """Pauses the cyclic garbage collector during `paused()` sections, for at most `longest`
    seconds at a stretch (see the module docstring).

    Args:
        longest: the bound, in seconds of `clock`.
        clock: the current time (default: trio's clock, so tests may drive it virtually).
    """

    def __init__(self, *, longest: float = LONGEST_PAUSE, clock: Callable[[], float] | None = None):
        self._longest = longest
        self._clock = clock if clock is not None else trio.current_time
        self._sections = 0
        self._since: float | None = None  # when this object disabled the collector, if it holds
        self._pauses = 0
        self._cut_short = 0

    @contextmanager
    def paused(self) -> Iterator[None]:
        """A section during which the collector stays disabled, within the bound. Raises
        nothing of its own."""
        if self._sections == 0 and gc.isenabled():
            gc.disable()
            self._since = self._clock()
            self._pauses += 1
        self._sections += 1
        try:
            yield
        finally:
            self._sections -= 1
            if self._sections == 0:
                self._resume()
            else:
                self.check()

    def check(self) -> None:
        """Enable the collector if this object has held it disabled for `longest` or more."""
        if self._since is not None and self._clock() - self._since >= self._longest:
            self._cut_short += 1
            self._resume()

    def statistics(self) -> PauseStatistics:
        """Return a frozen snapshot of the counters."""
        return PauseStatistics(
            self._sections, self._since is not None, self._pauses, self._cut_short
        )

    def _resume(self) -> None:
        if self._since is not None:
            self._since = None
            gc.enable()

"""When a check runs: a fixed phase per check, so the checks of one interval spread over it.

A check's runs after the first are due on its grid, ``phase + k * interval`` in the event loop's
time (k an integer), where ``phase`` in [0, interval) comes from a hash of the check's name
(BLAKE2b: the same in every process and every run, and even over similar names). The checks of
one interval are so spread evenly over it, whenever each started, instead of firing together in
one burst each interval; a check restarted by a reload keeps its grid.

The first run comes promptly: ``phase / interval * min(interval, first_round)`` after the start,
so the first round (readiness waits for it) takes at most `first_round` seconds (by default
`FIRST_ROUND`, a second) and is spread over it too; the composition root widens it for thousands
of checks (`first_round_for`), whose first runs (each a new connection) would otherwise come in
one burst the process cannot answer in time. The run
after a run due at ``due`` is the first grid point at least half an interval later (so the first
and second runs are between half and one and a half intervals apart, the others one interval).
A run that ended after its successor's grid point skips the grid points that passed meanwhile
(overrun) instead of piling up.

Pure: no clock and no event loop; the check actor asks it for due times.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

__all__ = ["FIRST_ROUND", "FIRST_RUNS_PER_SECOND", "Cadence", "first_round_for"]

FIRST_ROUND = 1.0
"""Seconds over which the first runs of checks started together are spread, at least."""

FIRST_RUNS_PER_SECOND = 500
"""The pace of the first round of many checks (`first_round_for`): each first run opens a
connection, which costs a few times a kept-alive run."""


def first_round_for(checks: int) -> float:
    """Seconds over which the first runs of `checks` checks started together are spread:
    `FIRST_ROUND`, or longer at `FIRST_RUNS_PER_SECOND` (a check's interval still bounds its
    own first run: `Cadence.first`)."""
    return max(FIRST_ROUND, checks / FIRST_RUNS_PER_SECOND)


@dataclass(frozen=True, slots=True)
class Cadence:
    """The due times of one check's runs (see the module docstring).

    Attributes:
        interval: seconds between runs (> 0).
        phase: the offset of the check's grid in [0, interval).
    """

    interval: float
    phase: float

    @classmethod
    def of(cls, name: str, interval: float) -> Cadence:
        """The cadence of the check `name` run every `interval` seconds (> 0)."""
        digest = hashlib.blake2b(name.encode("utf-8", "surrogateescape"), digest_size=8).digest()
        fraction = (int.from_bytes(digest, "big") >> 11) / 2**53  # exact: in [0, 1)
        return cls(interval, fraction * interval)

    def first(self, start: float, first_round: float = FIRST_ROUND) -> float:
        """When the first run is due, for a check started at `start` with checks whose first
        runs are spread over `first_round` seconds (at most its interval)."""
        return start + self.phase / self.interval * min(self.interval, first_round)

    def grid_at_or_after(self, time: float) -> float:
        """The first point of the check's grid at or after `time`."""
        steps = math.ceil((time - self.phase) / self.interval)
        return self.phase + steps * self.interval

    def following(self, due: float, now: float) -> tuple[float, int]:
        """(When the run after the one due at `due` is due, how many grid points were skipped)
        for a run that ended at `now`: the first grid point at least half an interval after
        `due`, or, when that passed before `now`, the first one at or after `now`."""
        following = self.grid_at_or_after(due + self.interval / 2)
        if following >= now:
            return following, 0
        later = self.grid_at_or_after(now)
        return later, round((later - following) / self.interval)

"""`Lateness`: how far behind its schedule the process runs its checks, and what to do about it.

Every check actor tells it how late each run started (`ran`) and how many runs it skipped
(`skipped`). From that it keeps, in O(1) per run:
- the metrics ``check_lateness_seconds`` (histogram of how late runs start: the event loop's own
  delay, the same for every check, so without labels), ``check_runs_skipped_total{reason}``
  (``overrun``: slots a run missed because it and its lateness lasted longer than its interval;
  ``late``: runs whose timeout the monitor caused, see below) and ``check_overloaded`` (1 while
  overloaded);
- whether the process keeps up: it is *overloaded* while, over the last `WINDOW` seconds, at
  least `OVERLOAD_SHARE` of the runs started more than `LATE` seconds late, or a run was
  skipped as ``late``. Each change is logged (warning, then info when it keeps up again) and
  passed to `on_change` (the health state shows it as a readiness reason; `self` checks warn);
- the worst lateness per second over the last `HISTORY` seconds, so that a timed-out probe can
  tell whether the monitor was late while it waited (`monitor_was_late`).

A timeout counts against the target only for the time the probe could actually wait on the
network. While the loop runs late, a probe's deadline is extended by the recent lateness (at
most its timeout again: `grace`), so slow runs finish instead of being cancelled, and since a
check schedules its next run only after the last one ended, fewer runs start: the load sheds
itself instead of feeding on reconnects. When the loop was late by more than `LATE_SHARE` of the
timeout beyond that grace during the probe (a check started that late meanwhile, or the timeout
itself fired that late: a reply that arrived during a stall is then cancelled with it), the run
is withheld (no result, counted as skipped ``late``) instead of reporting the target failing.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

from actors.state import HEALTH_METRICS_RESOLUTION
from actors.telemetry.protocols import BoundSample, MetricBinder, MetricWriter

__all__ = [
    "GRACE_LOOKBACK",
    "HISTORY",
    "LATE",
    "LATENESS_BUCKETS",
    "LATE_SHARE",
    "OVERLOAD_SHARE",
    "WINDOW",
    "Lateness",
]

WINDOW = 10
"""Seconds over which overload is judged."""

LATE = 0.5
"""A run that starts more than this many seconds late counts as late."""

OVERLOAD_SHARE = 0.1
"""Overloaded when at least this share of the runs in the window started late."""

LATE_SHARE = 0.1
"""A timeout is the monitor's when the loop was late by more than this share of it."""

GRACE_LOOKBACK = 2.0
"""Seconds of recent lateness that extend a probe's deadline (see `Lateness.grace`)."""

HISTORY = 64
"""Seconds of worst-lateness history kept for judging timeouts (longer timeouts look back this
far)."""

LATENESS_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)

_GRACE_SECONDS = math.ceil(GRACE_LOOKBACK)
"""Whole seconds before the current one that `grace` looks back over."""

_LATENESS = "check_lateness_seconds"
_SKIPPED = "check_runs_skipped_total"
_OVERLOADED = "check_overloaded"


class Lateness:
    """The process's lateness at running its checks. See the module docstring.

    Args:
        recorder: the metric store (the three metrics are declared here); None: no metrics.
        on_change: called with the overload reason when the process becomes overloaded, and
            with None when it keeps up again.
        logger: where the changes are logged (default: ``actors.checks``).

    Times are the event loop's (`Clock.monotonic`); the object is used from one thread.
    """

    def __init__(
        self,
        *,
        recorder: MetricWriter | None = None,
        on_change: Callable[[str | None], None] | None = None,
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
    ) -> None:
        self._recorder = recorder
        self._on_change = on_change
        self._log = logger or logging.getLogger("actors.checks")
        # Per second (slot = int(loop time) % size): runs, late runs, withheld runs, worst.
        self._second = -1
        self._runs = [0] * WINDOW
        self._late = [0] * WINDOW
        self._withheld = [0] * WINDOW
        self._worst = [0.0] * HISTORY
        self._worst_second = [-1] * HISTORY
        self._overload: str | None = None
        # `grace`'s look-back, kept up to date by `ran`: the worst lateness of the seconds
        # `_grace_second` - ceil(GRACE_LOOKBACK) .. `_grace_second` (one test per run instead
        # of a look-back over those seconds).
        self._grace_second = -1
        self._grace_worst = 0.0
        if recorder is not None:
            recorder.declare(
                _LATENESS,
                "histogram",
                "How late check runs started after their scheduled time, in seconds.",
                (),
                LATENESS_BUCKETS,
                resolution=HEALTH_METRICS_RESOLUTION,
            )
            recorder.declare(
                _SKIPPED,
                "counter",
                "Check runs skipped: overrun (slots missed) or late (a timeout the monitor "
                "caused; no result reported).",
                ("reason",),
                resolution=HEALTH_METRICS_RESOLUTION,
            )
            recorder.declare(
                _OVERLOADED,
                "gauge",
                "1 while the process cannot run its checks on time.",
                (),
            )
            recorder.record(_OVERLOADED, 0.0)
        # The lateness of every run goes to one series: resolved once where the store can.
        self._lateness: BoundSample | None = None
        if isinstance(recorder, MetricBinder):
            self._lateness = recorder.bind(_LATENESS)

    @property
    def overload(self) -> str | None:
        """Why the process is overloaded now, or None when it keeps up."""
        return self._overload

    def ran(self, late: float, now: float, *, first: bool = False) -> None:
        """A run started `late` seconds after it was due, at loop time `now`.

        A check's `first` run counts in the metric and the worst lateness but not in the
        overload judgement: the first round of many checks is one burst by design (readiness
        waits for it), not the pace the process has to keep.
        """
        slot = self._advance(now)
        if not first:
            self._runs[slot] += 1
            if late > LATE:
                self._late[slot] += 1
        at = int(now) % HISTORY
        if self._worst_second[at] != int(now):
            self._worst_second[at] = int(now)
            self._worst[at] = 0.0
        if late > self._worst[at]:
            self._worst[at] = late
            if late > self._grace_worst and 0 <= self._grace_second - int(now) <= _GRACE_SECONDS:
                self._grace_worst = late
        if self._lateness is not None:
            self._lateness.record(max(0.0, late))
        elif self._recorder is not None:
            self._recorder.record(_LATENESS, max(0.0, late))

    def skipped(self, count: int, reason: str, now: float) -> None:
        """`count` runs were skipped at loop time `now`; `reason` is "overrun" or "late"."""
        if count <= 0:
            return
        slot = self._advance(now)
        if reason == "late":
            self._withheld[slot] += count
        if self._recorder is not None:
            self._recorder.record(_SKIPPED, float(count), {"reason": reason})

    def worst(self, start: float, end: float) -> float:
        """The worst lateness of the runs that started in the seconds from `start` to `end`
        (the last `HISTORY` seconds at most)."""
        worst = 0.0
        first = max(int(start), int(end) - HISTORY + 1)
        for second in range(first, int(end) + 1):
            at = second % HISTORY
            if self._worst_second[at] == second:
                worst = max(worst, self._worst[at])
        return worst

    def grace(self, now: float, timeout: float) -> float:
        """Extra seconds to give a probe starting at `now` beyond its `timeout`: the worst
        lateness of the last `GRACE_LOOKBACK` seconds, at most the timeout itself.

        While the loop is late, a probe needs that much more wall time to wait its timeout on
        the network; cancelling it earlier would throw its connection away and make the next
        run cost a new one (the overload feeding itself).
        """
        second = int(now)
        if second != self._grace_second:
            self._grace_second = second
            self._grace_worst = self.worst(now - GRACE_LOOKBACK, now)
        return min(timeout, self._grace_worst)

    def monitor_was_late(
        self, *, start: float, now: float, fired_late: float, timeout: float, grace: float = 0.0
    ) -> bool:
        """Whether a probe that started at `start` with `timeout` plus `grace` seconds and timed
        out at `now` (the timeout firing `fired_late` seconds after its deadline) lost more than
        `LATE_SHARE` of its `timeout` to the monitor's lateness, beyond the grace it was given."""
        lag = max(fired_late, self.worst(start, now) - grace)
        return lag > LATE_SHARE * timeout

    # -- internals -----------------------------------------------------------------------------

    def _advance(self, now: float) -> int:
        """The window slot of `now`; on entering a new second, clear the seconds passed and
        judge the window of complete seconds."""
        second = int(now)
        if second != self._second:
            if self._second >= 0:
                for passed in range(max(self._second + 1, second - WINDOW + 1), second + 1):
                    at = passed % WINDOW
                    self._runs[at] = self._late[at] = self._withheld[at] = 0
                self._judge(second)
            self._second = second
        return second % WINDOW

    def _judge(self, second: int) -> None:
        runs, late, withheld = sum(self._runs), sum(self._late), sum(self._withheld)
        reason: str | None = None
        if withheld or (runs and late >= math.ceil(OVERLOAD_SHARE * runs)):
            share = late / runs if runs else 0.0
            reason = (
                f"overloaded: {share:.0%} of the check runs in the last {WINDOW} s started more "
                f"than {LATE:g} s late (worst {self.worst(second - WINDOW, second):.2f} s)"
            )
            if withheld:
                reason += f"; {withheld} timed out because of it, not reported"
        previous, self._overload = self._overload, reason
        if reason == previous:
            return
        if (reason is None) != (previous is None):
            if reason is not None:
                self._log.warning("checks cannot keep up: %s", reason)
            else:
                self._log.info("checks keep up again")
            if self._recorder is not None:
                self._recorder.record(_OVERLOADED, 0.0 if reason is None else 1.0)
        if self._on_change is not None:
            self._on_change(reason)

"""The SLO actor: counts each SLO's events from the metric store and records the `slo_*` metrics.

Every `interval` (30 s by default) it reads the cumulative counts of the series each SLO selects
(a counter's total, a histogram's count and its bucket at `le`, as `/metrics` exposes them), adds
what they grew by since the last read to the SLO's `Ledger` (a count lower than before was
reset; a series created since the last read counts from 0, one that existed when the actor
started is its baseline), and records:

- `slo_objective{slo}`, `slo_sli{slo}` and `slo_error_budget_remaining{slo}` over the SLO's
  window (the last two only once events were counted);
- `slo_burn_rate{slo, window}` for 5m 30m 1h 2h 6h 1d 3d (0 over a window without events);
- `slo_burn_alert{slo, burn}` for page and ticket: the long-window burn rate of the window pair
  that holds, 0 when none does. The generated rules (`slo.slo_rules`) fire on it, so the burn-rate
  alerts are ordinary alerts of the rules actor: persisted, routed, silenced like the others.

The ledger is in memory: after a restart an SLO's windows fill again from then on (the alerts'
state is the rules actor's and survives). Pure arithmetic is in `actors.rules.slo`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import trio

from actors.clock import Clock
from actors.configtypes import format_duration
from actors.rules.slo import (
    ALERTS,
    BURN_ALERT_METRIC,
    WINDOWS,
    Ledger,
    Selector,
    SloStatus,
    counted,
    slo_status,
)
from actors.rules.slo_config import SloConfig
from actors.telemetry.exceptions import TelemetryError
from actors.telemetry.protocols import MetricView, SnapshotStore
from actors.telemetry.store import SeriesSnapshot

__all__ = ["SloActor"]


@dataclass(frozen=True, slots=True)
class _Part:
    """One cumulative count an SLO reads: `selector`'s series; `le` picks a histogram bucket."""

    selector: Selector
    le: float | None = None


class _Sli:
    """An SLO's parts (bad or good, total) and their counts at the last read."""

    def __init__(self, config: SloConfig) -> None:
        if config.sli is not None:
            series = Selector(config.sli)
            self.good: _Part | None = _Part(series, config.sli.le)
            self.bad: _Part | None = None
            self.total = _Part(series)
        else:
            assert config.total is not None  # validated: total with good or bad
            self.good = _Part(Selector(config.good)) if config.good is not None else None
            self.bad = _Part(Selector(config.bad)) if config.bad is not None else None
            self.total = _Part(Selector(config.total))
        self.seen: dict[tuple[str, str], dict[tuple[str, ...], float]] = {}


def _count(handle: MetricView, part: _Part, series: SeriesSnapshot) -> float:
    """The cumulative count a series holds for `part`.

    Raises:
        ValueError: the metric is a gauge, or `le` is not one of the histogram's bounds.
    """
    if handle.kind == "counter":
        return series.value
    if handle.kind != "histogram":
        raise ValueError(f"{part.selector.metric} is a {handle.kind}, not a counter or histogram")
    if part.le is None:
        return float(series.count)
    for index, bound in enumerate(handle.buckets):
        if math.isclose(bound, part.le, rel_tol=1e-9):
            return float(series.buckets[index])
    raise ValueError(
        f"le {part.le:g} is not a bucket of {part.selector.metric}"
        f" (buckets: {', '.join(f'{b:g}' for b in handle.buckets)})"
    )


class SloActor:
    """Evaluates `[[slos]]` every `interval` seconds. See the module docstring.

    Args:
        slos: the configured SLOs.
        store: the metric store (read by snapshot, the `slo_*` metrics recorded into it).
        clock: wall time for the ledgers; its monotonic time paces the evaluations.
        interval: seconds between evaluations.
        logger: where an SLO that cannot be read is logged (once per problem).

    Raises:
        MetricDeclarationError: an `slo_*` metric is already declared differently.
    """

    def __init__(
        self,
        *,
        slos: Sequence[SloConfig],
        store: SnapshotStore,
        clock: Clock,
        interval: float = 30.0,
        logger: logging.Logger | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._interval = interval
        self._log = logger or logging.getLogger("blipee.slos")
        self._slos: dict[str, SloConfig] = {}
        self._sli: dict[str, _Sli] = {}
        self._ledgers: dict[str, Ledger] = {}
        self._status: dict[str, SloStatus] = {}
        self._since: float | None = None
        store.declare("slo_objective", "gauge", "The objective of each SLO (0..1).", ("slo",))
        store.declare(
            "slo_sli", "gauge", "Each SLO's indicator over its window: good / total.", ("slo",)
        )
        store.declare(
            "slo_error_budget_remaining",
            "gauge",
            "Share of each SLO's error budget left over its window (below 0: overspent).",
            ("slo",),
        )
        store.declare(
            "slo_burn_rate",
            "gauge",
            "Error ratio over the error budget per window (1: the budget lasts the window).",
            ("slo", "window"),
        )
        store.declare(
            BURN_ALERT_METRIC,
            "gauge",
            "Long-window burn rate of the window pair that holds per burn-rate alert, else 0.",
            ("slo", "burn"),
        )
        self.configure(slos)

    def configure(self, slos: Sequence[SloConfig]) -> None:
        """Replace the SLOs; an unchanged SLO keeps its ledger, a changed one starts again."""
        old = self._slos
        self._slos = {slo.name: slo for slo in slos}
        for name, slo in self._slos.items():
            if old.get(name) != slo:
                self._sli[name] = _Sli(slo)
                self._ledgers[name] = Ledger(horizon=slo.window, fine_horizon=max(WINDOWS))
                self._status.pop(name, None)
        for name in set(old) - set(self._slos):
            self._sli.pop(name, None)
            self._ledgers.pop(name, None)
            self._status.pop(name, None)

    def statuses(self) -> list[SloStatus]:
        """Each SLO's latest status, in configuration order (none before its first round)."""
        return [self._status[name] for name in self._slos if name in self._status]

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Evaluate every `interval` until cancelled; the first round at once."""
        if self._since is None:
            self._since = self._clock.now()
        task_status.started()
        while True:
            self.evaluate()
            await trio.sleep(self._interval)

    def evaluate(self) -> None:
        """Read every SLO's counts, update its ledger and status, record the `slo_*` metrics."""
        now = self._clock.now()
        since = now if self._since is None else self._since
        for name, slo in self._slos.items():
            error = ""
            try:
                bad, total = self._read(self._sli[name], since)
            except (TelemetryError, ValueError) as exc:
                error = str(exc)
                bad = total = 0.0
                if self._status.get(name, None) is None or self._status[name].error != error:
                    self._log.warning("slo %s: %s", name, error)
            ledger = self._ledgers[name]
            ledger.add(now, bad, total)
            sums = {w: ledger.sums(now, w) for w in (*WINDOWS, slo.window)}
            status = slo_status(name, slo.objective, slo.window, sums, error=error)
            self._status[name] = status
            self._record(status)
        self._since = now

    def _read(self, sli: _Sli, since: float) -> tuple[float, float]:
        """Events counted since the last read: `(bad, total)`."""
        total = self._grown(sli, "total", sli.total, since)
        if sli.bad is not None:
            return self._grown(sli, "bad", sli.bad, since), total
        assert sli.good is not None
        return total - self._grown(sli, "good", sli.good, since), total

    def _grown(self, sli: _Sli, role: str, part: _Part, since: float) -> float:
        handle = self._store.handle(part.selector.metric)
        names = handle.labelnames
        key = (role, part.selector.metric)
        before = sli.seen.get(key, {})
        now_seen: dict[tuple[str, ...], float] = {}
        grown = 0.0
        for series in handle.snapshot():
            labels = dict(zip(names, series.label_values, strict=True))
            if not part.selector.matches(labels):
                continue
            current = _count(handle, part, series)
            now_seen[series.label_values] = current
            previous = before.get(series.label_values)
            grown += counted(previous, current, new=series.created > since)
        sli.seen[key] = now_seen
        return grown

    def _record(self, status: SloStatus) -> None:
        slo = {"slo": status.name}
        record = self._store.record
        record("slo_objective", status.objective, slo)
        if status.sli is not None:
            record("slo_sli", status.sli, slo)
        if status.error_budget_remaining is not None:
            record("slo_error_budget_remaining", status.error_budget_remaining, slo)
        for window, rate in status.burn_rates.items():
            labels = {"slo": status.name, "window": format_duration(window)}
            record("slo_burn_rate", 0.0 if rate is None else rate, labels)
        for alert in ALERTS:
            record(BURN_ALERT_METRIC, status.alerts[alert], {"slo": status.name, "burn": alert})

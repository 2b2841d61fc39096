"""Service level objectives: SLIs from counters, error budgets and multiwindow burn-rate alerts.

Pure: plain functions and a ledger over the counts a caller hands in; no store, no event loop, no
clock. The SLO actor (`actors.rules.slo_actor`) reads the counts and records what these compute.

The model (docs/slos.md): over a window, the *error ratio* is bad events / total events (for a
latency SLI, bad = observations above `le`); the SLI is 1 - error ratio; the *burn rate* is the
error ratio over the error budget `1 - objective` (1 spends exactly the budget over the SLO's
window); the *error budget remaining* is `1 - error ratio(SLO window) / (1 - objective)` (below 0
once overspent). A window without events has no error ratio, SLI or burn rate (None).

The alerts are the Google SRE workbook's multiwindow, multi-burn-rate alerts, with factors as
Sloth computes them (`budget share * SLO window / long window`, which for 30 days gives the
workbook's):

=======  ===========  ============  ==================  =============================
alert    long window  short window  budget share spent  factor over a 30 d SLO window
=======  ===========  ============  ==================  =============================
page     1h           5m            2 %                 14.4
page     6h           30m           5 %                 6
ticket   1d           2h            10 %                3
ticket   3d           6h            10 %                1
=======  ===========  ============  ==================  =============================

A pair holds when the error ratio over both its windows is above `factor * (1 - objective)`
(the comparison Sloth's PromQL makes); an alert holds when either of its pairs does.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from actors.configtypes import format_duration
from actors.routing.matchers import compile_matcher_regex
from actors.rules.config import RuleConfig
from actors.rules.slo_config import SelectorConfig, SloConfig

__all__ = [
    "ALERTS",
    "SEVERITIES",
    "BURN_ALERT_METRIC",
    "WINDOWS",
    "BurnPair",
    "Ledger",
    "Selector",
    "SloStatus",
    "alert_burn",
    "burn_rate",
    "counted",
    "describe_pairs",
    "error_ratio",
    "rule_id",
    "slo_rules",
    "slo_status",
]

BURN_ALERT_METRIC = "slo_burn_alert"
"""Gauge per (slo, burn): the long-window burn rate of the pair that holds (0: none holds)."""


@dataclass(frozen=True, slots=True)
class BurnPair:
    """One window pair of a burn-rate alert: both windows above `factor` burn rate."""

    long: float
    short: float
    budget_share: float

    def factor(self, slo_window: float) -> float:
        """The burn rate that spends `budget_share` of the budget in `long` (Sloth's)."""
        return self.budget_share * slo_window / self.long


ALERTS: Mapping[str, tuple[BurnPair, ...]] = {
    "page": (BurnPair(3600.0, 300.0, 0.02), BurnPair(21600.0, 1800.0, 0.05)),
    "ticket": (BurnPair(86400.0, 7200.0, 0.10), BurnPair(259200.0, 21600.0, 0.10)),
}
"""The burn-rate alerts (`burn` label) and their window pairs, page first."""

SEVERITIES: Mapping[str, str] = {"page": "critical", "ticket": "warning"}
"""The severity of each burn-rate alert."""

WINDOWS: tuple[float, ...] = tuple(
    sorted({w for pairs in ALERTS.values() for pair in pairs for w in (pair.long, pair.short)})
)
"""Every window a burn rate is computed over, shortest first (5m 30m 1h 2h 6h 1d 3d)."""


def error_ratio(bad: float, total: float) -> float | None:
    """`bad / total`; None when nothing happened (`total <= 0`)."""
    if total <= 0:
        return None
    return bad / total


def burn_rate(ratio: float | None, objective: float) -> float | None:
    """How fast the error budget burns: `ratio / (1 - objective)`; None without a ratio."""
    if ratio is None:
        return None
    return ratio / (1.0 - objective)


def alert_burn(
    pairs: Sequence[BurnPair],
    ratios: Mapping[float, float | None],
    objective: float,
    slo_window: float,
) -> float:
    """The long-window burn rate of the strongest pair of `pairs` that holds, 0 when none does.

    `ratios` are the error ratios by window (seconds). A pair holds when the error ratio over
    its long and its short window are both above `factor * (1 - objective)`.
    """
    budget = 1.0 - objective
    best = 0.0
    for pair in pairs:
        threshold = pair.factor(slo_window) * budget
        long, short = ratios.get(pair.long), ratios.get(pair.short)
        if long is None or short is None:
            continue
        if long > threshold and short > threshold:
            best = max(best, long / budget)
    return best


def counted(previous: float | None, current: float, *, new: bool) -> float:
    """Events a cumulative count added since it was last read (`previous`).

    A count seen for the first time adds all it holds when it is `new` (created since the last
    read), nothing otherwise (it is the baseline). A count lower than before was reset: it adds
    what it holds now (as Prometheus' `increase`).
    """
    if previous is None:
        return current if new else 0.0
    if current < previous:
        return current
    return current - previous


class Selector:
    """A compiled `SelectorConfig`: which series of its metric an SLI counts.

    A label a series lacks has the empty value (as in PromQL); regexes are anchored RE2.
    """

    __slots__ = ("_match", "_not", "metric")

    def __init__(self, config: SelectorConfig) -> None:
        """Compile the selector.

        Raises:
            ValueError: a regex does not compile (configuration validates them first).
        """
        self.metric = config.metric
        self._match = [(n, compile_matcher_regex(p)) for n, p in sorted(config.labels.items())]
        self._not = [(n, compile_matcher_regex(p)) for n, p in sorted(config.labels_not.items())]

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a series with `labels` is selected."""
        for name, regex in self._match:
            if regex.search(labels.get(name, "")) is None:
                return False
        return all(regex.search(labels.get(name, "")) is None for name, regex in self._not)


class Ledger:
    """The bad and total events of one SLO over time, bounded in memory.

    Events are added at the time they were counted. Windows up to `fine_horizon` are summed
    from one entry per `add` (a caller adds once per evaluation, and only when events
    happened); longer windows (the SLO's) from `coarse`-second slots, so their start is at
    slot granularity. Entries older than what any window reads are dropped on `add`.
    """

    __slots__ = ("_coarse", "_fine", "coarse", "fine_horizon", "horizon")

    def __init__(self, *, horizon: float, fine_horizon: float, coarse: float = 3600.0) -> None:
        """Raises:
        ValueError: a span is not positive."""
        if horizon <= 0 or fine_horizon <= 0 or coarse <= 0:
            raise ValueError("horizon, fine_horizon and coarse must be positive")
        self.horizon = horizon
        self.fine_horizon = fine_horizon
        self.coarse = coarse
        self._fine: deque[tuple[float, float, float]] = deque()
        self._coarse: deque[list[float]] = deque()

    def add(self, t: float, bad: float, total: float) -> None:
        """Count `bad` of `total` events at `t` (not before the latest `add`)."""
        if bad or total:
            self._fine.append((t, bad, total))
            slot = t - t % self.coarse
            if self._coarse and self._coarse[-1][0] == slot:
                self._coarse[-1][1] += bad
                self._coarse[-1][2] += total
            else:
                self._coarse.append([slot, bad, total])
        while self._fine and self._fine[0][0] <= t - self.fine_horizon:
            self._fine.popleft()
        while self._coarse and self._coarse[0][0] + self.coarse <= t - self.horizon:
            self._coarse.popleft()

    def sums(self, now: float, window: float) -> tuple[float, float]:
        """`(bad, total)` counted in `(now - window, now]`.

        Exact for windows up to `fine_horizon`; beyond, a coarse slot counts when it ends after
        the window's start.
        """
        start = now - window
        bad = total = 0.0
        if window <= self.fine_horizon:
            for t, b, n in reversed(self._fine):
                if t <= start:
                    break
                if t <= now:
                    bad += b
                    total += n
            return bad, total
        for slot, b, n in reversed(self._coarse):
            if slot + self.coarse <= start:
                break
            if slot <= now:
                bad += b
                total += n
        return bad, total


@dataclass(frozen=True, slots=True)
class SloStatus:
    """One SLO now: what `GET /api/v1/slos` shows and the `slo_*` metrics carry.

    `ratios` and `burn_rates` are by window (seconds, `WINDOWS`); `alerts` the value of each
    burn-rate alert (`alert_burn`: > 0 while it holds). `error` says why the SLO could not be
    read (e.g. its metric is not declared), else "".
    """

    name: str
    objective: float
    window: float
    sli: float | None
    error_budget_remaining: float | None
    ratios: Mapping[float, float | None]
    burn_rates: Mapping[float, float | None]
    alerts: Mapping[str, float]
    error: str = ""

    def to_json(self) -> dict[str, object]:
        """The API representation (windows as durations, e.g. "5m")."""
        return {
            "name": self.name,
            "objective": self.objective,
            "window": format_duration(self.window),
            "sli": self.sli,
            "errorBudgetRemaining": self.error_budget_remaining,
            "burnRates": {format_duration(w): r for w, r in self.burn_rates.items()},
            "alerts": {name: value > 0 for name, value in self.alerts.items()},
            "error": self.error or None,
        }


def slo_status(
    name: str,
    objective: float,
    window: float,
    sums: Mapping[float, tuple[float, float]],
    *,
    error: str = "",
) -> SloStatus:
    """The status of an SLO given `(bad, total)` per window: every one of `WINDOWS` and `window`.

    Raises:
        KeyError: a window is missing from `sums`.
    """
    ratios = {w: error_ratio(*sums[w]) for w in WINDOWS}
    overall = error_ratio(*sums[window])
    budget = 1.0 - objective
    return SloStatus(
        name=name,
        objective=objective,
        window=window,
        sli=None if overall is None else 1.0 - overall,
        error_budget_remaining=None if overall is None else 1.0 - overall / budget,
        ratios=ratios,
        burn_rates={w: burn_rate(r, objective) for w, r in ratios.items()},
        alerts={
            alert: alert_burn(pairs, ratios, objective, window) for alert, pairs in ALERTS.items()
        },
        error=error,
    )


def rule_id(slo: str, alert: str) -> str:
    """The id of the generated rule of burn-rate `alert` (page, ticket) of SLO `slo`."""
    return f"slo-{slo}-{alert}"


def describe_pairs(pairs: Iterable[BurnPair], slo_window: float) -> str:
    """The window pairs as words: \"1h and 5m over 14.4x or 6h and 30m over 6x\"."""
    return " or ".join(
        f"{format_duration(p.long)} and {format_duration(p.short)} over {p.factor(slo_window):.4g}x"
        for p in pairs
    )


def slo_rules(slos: Iterable[SloConfig]) -> list[RuleConfig]:
    """The generated alert rules of `slos`: a page (critical) and a ticket (warning) each.

    Each watches `slo_burn_alert{slo, burn}` (recorded by the SLO actor) and fires while it is
    above 0; its alerts carry `slo`, `burn` and the SLO's `labels`, and go to its
    `alert_channels` through routing like any other alert.
    """
    out: list[RuleConfig] = []
    for slo in slos:
        for alert, pairs in ALERTS.items():
            out.append(
                RuleConfig.model_validate(
                    {
                        "id": rule_id(slo.name, alert),
                        "name": "SloErrorBudgetBurn",
                        "severity": SEVERITIES[alert],
                        "channels": slo.alert_channels,
                        "summary": (
                            f"SLO {slo.name}: error budget burning {{{{ value }}}}x"
                            f" ({describe_pairs(pairs, slo.window)})"
                        ),
                        "description": slo.description,
                        "labels": dict(slo.labels),
                        "condition": {
                            "metric": BURN_ALERT_METRIC,
                            "labels": {"slo": slo.name, "burn": alert},
                            "aggregate": "last",
                            "window": "1m",
                            "operator": ">",
                            "threshold": 0,
                        },
                    }
                )
            )
    return out

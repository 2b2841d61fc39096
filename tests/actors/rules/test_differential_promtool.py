"""Differential test: our rule evaluator against Prometheus' own, `promtool test rules`.

Each case is one alert rule and a few series of samples, written twice: as our `[[rules]]`
configuration, evaluated by the metric store (`aggregate`) and the rule state machine (`step`)
at every evaluation time, and as a Prometheus rules file with a `promtool test rules` unit test
(`input_series`, and `alert_rule_test` with `exp_alerts` at every evaluation time). All cases
go to one promtool run.

Timing: samples at 30 s + k minutes, evaluations every minute and windows of whole minutes, so
no sample ever sits on a window's edge or on the 5 m lookback's (Prometheus 2.x closes them on
the left, we and Prometheus 3 do not: an edge case of timing, not of meaning).

The deliberate differences (docs/configuration.md, "Differences from Prometheus /
Alertmanager", "Rules") are explicit here, never skipped. `_model` states both semantics over
the raw samples, with one switch per difference (`OURS` on, `PROMETHEUS` off); each case checks

1. that our evaluator's alerts equal the `OURS` model's at every evaluation time;
2. that promtool, given the `PROMETHEUS` model's alerts as `exp_alerts`, agrees with them.

Where the two models give the same alerts, (1) and (2) say that promtool agrees with us; where
they do not, the difference comes only from the documented switches, and the test counts it.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from actors.clock import FixedClock
from actors.models import Labels
from actors.rules.config import RuleConfig
from actors.rules.evaluate import Instance, Phase, step
from actors.rules.exceptions import DuplicateLabelset
from actors.rules.spec import rule_from_config
from actors.telemetry.store import MetricStore

pytestmark = pytest.mark.slow

T0 = 1_699_999_980.0  # a whole minute: evaluations at T0 + k minutes
STEP = 60  # evaluation interval
OFFSET = 30  # samples at T0 + OFFSET + k minutes
STALENESS = 300.0  # ours by default, and Prometheus' lookback delta


@dataclass(frozen=True)
class Switches:
    """The deliberate differences, one switch each (see docs/configuration.md)."""

    exact_increase: bool
    """A counter's increase/rate is the exact sum of its increments in the window (Prometheus
    extrapolates the first-to-last sample difference to the window's edges)."""
    carried_value: bool
    """A gauge's window also holds the value in force when it opened (Prometheus' `*_over_time`
    and `delta` see only the samples inside)."""
    idle_is_zero: bool
    """A series that is not stale but got no sample in the window did not move: a counter's
    sum/count/increase/rate and a gauge's count are 0 (Prometheus, which scrapes, has no sample
    there, hence no value)."""


OURS = Switches(exact_increase=True, carried_value=True, idle_is_zero=True)
PROMETHEUS = Switches(exact_increase=False, carried_value=False, idle_is_zero=False)

GAUGE_AGGREGATES = (
    "last", "avg", "min", "max", "sum", "count", "increase", "rate", "absent", "p50", "p90", "p99",
)  # fmt: skip
QUANTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}
COUNTER_AGGREGATES = ("last", "sum", "count", "increase", "rate", "absent")


@dataclass(frozen=True)
class Case:
    """One rule over a metric and its series (samples by minute, None = none that minute)."""

    name: str
    kind: str
    aggregate: str
    window: int
    operator: str
    threshold: float
    series: tuple[tuple[str, tuple[float | None, ...]], ...]
    duration: int = 0
    keep_firing_for: int = 0
    match: str | None = None
    rule_labels: tuple[tuple[str, str], ...] = ()
    minutes: int = 0  # evaluations at 0..minutes; default: the samples' span + 7

    @property
    def metric(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "_", self.name.lower()).strip("_")
        return f"m_{slug}_total" if self.kind == "counter" else f"m_{slug}"

    @property
    def evaluations(self) -> int:
        span = max(len(values) for _, values in self.series)
        return self.minutes or span + 7

    def samples(self) -> dict[str, list[tuple[float, float]]]:
        """(time offset from T0, value) per series label value."""
        return {
            k: [(OFFSET + STEP * i, v) for i, v in enumerate(values) if v is not None]
            for k, values in self.series
        }


# -- the two semantics over raw samples ------------------------------------------------------


def _extrapolated(
    points: Sequence[tuple[float, float]], start: float, end: float, *, counter: bool
) -> float | None:
    """Prometheus' `extrapolatedRate` (increase / delta) over the points of [start, end]."""
    if len(points) < 2:
        return None
    first_t, first_v = points[0]
    last_t, last_v = points[-1]
    result = last_v - first_v
    if counter:
        previous = 0.0
        for _, v in points:
            if v < previous:
                result += previous
            previous = v
    to_start = first_t - start
    to_end = end - last_t
    sampled = last_t - first_t
    average = sampled / (len(points) - 1)
    if counter and result > 0 and first_v >= 0:
        to_zero = sampled * (first_v / result)
        to_start = min(to_start, to_zero)
    threshold = average * 1.1
    interval = sampled
    interval += to_start if to_start < threshold else average / 2
    interval += to_end if to_end < threshold else average / 2
    return result * (interval / sampled)


def _increments(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """A counter's totals as our store keeps them: the first is a baseline, a drop a reset."""
    out: list[tuple[float, float]] = []
    previous: float | None = None
    for t, v in points:
        out.append((t, 0.0 if previous is None else (v - previous if v >= previous else v)))
        previous = v
    return out


def _model(
    kind: str,
    aggregate: str,
    points: Sequence[tuple[float, float]],
    t: float,
    window: float,
    sw: Switches,
) -> float | None:
    """The value of one series at `t`, as the switches say (`aggregate` not `absent`)."""
    seen = [p for p in points if p[0] <= t]
    if not seen:
        return None
    latest_t = seen[-1][0]
    live = latest_t > t - STALENESS
    start = t - window
    inside = [p for p in seen if p[0] > start]
    if aggregate == "last":
        return seen[-1][1] if live else None
    if not inside and not live:
        return None
    single = len(seen) == 1  # a series' second sample (both sides need one for a change)
    if kind == "counter":
        if aggregate == "count":
            if inside:
                return float(len(inside))
            return 0.0 if sw.idle_is_zero else None
        if sw.exact_increase:
            increase: float | None = math.fsum(v for ts, v in _increments(seen) if ts > start)
            if not inside and not sw.idle_is_zero:
                increase = None
            if single and increase == 0:
                increase = None  # only a baseline so far
        else:
            increase = None if single else _extrapolated(inside, start, t, counter=True)
        if increase is None:
            return None
        return increase / window if aggregate == "rate" else increase
    # gauge
    values = [v for _, v in inside]
    before = [v for ts, v in seen if ts <= start]
    held = ([before[-1]] if before and sw.carried_value else []) + values
    if aggregate == "sum":
        return math.fsum(values) if values else None
    if aggregate == "count":
        if values:
            return float(len(values))
        return 0.0 if sw.idle_is_zero else None
    if aggregate in ("increase", "rate"):
        if single:
            return None
        if sw.carried_value:
            delta = (held[-1] - held[0]) if held else None
        else:
            delta = _extrapolated(inside, start, t, counter=False)
        if delta is None:
            return None
        return delta / window if aggregate == "rate" else delta
    if not held:
        return None
    if aggregate == "avg":
        return math.fsum(held) / len(held)
    if aggregate in QUANTILES:  # Prometheus' quantile: linear between closest ranks
        ordered = sorted(held)
        rank = QUANTILES[aggregate] * (len(ordered) - 1)
        low = math.floor(rank)
        high = min(low + 1, len(ordered) - 1)
        weight = rank - low
        return ordered[low] * (1 - weight) + ordered[high] * weight
    return min(held) if aggregate == "min" else max(held)


def _model_values(case: Case, t: float, sw: Switches) -> dict[Labels, float]:
    if case.aggregate == "absent":
        present = any(
            any(t - case.window < ts <= t for ts, _ in points) and _live(points, t)
            for k, points in case.samples().items()
            if case.match is None or k == case.match
        )
        return {} if present else {(): 1.0}
    out: dict[Labels, float] = {}
    for k, points in case.samples().items():
        if case.match is not None and k != case.match:
            continue
        value = _model(case.kind, case.aggregate, points, t, case.window, sw)
        if value is not None:
            out[(("k", k),)] = value
    return out


def _live(points: Sequence[tuple[float, float]], t: float) -> bool:
    seen = [ts for ts, _ in points if ts <= t]
    return bool(seen) and seen[-1] > t - STALENESS


# -- running the rule ------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What one side made of a case: the firing alerts' label sets at each evaluation (the
    `alertname` included), and the minute of the first evaluation that failed."""

    firing: list[list[frozenset[tuple[str, str]]]]
    failed: int | None


def _rule_config(case: Case) -> RuleConfig:
    condition: dict[str, Any] = {
        "metric": case.metric,
        "aggregate": case.aggregate,
        "window": f"{case.window}s",
        "operator": case.operator,
        "threshold": case.threshold,
        "duration": f"{case.duration}s",
    }
    if case.match is not None:
        condition["labels"] = {"k": case.match}
    return RuleConfig.model_validate(
        {
            "id": case.metric.replace("_", "-"),
            "name": _alertname(case),
            "severity": "warning",
            "labels": dict(case.rule_labels),
            "keep_firing_for": f"{case.keep_firing_for}s",
            "condition": condition,
        }
    )


def _alertname(case: Case) -> str:
    return "Alert_" + case.metric


def _evaluate(case: Case, values_at: Callable[[float], Mapping[Labels, float]]) -> Outcome:
    """Firing alerts' label sets at each evaluation, and the first failed evaluation's minute."""
    rule = rule_from_config(_rule_config(case))
    instances: Mapping[str, Instance] = {}
    firing: list[list[frozenset[tuple[str, str]]]] = []
    failed: int | None = None
    for minute in range(case.evaluations + 1):
        t = float(STEP * minute)
        try:
            instances = step(rule, instances, values_at(t), T0 + t).instances
        except DuplicateLabelset:
            # As Prometheus: the evaluation fails, the alerts keep their state.
            failed = minute if failed is None else failed
        firing.append(
            sorted(
                (frozenset(i.labels) for i in instances.values() if i.phase is Phase.FIRING),
                key=sorted,
            )
        )
    return Outcome(firing, failed)


def _ours(case: Case) -> Outcome:
    """Our evaluator: the samples fed to the metric store as they come, read at each time."""
    clock = FixedClock(T0)
    store = MetricStore(clock=clock)
    store.declare(case.metric, case.kind, "differential", ("k",), external=True)
    cond = _rule_config(case).condition
    pending = sorted((ts, k, v) for k, points in case.samples().items() for ts, v in points)

    def values_at(t: float) -> dict[Labels, float]:
        while pending and pending[0][0] <= t:
            ts, k, v = pending.pop(0)
            if case.kind == "counter":
                store.set_counter_total(case.metric, v, {"k": k}, timestamp=T0 + ts)
            else:
                store.record(case.metric, v, {"k": k}, timestamp=T0 + ts)
        return store.aggregate(case.metric, cond.labels, cond.aggregate, cond.window, now=T0 + t)

    return _evaluate(case, values_at)


def _modelled(case: Case, sw: Switches) -> Outcome:
    return _evaluate(case, lambda t: _model_values(case, t, sw))


# -- the Prometheus side ---------------------------------------------------------------------


def _promql(case: Case) -> str:
    selector = case.metric + (f'{{k="{case.match}"}}' if case.match is not None else "")
    ranged = f"{selector}[{case.window}s]"
    agg = case.aggregate
    if agg == "last":
        expr = selector
    elif agg == "absent":
        return f"absent_over_time({ranged})"
    elif agg in QUANTILES:
        expr = f"quantile_over_time({QUANTILES[agg]}, {ranged})"
    elif agg in ("avg", "min", "max", "sum", "count") and not (
        case.kind == "counter" and agg == "sum"
    ):
        expr = f"{agg}_over_time({ranged})"
    elif case.kind == "counter":
        expr = f"rate({ranged})" if agg == "rate" else f"increase({ranged})"
    else:
        expr = f"delta({ranged})" + (f" / {case.window}" if agg == "rate" else "")
    return f"{expr} {case.operator} {case.threshold!r}"


def _series_notation(values: Sequence[float | None]) -> str:
    """promtool's expanding notation: one value per 30 s, the samples at odd positions."""
    out: list[str] = []
    for v in values:
        out.append("_")
        out.append("_" if v is None else repr(float(v)))
    return " ".join(out)


def _write_case(directory: Path, case: Case, expected: Outcome) -> Path:
    config = _rule_config(case)
    labels = {"severity": "warning", "rule": config.id, **dict(case.rule_labels)}
    rule: dict[str, Any] = {
        "alert": config.name,
        "expr": _promql(case),
        "labels": labels,
    }
    if case.duration:
        rule["for"] = f"{case.duration}s"
    if case.keep_firing_for:
        rule["keep_firing_for"] = f"{case.keep_firing_for}s"
    rules_file = directory / f"{case.metric}.rules.yml"
    # JSON is YAML: no YAML writer needed.
    rules_file.write_text(json.dumps({"groups": [{"name": case.metric, "rules": [rule]}]}))
    series = []
    for k, values in case.series:
        name = case.metric + (f'{{k="{k}"}}' if k else "")
        series.append({"series": name, "values": _series_notation(values)})
    tests = [
        {
            "eval_time": f"{STEP * minute}s",
            "alertname": config.name,
            "exp_alerts": [
                {"exp_labels": {n: v for n, v in sorted(alert) if n != "alertname"}}
                for alert in alerts
            ],
        }
        for minute, alerts in enumerate(expected.firing)
    ]
    test_file = directory / f"{case.metric}.test.yml"
    test_file.write_text(
        json.dumps(
            {
                "rule_files": [rules_file.name],
                "evaluation_interval": f"{STEP}s",
                "tests": [
                    {"interval": f"{OFFSET}s", "input_series": series, "alert_rule_test": tests}
                ],
            }
        )
    )
    return test_file


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is not installed")
        pytest.skip("promtool is not installed")
    return found


def _promtool_test(directory: Path, files: Sequence[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_promtool(), "test", "rules", *(f.name for f in files)],
        cwd=directory,
        capture_output=True,
        text=True,
        check=False,
        timeout=100,
    )


def _run_promtool(directory: Path, files: Sequence[Path]) -> dict[str, str]:
    """`promtool test rules` over every file at once: what it said of each failing file.

    promtool writes "Unit Testing: FILE" and SUCCESS to stdout but the failures to stderr, so a
    file without its SUCCESS is run again alone for its failure text.
    """
    done = _promtool_test(directory, files)
    blocks = re.split(r"^Unit Testing:\s+", done.stdout, flags=re.MULTILINE)[1:]
    assert len(blocks) == len(files), done.stdout[-2000:] + done.stderr[-2000:]
    failing = [
        name.strip()
        for name, _, body in (b.partition("\n") for b in blocks)
        if "SUCCESS" not in body
    ]
    assert (done.returncode == 0) == (not failing), done.stderr[-4000:]
    failed: dict[str, str] = {}
    for name in failing:
        alone = _promtool_test(directory, [directory / name])
        failed[name] = alone.stderr.strip()
    return failed


def _go_duration(seconds: int) -> str:
    """A Go `time.Duration` as promtool prints it: "0s", "2m0s", "1h2m0s"."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


# -- the cases -------------------------------------------------------------------------------

SEED = 20261206
GENERATED = 240


def _generated(rng: random.Random, index: int) -> Case:
    kind = rng.choice(("gauge", "counter"))
    aggregate = rng.choice(GAUGE_AGGREGATES if kind == "gauge" else COUNTER_AGGREGATES)
    # Whole minutes (no edges on samples); `absent` within the lookback, where a stale series
    # and one without samples in the window are the same thing (see `_model_values`).
    window = rng.choice((60, 120, 180, 300) if aggregate == "absent" else (60, 120, 180, 300, 600))
    series: list[tuple[str, tuple[float | None, ...]]] = []
    for k in rng.sample(("a", "b", "c"), rng.randint(1, 3)):
        start = rng.randint(0, 3)
        length = rng.randint(1, 12)
        values: list[float | None] = [None] * start
        total = float(rng.randint(0, 50))
        for _ in range(length):
            if rng.random() < 0.15:
                values.append(None)  # a missed push
                continue
            if kind == "counter":
                total = (
                    float(rng.randint(0, 3)) if rng.random() < 0.05 else total + rng.randint(0, 4)
                )
                values.append(total)
            else:
                values.append(float(rng.randint(0, 10)))
        series.append((k, tuple(values)))
    match = rng.choice((None, None, "a"))
    # Rarely labels that merge series: their evaluation fails (promtool stops the test there).
    rule_labels: tuple[tuple[str, str], ...] = rng.choice(
        ((), (), (), (), (("team", "ops"),), (("team", "ops"),), (("k", ""),), (("k", "all"),))
    )
    case = Case(
        name=f"gen {index}",
        kind=kind,
        aggregate=aggregate,
        window=window,
        operator=rng.choice((">", ">=", "<", "<=", "!=")),
        threshold=0.0,
        series=tuple(series),
        duration=rng.choice((0, 0, 60, 120, 150)),
        keep_firing_for=rng.choice((0, 0, 60, 120, 90)),
        match=match,
        rule_labels=rule_labels,
    )
    # A threshold near the values the series take (ours), off any value both sides can reach.
    seen = [
        v
        for minute in range(case.evaluations + 1)
        for v in _model_values(case, float(STEP * minute), OURS).values()
    ]
    pick = rng.choice(seen) if seen else float(rng.randint(0, 10))
    off = 0.37 / case.window if aggregate == "rate" else 0.37
    return replace(case, threshold=round(pick + rng.choice((-off, off)), 9))


def _edge_cases() -> list[Case]:
    flap = (6.0, 6.0, 1.0, 6.0, 1.0, 1.0, 6.0, 1.0, 1.0, 1.0, 1.0)
    return [
        Case("keep firing counts from the first false", "gauge", "last", 60, ">", 5,
             (("a", (6.0, 6.0, 1.0, 1.0, 1.0, 1.0)),), keep_firing_for=120),
        Case("keep firing resets when true again", "gauge", "last", 60, ">", 5,
             (("a", flap),), keep_firing_for=120),
        Case("keep firing with for", "gauge", "last", 60, ">", 5,
             (("a", flap),), duration=60, keep_firing_for=60),
        Case("for holds then drops silently", "gauge", "last", 60, ">", 5,
             (("a", (6.0, 6.0, 1.0, 6.0, 6.0, 6.0, 6.0)),), duration=120),
        Case("increase of a lone baseline has no value", "counter", "increase", 300, "<", 1,
             (("a", (100.0,)),)),
        Case("increase needs a second total", "counter", "increase", 300, "<", 1,
             (("a", (100.0, None, None, 100.0, 100.0)),)),
        Case("delta of a gauge set once has no value", "gauge", "increase", 300, "<", 1,
             (("a", (5.0,)),)),
        Case("a dead counter's count < 1 resolves", "counter", "count", 120, "<", 1,
             (("a", (1.0, 2.0, 3.0)),), minutes=12),
        Case("a dead gauge's last resolves after the lookback", "gauge", "last", 60, ">", 5,
             (("a", (9.0, 9.0)),), minutes=10),
        Case("absent once the series stops", "gauge", "absent", 120, ">", 0,
             (("a", (1.0, 1.0, 1.0)), ("b", (1.0,) * 9)), match="a", minutes=10),
        Case("absent of a series that never was", "gauge", "absent", 60, ">", 0,
             (("b", (1.0, 1.0)),), match="a", minutes=4),
        Case("rule labels merging true series fail the evaluation", "gauge", "last", 60, ">", 5,
             (("a", (6.0, 6.0, 6.0, 6.0)), ("b", (1.0, 6.0, 6.0, 1.0))),
             rule_labels=(("k", "all"),), duration=60),
        Case("an empty label value is no label", "gauge", "last", 60, ">", 5,
             (("", (6.0, 6.0)), ("a", (6.0, 1.0))), minutes=4),
        Case("a rule label set empty removes the series label", "gauge", "max", 180, ">", 5,
             (("a", (6.0, 6.0, 1.0)),), rule_labels=(("k", ""),)),
        Case("a counter reset inside the window", "counter", "increase", 300, ">", 6,
             (("a", (10.0, 14.0, 2.0, 6.0, 9.0)),)),
        Case("counter total with a steady rate", "counter", "rate", 300, ">", 0.05,
             (("a", tuple(1000.0 + 4 * i for i in range(10))),)),
        Case("gauge min and max over the window", "gauge", "min", 180, "<", 3,
             (("a", (5.0, 2.0, 5.0, 5.0, 5.0, 5.0)),)),
    ]  # fmt: skip


def _cases() -> list[Case]:
    rng = random.Random(SEED)
    return _edge_cases() + [_generated(rng, i) for i in range(GENERATED)]


DIFFERENCES: dict[str, set[tuple[str, str]]] = {
    # which (kind, aggregate) each switch can change
    "exact_increase": {("counter", a) for a in ("sum", "increase", "rate")},
    # `sum` of a counter is its increase
    "carried_value": {("gauge", a) for a in ("avg", "min", "max", "increase", "rate", *QUANTILES)},
    "idle_is_zero": {("counter", a) for a in ("sum", "count", "increase", "rate")}
    | {("gauge", "count")},
}


MERGE_ERROR = "vector contains metrics with the same labelset after applying alert labels"


def test_promtool_agrees_with_our_rule_evaluator(tmp_path: Path) -> None:
    cases = _cases()
    files: dict[str, tuple[Case, Outcome]] = {}
    agree = 0
    differ: dict[str, int] = {}
    agreeing: set[tuple[str, str]] = set()
    for case in cases:
        ours = _ours(case)
        assert ours == _modelled(case, OURS), f"{case.name}: we depart from our own semantics"
        prometheus = _modelled(case, PROMETHEUS)
        if ours == prometheus:
            agree += 1
            agreeing.add((case.kind, case.aggregate))
        else:
            reasons = [
                name for name, scope in DIFFERENCES.items() if (case.kind, case.aggregate) in scope
            ]
            assert reasons, f"{case.name}: an undocumented difference"
            key = "+".join(reasons)
            differ[key] = differ.get(key, 0) + 1
        files[_write_case(tmp_path, case, prometheus).name] = (case, prometheus)
    failed = _run_promtool(tmp_path, [tmp_path / name for name in files])
    # An evaluation that fails fails promtool's test, with Prometheus' words and time.
    failures = {name: outcome for name, (_, outcome) in files.items() if outcome.failed is not None}
    for name, outcome in failures.items():
        case = files[name][0]
        assert outcome.failed is not None
        expected = (
            f"rule: {_alertname(case)}, time: {_go_duration(STEP * outcome.failed)},"
            f" err: {MERGE_ERROR}"
        )
        said = [line.strip() for line in failed.pop(name, "").splitlines() if line.strip()]
        assert said == ["FAILED:", expected], name
    assert not failed, "\n\n".join(f"{name}:\n{text}" for name, text in failed.items())
    # The suite must compare something real: most cases agree outright, some for every aggregate.
    assert agree >= len(cases) // 2, (agree, differ)
    assert agreeing == {(c.kind, c.aggregate) for c in cases}, agreeing
    print(
        f"{len(cases)} cases: {agree} identical, {len(failures)} with failed evaluations,"
        f" documented differences {differ}"
    )

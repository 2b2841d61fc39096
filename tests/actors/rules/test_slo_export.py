"""The SLOs' Prometheus rules: promtool accepts them, and Prometheus evaluating the recording and
alerting rules over the same data as our SLO evaluator finds the same burn rates and alerts.

The data: three days and a bit of requests on top of a baseline, one sample a minute (at 30 s
past it, so none sits on a window's edge), 100 requests a minute; 1 % of them fail for two days,
20 % for the next twenty hours, none after; a latency histogram where 10 % are slow, then 40 %.
Our side feeds the same increments to the metric store and runs the SLO actor after each
minute's samples; Prometheus' side is `promtool test rules` with the cumulative series.

Where every minute in a window had the same error ratio, the burn rates must agree to 0.001
(`round()` in PromQL, the same float operations in Python). Where a window straddles a change
of rate they differ by design: `rate()` leaves out the increment of the first sample in the
window (and extrapolates, which for series sampled together cancels out in the ratio), we count
it; both are means over the window's minutes, so they differ by at most the spread of the
minutes' error ratios over their count, which is what is checked there. The alerts (page and
ticket of each SLO) must be the same at every time compared.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path
from typing import Any

import pytest

from actors.clock import FixedClock
from actors.configtypes import format_duration
from actors.rules.slo import WINDOWS, rule_id
from actors.rules.slo_actor import SloActor
from actors.rules.slo_config import SloConfig
from actors.rules.slo_export import ALERT_NAME, slo_rule_groups
from actors.telemetry.store import MetricStore
from supervisor.config import default_config_path, load_config
from tests.actors.rules.test_differential_promtool import _promtool

pytestmark = pytest.mark.slow

T0 = 1_699_999_980.0  # a whole minute
MINUTES = 3 * 1440 + 240
DAY_MIN = 1440
SLOS = [
    SloConfig.model_validate(
        {
            "name": "api",
            "objective": 0.99,
            "good": {"metric": "api_requests_total", "labels_not": {"status": "5.."}},
            "total": {"metric": "api_requests_total"},
        }
    ),
    SloConfig.model_validate(
        {
            "name": "latency",
            "objective": 0.95,
            "sli": {"metric": "api_request_duration_seconds", "le": "0.5"},
        }
    ),
]
BASELINE = {"503": 1000, "200": 100_000, "slow": 100, "fast": 900}
CHECK_AT = [2 * DAY_MIN + 10, 2 * DAY_MIN + 60, 2 * DAY_MIN + 360, 3 * DAY_MIN, 3 * DAY_MIN + 230]


def _bad(minute: int) -> int:
    if minute < 2 * DAY_MIN:
        return 1
    return 20 if minute < 2 * DAY_MIN + 1200 else 0


def _slow(minute: int) -> int:
    return 10 if minute < 2 * DAY_MIN else 40


def _round(value: float) -> float:
    return math.floor(value * 1000.0 + 0.5) / 1000.0  # PromQL's round(v, 0.001), as Go does it


def _spread(slo: str, minute: int, window: float) -> tuple[float, int]:
    """The spread of the error ratios of the minutes whose samples are in the window
    `(minute - window, minute]`, and how many they are.

    `rate()` leaves out the first of them, which we count; both ratios are means over the
    minutes (100 requests each), so they differ by at most spread / count.
    """
    per_minute = _bad if slo == "api" else _slow
    first = max(0, minute - int(window // 60))
    ratios = [per_minute(k) / 100 for k in range(first, minute)]
    return max(ratios) - min(ratios), len(ratios)


def _ours() -> dict[int, dict[str, Any]]:
    """Our burn rates by window and alerts, per SLO, at each minute of `CHECK_AT`."""
    clock = FixedClock(T0)
    store = MetricStore(clock=clock, retention=3600)
    store.declare("api_requests_total", "counter", "Requests.", ("status",))
    store.declare("api_request_duration_seconds", "histogram", "Latency.", (), (0.1, 0.5, 1.0))
    # What the counters held before: the start's baseline (Prometheus' first sample holds it
    # too, so neither counts it; without it `rate()` would extrapolate each series towards
    # its zero differently).
    store.record("api_requests_total", BASELINE["503"], {"status": "503"})
    store.record("api_requests_total", BASELINE["200"], {"status": "200"})
    for _ in range(BASELINE["slow"]):
        store.record("api_request_duration_seconds", 0.8)
    for _ in range(BASELINE["fast"]):
        store.record("api_request_duration_seconds", 0.2)
    actor = SloActor(slos=SLOS, store=store, clock=clock)
    actor.evaluate()  # the start
    out: dict[int, dict[str, Any]] = {}
    for minute in range(MINUTES):
        clock.advance(30)
        if _bad(minute):
            store.record("api_requests_total", _bad(minute), {"status": "503"})
        store.record("api_requests_total", 100 - _bad(minute), {"status": "200"})
        for _ in range(_slow(minute)):
            store.record("api_request_duration_seconds", 0.8)
        for _ in range(100 - _slow(minute)):
            store.record("api_request_duration_seconds", 0.2)
        actor.evaluate()
        clock.advance(30)
        if minute + 1 in CHECK_AT:
            actor.evaluate()  # a whole minute, as Prometheus' evaluation
            out[minute + 1] = {s.name: s for s in actor.statuses()}
    return out


def _input_series() -> list[dict[str, str]]:
    bad, good, slow, fast = (BASELINE[k] for k in ("503", "200", "slow", "fast"))
    series: dict[str, list[str]] = {
        'api_requests_total{status="503"}': [],
        'api_requests_total{status="200"}': [],
        'api_request_duration_seconds_bucket{le="0.5"}': [],
        "api_request_duration_seconds_count": [],
    }
    for minute in range(MINUTES):
        bad += _bad(minute)
        good += 100 - _bad(minute)
        slow += _slow(minute)
        fast += 100 - _slow(minute)
        values = [bad, good, fast, fast + slow]
        for column, value in zip(series.values(), values, strict=True):
            column.append(str(value))
    return [
        {"series": name, "values": " ".join(f"_ {v}" for v in column)}
        for name, column in series.items()
    ]


def test_promtool_accepts_the_default_configs_slo_rules(tmp_path: Path) -> None:
    slos = load_config(default_config_path()).slos
    assert len(slos) == 5
    rules = tmp_path / "slos.rules.yml"
    rules.write_text(json.dumps({"groups": slo_rule_groups(slos)}))
    done = subprocess.run(
        [_promtool(), "check", "rules", str(rules)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 65 rules found" in done.stdout  # 13 a SLO


def test_prometheus_finds_our_burn_rates_and_alerts(tmp_path: Path) -> None:
    ours = _ours()
    rules = tmp_path / "slos.rules.yml"
    groups = slo_rule_groups(SLOS)
    for group in groups:
        for rule in group["rules"]:
            rule.pop("annotations", None)  # compared: expressions and labels
    rules.write_text(json.dumps({"groups": groups}))
    expr_tests: list[dict[str, Any]] = []
    alerts: dict[int, list[dict[str, Any]]] = {}
    firing = steady = mixed = 0
    for minute, statuses in ours.items():
        for slo in SLOS:
            status = statuses[slo.name]
            budget = repr(1.0 - slo.objective)
            for window in WINDOWS:
                w = format_duration(window)
                rate = status.burn_rates[window]
                assert rate is not None
                burn = f'slo:sli_error:ratio_rate{w}{{slo="{slo.name}"}} / {budget}'
                labels = f'{{slo="{slo.name}",window="{w}"}}'
                spread, count = _spread(slo.name, minute, window)
                if spread == 0:
                    expr, value = f"round({burn}, 0.001)", _round(rate)
                    steady += 1
                else:  # the minute rate() leaves out weighs in: at most spread / count
                    bound = spread / count / (1.0 - slo.objective) * 1.001
                    expr, value = f"abs({burn} - {rate!r}) <= bool {bound!r}", 1.0
                    mixed += 1
                expr_tests.append(
                    {
                        "expr": expr,
                        "eval_time": f"{minute}m",
                        "exp_samples": [{"labels": labels, "value": value}],
                    }
                )
            left = status.error_budget_remaining
            assert left is not None
            spread, count = _spread(slo.name, minute, slo.window)
            bound = spread / count / (1.0 - slo.objective) * 1.001
            expr_tests.append(
                {
                    "expr": (
                        f'abs(slo:error_budget_remaining:ratio{{slo="{slo.name}"}} - {left!r})'
                        f" <= bool {bound!r}"
                    ),
                    "eval_time": f"{minute}m",
                    "exp_samples": [{"labels": f'{{slo="{slo.name}"}}', "value": 1.0}],
                }
            )
            for alert, burning in status.alerts.items():
                if burning > 0:
                    firing += 1
                    expected = {
                        "slo": slo.name,
                        "burn": alert,
                        "severity": "critical" if alert == "page" else "warning",
                        "rule": rule_id(slo.name, alert),
                    }
                    alerts.setdefault(minute, []).append({"exp_labels": expected})
    # One alertname for every SLO's alerts: promtool wants all of them at each time.
    alert_tests = [
        {"eval_time": f"{minute}m", "alertname": ALERT_NAME, "exp_alerts": alerts.get(minute, [])}
        for minute in ours
    ]
    assert firing >= 3  # the data pages and tickets: not a comparison of quiet
    assert steady > mixed > 0
    test_file = tmp_path / "slos.test.yml"
    test_file.write_text(
        json.dumps(
            {
                "rule_files": [rules.name],
                "evaluation_interval": "10m",
                "tests": [
                    {
                        "interval": "30s",
                        "input_series": _input_series(),
                        "promql_expr_test": expr_tests,
                        "alert_rule_test": alert_tests,
                    }
                ],
            }
        )
    )
    done = subprocess.run(
        [_promtool(), "test", "rules", test_file.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=110,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]

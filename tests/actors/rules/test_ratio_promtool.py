"""Differential test of ratio conditions (`divide_by`) against `promtool test rules`.

Random gauges `num{k}` and `den{k}` (values 0..4, gaps longer than the 5 m lookback, label
sets that only partly overlap), read with `last`: our store and `step` give the firing alerts at
every evaluation, and promtool must find the same ones for `num / (den != 0) > T` (PromQL's
one-to-one matching on identical label sets; `(den != 0)` is our "a zero denominator is no
value"). Samples at 30 s + k minutes, evaluations every minute: no sample on the lookback's edge.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest

from actors.clock import FixedClock
from actors.models import Labels
from actors.rules.config import RuleConfig
from actors.rules.evaluate import Instance, Phase, step
from actors.rules.ratio import read
from actors.rules.spec import rule_from_config
from actors.telemetry.store import MetricStore
from tests.actors.rules.test_differential_promtool import _promtool

pytestmark = pytest.mark.slow

T0 = 1_699_999_980.0
MINUTES = 20
CASES = 40

Series = dict[str, list[float | None]]


def _series(rng: random.Random, keys: tuple[str, ...]) -> Series:
    out: Series = {}
    for k in keys:
        values: list[float | None] = []
        for _ in range(MINUTES):
            gap = rng.random() < 0.15
            values.append(None if gap else float(rng.randint(0, 4)))
        if rng.random() < 0.3:  # a long gap: stale in both
            start = rng.randint(0, MINUTES - 8)
            values[start : start + 7] = [None] * 7
        out[k] = values
    return out


def _ours(num: Series, den: Series, config: RuleConfig) -> list[list[Labels]]:
    store = MetricStore(clock=FixedClock(T0))
    for name in ("num", "den"):
        store.declare(name, "gauge", "differential", ("k",), external=True)
    rule = rule_from_config(config)
    instances: Mapping[str, Instance] = {}
    firing: list[list[Labels]] = []
    for minute in range(MINUTES):
        for name, series in (("num", num), ("den", den)):
            for k, values in series.items():
                v = values[minute]
                if v is not None:
                    store.record(name, v, {"k": k}, timestamp=T0 + 60 * minute + 30)
        now = T0 + 60 * (minute + 1)
        instances = step(rule, instances, read(store, rule.condition, now), now).instances
        firing.append(sorted(i.labels for i in instances.values() if i.phase is Phase.FIRING))
    return firing


def _notation(values: list[float | None]) -> str:
    return " ".join(f"_ {'_' if v is None else repr(v)}" for v in values)


def test_promtool_agrees_with_our_ratio_conditions(tmp_path: Path) -> None:
    promtool = _promtool()
    assert shutil.which(promtool)
    rng = random.Random(20261206)
    files = []
    fired = 0
    for index in range(CASES):
        num = _series(rng, ("1", "2", "3"))
        den = _series(rng, ("1", "2", "4"))
        operator = rng.choice([">", ">=", "<"])
        threshold = rng.choice([0.25, 0.5, 1.0])
        name = f"Ratio{index}"
        config = RuleConfig.model_validate(
            {
                "id": f"ratio-{index}",
                "name": name,
                "condition": {
                    "metric": "num",
                    "window": "1m",
                    "divide_by": {"metric": "den"},
                    "operator": operator,
                    "threshold": threshold,
                },
            }
        )
        expected = _ours(num, den, config)
        fired += sum(len(alerts) for alerts in expected)
        rule = {
            "alert": name,
            "expr": f"num / (den != 0) {operator} {threshold!r}",
            "labels": {"severity": "warning", "rule": config.id},
        }
        rules_file = tmp_path / f"{name}.rules.yml"
        rules_file.write_text(json.dumps({"groups": [{"name": name, "rules": [rule]}]}))
        series = [
            {"series": f'{metric}{{k="{k}"}}', "values": _notation(values)}
            for metric, table in (("num", num), ("den", den))
            for k, values in table.items()
        ]
        tests = [
            {
                "eval_time": f"{60 * (minute + 1)}s",
                "alertname": name,
                "exp_alerts": [
                    {"exp_labels": {n: v for n, v in labels if n != "alertname"}}
                    for labels in alerts
                ],
            }
            for minute, alerts in enumerate(expected)
        ]
        test_file = tmp_path / f"{name}.test.yml"
        test_file.write_text(
            json.dumps(
                {
                    "rule_files": [rules_file.name],
                    "evaluation_interval": "60s",
                    "tests": [
                        {"interval": "30s", "input_series": series, "alert_rule_test": tests}
                    ],
                }
            )
        )
        files.append(test_file.name)
    done = subprocess.run(
        [promtool, "test", "rules", *files],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=100,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert fired > CASES  # the cases are not all quiet

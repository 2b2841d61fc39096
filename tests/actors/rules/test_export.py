"""export-rules: the translation of our rules into Prometheus alerting rules (pure), and
`promtool check rules` on every aggregate of every metric kind."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from actors.rules.config import AGGREGATES, ConditionConfig, RuleConfig
from actors.rules.export import (
    export_rules,
    format_duration,
    promql,
    render_rules_file,
    translate_template,
)
from tests.e2e.harness import require_binary

KINDS = {"c_total": "counter", "g": "gauge", "h": "histogram"}


def _condition(metric: str, aggregate: str, **extra: Any) -> ConditionConfig:
    return ConditionConfig.model_validate(
        {"metric": metric, "aggregate": aggregate, "window": "5m", "threshold": 1, **extra}
    )


@pytest.mark.parametrize(
    ("metric", "aggregate", "expr", "exact"),
    [
        ("g", "last", "g > 1.0", True),
        ("g", "max", "max_over_time(g[5m]) > 1.0", True),
        ("g", "avg", "avg_over_time(g[5m]) > 1.0", False),
        ("g", "p90", "quantile_over_time(0.9, g[5m]) > 1.0", False),
        ("g", "increase", "delta(g[5m]) > 1.0", False),
        ("g", "rate", "delta(g[5m]) / 300.0 > 1.0", False),
        ("g", "absent", "absent_over_time(g[5m])", True),
        ("c_total", "last", "c_total > 1.0", True),
        ("c_total", "increase", "increase(c_total[5m]) > 1.0", False),
        ("c_total", "sum", "increase(c_total[5m]) > 1.0", False),
        ("c_total", "rate", "rate(c_total[5m]) > 1.0", False),
        ("c_total", "count", "changes(c_total[5m]) > 1.0", False),
        ("h", "p95", "histogram_quantile(0.95, rate(h_bucket[5m])) > 1.0", False),
        ("h", "avg", "rate(h_sum[5m]) / rate(h_count[5m]) > 1.0", True),
        ("h", "count", "increase(h_count[5m]) > 1.0", False),
        ("h", "rate", "rate(h_count[5m]) > 1.0", False),
        ("h", "absent", "absent_over_time(h_count[5m])", True),
    ],
)
def test_each_aggregate_maps_to_promql(metric: str, aggregate: str, expr: str, exact: bool) -> None:
    got, note = promql(_condition(metric, aggregate), KINDS[metric])
    assert got == expr
    assert (note is None) == exact


@pytest.mark.parametrize(
    ("metric", "aggregate"),
    [("c_total", "avg"), ("c_total", "p99"), ("g", "sum"), ("g", "count"), ("h", "last"),
     ("h", "min"), ("h", "max")],
)  # fmt: skip
def test_what_prometheus_cannot_see_is_not_exported(metric: str, aggregate: str) -> None:
    expr, note = promql(_condition(metric, aggregate), KINDS[metric])
    assert expr is None
    assert note


def test_label_filters_are_matchers_and_values_are_escaped() -> None:
    cond = _condition("g", "min", labels={"b": 'say "hi"\\', "a": "x"}, operator="<=", window="90s")
    assert promql(cond, "gauge")[0] == r'min_over_time(g{a="x", b="say \"hi\"\\"}[1m30s]) <= 1.0'


def test_a_long_absent_window_is_noted() -> None:
    assert promql(_condition("g", "absent", window="10m"), "gauge")[1] is not None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.25, "250ms"),
        (90, "1m30s"),
        (3600, "1h"),
        (86400, "1d"),
        (5400.5, "1h30m500ms"),
    ],
)
def test_durations(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        ("{{ value }} and {{$value}}", "{{ $value }} and {{ $value }}"),
        ("{{ labels.org }}", "{{ $labels.org }}"),
        ("{{ labels.a-b }}", '{{ index $labels "a-b" }}'),
        ("{{ labels.severity }} over {{ threshold }}", "critical over 5"),
        ("{{ unknown }} {{ x", '{{ "{{" }} unknown }} {{ "{{" }} x'),
        ("plain", "plain"),
    ],
)
def test_templates(ours: str, theirs: str) -> None:
    known = {"labels.severity": "critical", "threshold": "5"}
    assert translate_template(ours, known=known) == theirs


def _rule(**data: Any) -> RuleConfig:
    base: dict[str, Any] = {
        "id": "r",
        "name": "R",
        "condition": {"metric": "g", "operator": ">", "threshold": 5},
    }
    return RuleConfig.model_validate(base | data)


def test_an_alert_carries_for_keep_firing_for_labels_and_annotations() -> None:
    rule = _rule(
        severity="critical",
        summary="{{ labels.team }} {{ labels.rule }}: {{ value }} > {{ threshold }}",
        labels={"team": "ops {{x}}"},
        annotations={"runbook": "https://runbooks/{{ labels.org }}"},
        keep_firing_for="30s",
        condition={"metric": "g", "threshold": 5, "duration": "2m"},
    )
    export = export_rules([rule], KINDS)
    assert export.notes == ()
    assert export.document["groups"][0]["rules"] == [
        {
            "alert": "R",
            "expr": "g > 5.0",
            "for": "2m",
            "keep_firing_for": "30s",
            "labels": {"severity": "critical", "rule": "r", "team": 'ops {{ "{{" }}x}}'},
            "annotations": {
                "runbook": "https://runbooks/{{ $labels.org }}",
                "summary": 'ops {{ "{{" }}x}} r: {{ $value }} > 5',
            },
        }
    ]


def test_left_out_rules_are_listed_never_dropped_silently() -> None:
    rules = [
        _rule(id="off", enabled=False),
        _rule(id="unknown", condition={"metric": "nope"}),
        _rule(id="increments", condition={"metric": "c_total", "aggregate": "avg"}),
        _rule(id="approx", condition={"metric": "c_total", "aggregate": "increase"}),
        _rule(id="exact"),
    ]
    export = export_rules(rules, KINDS)
    exported = [r["labels"]["rule"] for r in export.document["groups"][0]["rules"]]
    assert exported == ["approx", "exact"]
    assert [(n.rule_id, n.exported) for n in export.notes] == [
        ("off", False),
        ("unknown", False),
        ("increments", False),
        ("approx", True),
    ]
    text = render_rules_file(export, source="config.toml")
    for note in export.notes:
        assert f"#   {note}\n" in text
    assert yaml.safe_load(text) == export.document


def test_promtool_accepts_every_exported_rule(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    rules = [
        _rule(
            id=f"{metric}-{aggregate}",
            name=f"{metric} {aggregate} ({kind})",
            summary="{{ value }} {{ labels.k }} {{ labels.a-b }} {{ what }} {{",
            labels={"team": "x{{"},
            keep_firing_for="1m",
            condition={
                "metric": metric,
                "aggregate": aggregate,
                "labels": {"k": 'v"\\'},
                "window": "90s",
                "duration": "30s",
                "threshold": 0.5,
            },
        )
        for metric, kind in KINDS.items()
        for aggregate in AGGREGATES
    ]
    export = export_rules(rules, KINDS)
    path = tmp_path / "rules.yml"
    path.write_text(render_rules_file(export))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    count = len(export.document["groups"][0]["rules"])
    assert count == len(rules) - sum(not n.exported for n in export.notes)
    assert f"SUCCESS: {count} rules found" in result.stdout


def test_a_ratio_is_divided_by_a_denominator_that_is_not_zero() -> None:
    cond = _condition("c_total", "increase", divide_by={"metric": "d_total"})
    got, note = promql(cond, "counter", "counter")
    assert got == "increase(c_total[5m]) / (increase(d_total[5m]) != 0) > 1.0"
    assert note is not None
    assert "divide_by: increase() extrapolates" in note
    gauges = _condition("g", "last", labels={"k": "a"}, divide_by={"metric": "g2", "labels": {}})
    assert promql(gauges, "gauge", "gauge") == ('g{k="a"} / (g2 != 0) > 1.0', None)
    avg = _condition("g", "last", divide_by={"metric": "c_total", "aggregate": "avg"})
    got, note = promql(avg, "gauge", "counter")
    assert got is None
    assert note is not None
    assert note.startswith("divide_by: avg of a counter")
    with pytest.raises(ValueError, match="needs the kind"):
        promql(cond, "counter")


def test_a_ratio_over_an_undeclared_denominator_is_left_out() -> None:
    rule = RuleConfig.model_validate(
        {
            "id": "r",
            "name": "R",
            "condition": {"metric": "c_total", "divide_by": {"metric": "nope_total"}},
        }
    )
    export = export_rules([rule], KINDS)
    assert export.document["groups"][0]["rules"] == []
    assert [str(n) for n in export.notes] == [
        "rule 'r': not exported: metric 'nope_total' is not declared, so its kind is unknown"
    ]

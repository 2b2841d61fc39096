"""The rules' read planning (actors/rules/plan.py), without an event loop."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.clock import FixedClock
from actors.models import Labels
from actors.rules.evaluate import Condition, Rule
from actors.rules.plan import (
    LabelIndex,
    distribute,
    distribute_changed,
    merges_series,
    plan_reads,
    rules_watching,
    split_changed,
)
from actors.telemetry.store import MetricStore

T0 = 1_700_000_000.0


def _rule(
    rule_id: str,
    metric: str = "m",
    labels: Labels = (),
    aggregate: str = "last",
    window: float = 60.0,
    rule_labels: Labels = (),
) -> Rule:
    return Rule(
        id=rule_id,
        name=rule_id,
        condition=Condition(metric=metric, labels=labels, aggregate=aggregate, window=window),
        labels=rule_labels,
    )


def test_rules_reading_the_same_window_share_one_read() -> None:
    a = _rule("a", labels=(("host", "x"),))
    b = _rule("b", labels=(("host", "y"),))
    c = _rule("c", window=30.0)
    d = _rule("d", metric="other")
    reads = plan_reads([a, b, c, d])
    assert [(r.metric, r.window, [x.id for x in r.rules], r.shared) for r in reads] == [
        ("m", 60.0, ["a", "b"], True),
        ("m", 30.0, ["c"], False),
        ("other", 60.0, ["d"], False),
    ]


def test_absent_is_never_shared() -> None:
    (read,) = plan_reads([_rule("a", aggregate="absent"), _rule("b", aggregate="absent")])
    assert not read.shared


def test_distribute_hands_each_series_to_the_rules_it_satisfies() -> None:
    x = _rule("x", labels=(("host", "x"),))
    everyone = _rule("all")
    missing = _rule("missing", labels=(("zone", ""),))  # a label the series lack matches ""
    (read,) = plan_reads([x, everyone, missing])
    hx: Labels = (("host", "x"),)
    hy: Labels = (("host", "y"),)
    assert distribute(read, {hx: 1.0, hy: 2.0}) == {
        "x": {hx: 1.0},
        "all": {hx: 1.0, hy: 2.0},
        "missing": {hx: 1.0, hy: 2.0},
    }


def test_label_index_keeps_rule_order() -> None:
    rules = [_rule("b"), _rule("a"), _rule("c", labels=(("k", "v"),))]
    assert [r.id for r in LabelIndex(rules).rules_of((("k", "v"),))] == ["b", "a", "c"]


def test_distribute_changed_scopes_and_reads_merging_rules_whole() -> None:
    plain = _rule("plain")
    merging = _rule("merging", rule_labels=(("host", "all"),))  # overwrites the series' host
    (read,) = plan_reads([plain, merging])
    hx: Labels = (("host", "x"),)
    hy: Labels = (("host", "y"),)
    share = distribute_changed(read, {hx: 1.0, hy: None})
    assert share.values == {"plain": {hx: 1.0}, "merging": {hx: 1.0}}
    assert share.series == {"plain": [hx, hy], "merging": [hx, hy]}
    assert [r.id for r in share.whole] == ["merging"]
    assert distribute_changed(read, {}).whole == []


def test_merges_series_on_alert_label_names() -> None:
    assert merges_series(_rule("a"), {"severity"})
    assert merges_series(_rule("a", rule_labels=(("team", "x"),)), {"team"})
    assert not merges_series(_rule("a", rule_labels=(("team", "x"),)), {"host"})


def test_split_changed_evaluates_added_and_absent_rules_whole() -> None:
    rules = {
        "new": _rule("new"),
        "gone": _rule("gone", aggregate="absent"),
        "b": _rule("b"),
        "a": _rule("a"),
        "other": _rule("other", metric="n"),
    }
    by_metric = {"m": {"new", "gone", "a", "b"}, "n": {"other"}}
    assert split_changed(rules, by_metric, ["m"], ["new"]) == (["gone", "new"], ["a", "b"])
    assert rules_watching(by_metric, ["m", "n", "unknown"]) == {"new", "gone", "a", "b", "other"}


# -- the plan reads what a naive read per rule would -------------------------------------------

_HOSTS = ["", "x", "y"]
_KINDS = {"g": "gauge", "c_total": "counter", "h": "histogram"}
_filters = st.lists(
    st.tuples(st.sampled_from(["host", "zone", "le_"]), st.sampled_from(_HOSTS)),
    max_size=2,
    unique_by=lambda p: p[0],
).map(lambda pairs: tuple(sorted(pairs)))
_rules = st.lists(
    st.tuples(
        st.sampled_from(sorted(_KINDS)),
        _filters,
        st.sampled_from(["last", "sum", "count", "max", "absent", "increase"]),
        st.sampled_from([10.0, 60.0]),
    ),
    min_size=1,
    max_size=12,
).map(
    lambda specs: [
        _rule(f"r{i}", metric, labels, aggregate, window)
        for i, (metric, labels, aggregate, window) in enumerate(specs)
    ]
)
_samples = st.lists(
    st.tuples(
        st.sampled_from(sorted(_KINDS)),
        st.sampled_from(_HOSTS),
        st.sampled_from(_HOSTS),
        st.floats(0.0, 100.0),
        st.floats(0.0, 50.0),
    ),
    max_size=30,
)


def _store(samples: list[tuple[str, str, str, float, float]]) -> MetricStore:
    store = MetricStore(clock=FixedClock(T0 + 50.0))
    for name, kind in _KINDS.items():
        store.declare(name, kind, name, ("host", "zone"))
    for name, host, zone, value, at in samples:
        store.record(name, value, {"host": host, "zone": zone}, timestamp=T0 + at)
    return store


@settings(max_examples=200, deadline=None)
@given(rules=_rules, samples=_samples)
def test_a_planned_round_reads_what_each_rule_would_read_alone(
    rules: list[Rule], samples: list[tuple[str, str, str, float, float]]
) -> None:
    store = _store(samples)
    now = T0 + 50.0
    planned: dict[str, dict[Labels, float]] = {}
    for read in plan_reads(rules):
        if read.shared:
            every = store.aggregate(read.metric, {}, read.aggregate, read.window, now=now)
            planned.update(distribute(read, every))
        else:
            for rule in read.rules:
                c = rule.condition
                planned[rule.id] = store.aggregate(
                    c.metric, dict(c.labels), c.aggregate, c.window, now=now
                )
    naive = {
        rule.id: store.aggregate(
            rule.condition.metric,
            dict(rule.condition.labels),
            rule.condition.aggregate,
            rule.condition.window,
            now=now,
        )
        for rule in rules
    }
    assert planned == naive


@settings(max_examples=200, deadline=None)
@given(rules=_rules, samples=_samples, changed_hosts=st.sets(st.sampled_from(_HOSTS)))
def test_a_planned_changed_round_reads_what_each_rule_would_read_alone(
    rules: list[Rule], samples: list[tuple[str, str, str, float, float]], changed_hosts: set[str]
) -> None:
    store = _store(samples)
    now = T0 + 50.0
    rules = [r for r in rules if r.condition.aggregate != "absent"]
    changed = [(host, zone) for host in changed_hosts for zone in _HOSTS]
    for read in plan_reads(rules):
        found = store.aggregate_series(
            read.metric, changed, {}, read.aggregate, read.window, now=now
        )
        share = distribute_changed(read, found)
        for rule in read.rules:
            c = rule.condition
            alone = store.aggregate_series(
                c.metric, changed, dict(c.labels), c.aggregate, c.window, now=now
            )
            assert share.series[rule.id] == list(alone)
            assert share.values[rule.id] == {k: v for k, v in alone.items() if v is not None}

"""The rules' read planning (actors/rules/plan.py), without an event loop."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.clock import FixedClock
from actors.models import Labels
from actors.rules.evaluate import Condition, Divisor, Rule
from actors.rules.index import SelectorIndex
from actors.rules.plan import (
    LabelIndex,
    changed_reads,
    dispatch,
    distribute,
    merges_series,
    plan_reads,
    selectors,
    share_changed,
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


def _index(rules: list[Rule]) -> SelectorIndex:
    index = SelectorIndex()
    for rule in rules:
        for metric, matchers in selectors(rule):
            index.add(rule.id, metric, matchers)
    return index


def test_changed_series_are_read_once_and_handed_to_the_rules_selecting_them() -> None:
    plain = _rule("plain")
    x = _rule("x", labels=(("host", "x"),))
    other = _rule("other", window=30.0, labels=(("host", "y"),))
    merging = _rule("merging", rule_labels=(("host", "all"),))  # overwrites the series' host
    rules = {r.id: r for r in (plain, x, other, merging)}
    hx: Labels = (("host", "x"),)
    hy: Labels = (("host", "y"),)
    labels_of: dict[tuple[str, ...], Labels] = {("x",): hx, ("y",): hy}
    plan = dispatch(rules, _index(list(rules.values())), {"m": labels_of})
    assert plan.whole == ["merging"]
    assert plan.scoped == {"other": [("y",)], "plain": [("x",), ("y",)], "x": [("x",)]}
    reads = changed_reads([plain, x, other], plan.scoped)
    assert [(r.window, [x.id for x in r.rules], r.series) for r in reads] == [
        (60.0, ["plain", "x"], frozenset({("x",), ("y",)})),
        (30.0, ["other"], frozenset({("y",)})),
    ]
    values, series = share_changed(reads[0], {hx: 1.0, hy: None}, plan.scoped, labels_of)
    assert values == {"plain": {hx: 1.0}, "x": {hx: 1.0}}
    assert series == {"plain": [hx, hy], "x": [hx]}
    values, series = share_changed(reads[1], {}, plan.scoped, labels_of)  # gone from the store
    assert values == {"other": {}}
    assert series == {"other": []}


def test_merges_series_on_alert_label_names() -> None:
    assert merges_series(_rule("a"), {"severity"})
    assert merges_series(_rule("a", rule_labels=(("team", "x"),)), {"team"})
    assert not merges_series(_rule("a", rule_labels=(("team", "x"),)), {"host"})


def test_dispatch_evaluates_added_absent_and_ratio_rules_whole_when_selected() -> None:
    ratio = Rule(
        id="ratio",
        name="ratio",
        condition=Condition(metric="n", divide_by=Divisor("m", (("host", "y"),))),
    )
    rules = {
        "new": _rule("new"),
        "gone": _rule("gone", aggregate="absent", labels=(("host", "x"),)),
        "b": _rule("b"),
        "a": _rule("a"),
        "other": _rule("other", metric="n"),
        "ratio": ratio,
    }
    index = _index(list(rules.values()))
    hx: Labels = (("host", "x"),)
    hy: Labels = (("host", "y"),)
    plan = dispatch(rules, index, {"m": {("x",): hx}}, ["new"])
    assert (plan.whole, plan.scoped) == (["gone", "new"], {"a": [("x",)], "b": [("x",)]})
    plan = dispatch(rules, index, {"m": {("y",): hy}})  # the denominator's series
    assert plan.whole == ["ratio"]
    assert plan.scoped == {"a": [("y",)], "b": [("y",)], "new": [("y",)]}
    assert index.keys("m") == {"new", "gone", "a", "b", "ratio"}


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
    planned: dict[str, Mapping[Labels, float]] = {}
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
def test_a_dispatched_changed_round_reads_what_each_rule_would_read_alone(
    rules: list[Rule], samples: list[tuple[str, str, str, float, float]], changed_hosts: set[str]
) -> None:
    """Every rule with a changed series of its own is dispatched, absent rules whole, the
    others over exactly the changed series their own read returns; no other rule is."""
    store = _store(samples)
    now = T0 + 50.0
    changed_values: list[tuple[str, ...]] = [(h, z) for h in changed_hosts for z in _HOSTS]
    changed: dict[str, dict[tuple[str, ...], Labels]] = {
        name: {v: store.series_labels(name, v) for v in changed_values} for name in _KINDS
    }
    plan = dispatch({r.id: r for r in rules}, _index(rules), changed)
    scoped_rules = [r for r in rules if r.id in plan.scoped]
    handed: dict[str, Mapping[Labels, float]] = {}
    read_series: dict[str, Sequence[Labels]] = {}
    for read in changed_reads(scoped_rules, plan.scoped):
        found = store.aggregate_series(
            read.metric, read.series, {}, read.aggregate, read.window, now=now
        )
        values, series = share_changed(read, found, plan.scoped, changed[read.metric])
        handed.update(values)
        read_series.update(series)
    for rule in rules:
        c = rule.condition
        selects = [
            v
            for v in changed_values
            if all(dict(changed[c.metric][v]).get(n, "") == w for n, w in c.labels)
        ]
        if c.aggregate == "absent":
            assert (rule.id in plan.whole) == bool(selects)
            continue
        assert (rule.id in plan.scoped) == bool(selects)
        if not selects:
            continue
        alone = store.aggregate_series(
            c.metric, changed_values, dict(c.labels), c.aggregate, c.window, now=now
        )
        assert sorted(read_series[rule.id]) == sorted(alone)
        assert handed[rule.id] == {k: v for k, v in alone.items() if v is not None}


def _dispatch_by_definition(
    rules: Mapping[str, Rule],
    index: SelectorIndex,
    changed: Mapping[str, Mapping[tuple[str, ...], Labels]],
    whole: set[str],
) -> tuple[list[str], dict[str, list[tuple[str, ...]]]]:
    """`dispatch` as its docstring says, rule by rule and series by series."""
    entire = set(whole)
    scoped: dict[str, list[tuple[str, ...]]] = {}
    for metric, series in changed.items():
        for values, labels in series.items():
            for rule_id in sorted(index.select(metric, labels)):
                rule = rules.get(rule_id)
                if rule is not None and (
                    rule.condition.aggregate == "absent"
                    or rule.condition.divide_by is not None
                    or merges_series(rule, {name for name, _ in labels})
                ):
                    entire.add(rule_id)
                else:
                    scoped.setdefault(rule_id, []).append(values)
    return sorted(entire), {
        rule_id: series for rule_id, series in sorted(scoped.items()) if rule_id not in entire
    }


@settings(max_examples=200, deadline=None)
@given(
    specs=st.lists(
        st.tuples(
            st.sampled_from([(), (("host", "x"),), (("host", "y"),)]),
            st.sampled_from([(), (("team", "ops"),), (("host", "all"),)]),
            st.sampled_from(["last", "absent"]),
        ),
        max_size=6,
    ),
    changed=st.lists(
        st.tuples(st.sampled_from(["x", "y"]), st.sampled_from(["", "critical"])),
        unique=True,
        max_size=4,
    ),
    whole=st.sets(st.sampled_from(["r0", "r1", "gone"])),
    forgotten=st.sets(st.sampled_from(["r0", "r1", "r2"])),
)
def test_dispatch_is_its_definition(
    specs: list[tuple[Labels, Labels, str]],
    changed: list[tuple[str, str]],
    whole: set[str],
    forgotten: set[str],
) -> None:
    """One or several changed series (some with a `severity` label: every rule merges them),
    rules merging by their own labels, `absent`, rules the index knows and the rules do not
    (`forgotten`): the rules and series `dispatch` picks are those of the definition."""
    rules = {
        f"r{i}": _rule(f"r{i}", labels=filt, rule_labels=extra, aggregate=aggregate)
        for i, (filt, extra, aggregate) in enumerate(specs)
    }
    index = _index(list(rules.values()))
    live = {rule_id: rule for rule_id, rule in rules.items() if rule_id not in forgotten}
    series: dict[tuple[str, ...], Labels] = {
        (host, severity): tuple(
            (name, value) for name, value in (("host", host), ("severity", severity)) if value
        )
        for host, severity in changed
    }
    plan = dispatch(live, index, {"m": series}, whole)
    assert (plan.whole, plan.scoped) == _dispatch_by_definition(live, index, {"m": series}, whole)

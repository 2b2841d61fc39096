"""The rule state machine, table-driven with explicit times (no event loop)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.models import AlertStatus, Labels, Severity
from actors.rules.evaluate import (
    Condition,
    Instance,
    Phase,
    Rule,
    alert_labels,
    compare,
    fingerprint,
    idle,
    render,
    resolve_all,
    step,
)
from actors.rules.exceptions import DuplicateLabelset
from actors.rules.fingerprints import SeriesFingerprints

SERIES: Labels = (("agent", "a"),)


def _rule(duration: float = 0.0, keep: float = 0.0, aggregate: str = "last") -> Rule:
    return Rule(
        id="r1",
        name="High",
        condition=Condition(
            metric="m", aggregate=aggregate, operator=">", threshold=10, duration=duration
        ),
        severity=Severity.CRITICAL,
        channels=("slack",),
        annotations=(("summary", "{{ value }} errors on {{ labels.agent }}"),),
        keep_firing_for=keep,
    )


@dataclass(frozen=True)
class Case:
    name: str
    duration: float
    keep: float
    # (time, value or None for "no series") -> expected (phase or None, emitted statuses)
    steps: Sequence[tuple[float, float | None, Phase | None, tuple[AlertStatus, ...]]]


CASES = [
    Case(
        "fires at once without duration, resolves when false",
        0,
        0,
        [
            (0, 5, None, ()),
            (1, 11, Phase.FIRING, (AlertStatus.FIRING,)),
            (2, 12, Phase.FIRING, (AlertStatus.FIRING,)),  # annotation (value) changed
            (3, 12, Phase.FIRING, ()),
            (4, 3, None, (AlertStatus.RESOLVED,)),
        ],
    ),
    Case(
        "pending until duration held",
        10,
        0,
        [
            (0, 11, Phase.PENDING, ()),
            (5, 11, Phase.PENDING, ()),
            (10, 11, Phase.FIRING, (AlertStatus.FIRING,)),
            (11, None, None, (AlertStatus.RESOLVED,)),
        ],
    ),
    Case(
        "pending dropped silently",
        10,
        0,
        [
            (0, 11, Phase.PENDING, ()),
            (5, 1, None, ()),
            (9, 11, Phase.PENDING, ()),
            (18, 11, Phase.PENDING, ()),
            (19, 11, Phase.FIRING, (AlertStatus.FIRING,)),
        ],
    ),
    Case(
        "keep_firing_for damps flapping and resets",
        0,
        5,
        [
            (0, 11, Phase.FIRING, (AlertStatus.FIRING,)),
            (3, 1, Phase.FIRING, ()),
            (4, 11, Phase.FIRING, ()),
            (8, 1, Phase.FIRING, ()),
            (8.5, None, Phase.FIRING, ()),
            (9.5, 1, Phase.FIRING, ()),  # counted from the first false evaluation (8)
            (12.9, 1, Phase.FIRING, ()),
            (13, 1, None, (AlertStatus.RESOLVED,)),
        ],
    ),
    Case(
        "keep_firing_for counts from the first false evaluation, as Prometheus",
        0,
        120,
        [
            (0, 11, Phase.FIRING, (AlertStatus.FIRING,)),
            (60, 1, Phase.FIRING, ()),  # first false: the 120 s start here
            (120, 1, Phase.FIRING, ()),  # 60 s since then (120 s since it last held)
            (180, 1, None, (AlertStatus.RESOLVED,)),
        ],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_state_machine(case: Case) -> None:
    rule = _rule(case.duration, case.keep)
    instances: dict[str, Instance] = {}
    for at, value, phase, statuses in case.steps:
        values = {} if value is None else {SERIES: value}
        result = step(rule, instances, values, at)
        instances = result.instances
        got = next(iter(instances.values())).phase if instances else None
        assert got is phase, f"t={at}"
        assert tuple(e.alert.status for e in result.events) == statuses, f"t={at}"


def test_alert_carries_labels_annotations_and_start() -> None:
    rule = _rule(duration=10)
    r1 = step(rule, {}, {SERIES: 11}, 100)
    r2 = step(rule, r1.instances, {SERIES: 12.5}, 110)
    (event,) = r2.events
    alert = event.alert
    assert dict(alert.labels) == {
        "agent": "a",
        "alertname": "High",
        "rule": "r1",
        "severity": "critical",
    }
    assert dict(alert.annotations) == {"summary": "12.5 errors on a"}
    assert alert.starts_at == 100
    assert alert.ends_at is None
    assert alert.fingerprint == fingerprint(alert.labels)
    assert event.channels == ("slack",)
    r3 = step(rule, r2.instances, {}, 120)
    (resolved,) = r3.events
    assert resolved.alert.status is AlertStatus.RESOLVED
    assert resolved.alert.ends_at == 120
    assert resolved.alert.starts_at == 100


def test_each_series_is_its_own_instance() -> None:
    rule = _rule()
    a, b = (("agent", "a"),), (("agent", "b"),)
    r = step(rule, {}, {a: 11, b: 12}, 0)
    assert len(r.instances) == 2
    assert len(r.events) == 2
    r = step(rule, r.instances, {a: 11, b: 1}, 1)
    assert [e.alert.status for e in r.events] == [AlertStatus.RESOLVED]
    assert dict(r.events[0].alert.labels)["agent"] == "b"


def test_absent_fires_whatever_the_operator() -> None:
    rule = _rule(aggregate="absent")
    r = step(rule, {}, {(): 1.0}, 0)
    assert [e.alert.status for e in r.events] == [AlertStatus.FIRING]
    r = step(rule, r.instances, {}, 1)
    assert [e.alert.status for e in r.events] == [AlertStatus.RESOLVED]


def test_changed_tracks_persisted_transitions_only() -> None:
    rule = _rule(duration=10)
    r = step(rule, {}, {SERIES: 11}, 0)
    assert len(r.changed) == 1
    r = step(rule, r.instances, {SERIES: 11}, 1)
    assert r.changed == set()


def test_resolve_all_only_firing() -> None:
    rule = _rule(duration=10)
    pending = step(rule, {}, {SERIES: 11}, 0).instances
    assert resolve_all(rule, pending.values(), 5) == []
    firing = step(_rule(), {}, {SERIES: 11}, 0).instances
    (event,) = resolve_all(rule, firing.values(), 5)
    assert event.alert.status is AlertStatus.RESOLVED


@pytest.mark.parametrize(
    ("value", "operator", "threshold", "expected"),
    [
        (11, ">", 10, True),
        (10, ">", 10, False),
        (10, ">=", 10, True),
        (9, "<", 10, True),
        (10, "<=", 10, True),
        (10, "==", 10, True),
        (10, "!=", 10, False),
        (float("nan"), "!=", 10, False),
    ],
)
def test_compare(value: float, operator: str, threshold: float, expected: bool) -> None:
    assert compare(value, operator, threshold) is expected


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ value }} errors", "3 errors"),
        ("{{$value}} / {{ $labels.agent }}", "3 / a"),
        ("{{ labels.missing }}!", "!"),
        ("{{ threshold }}", "10"),
        ("{{ __import__('os') }}", "{{ __import__('os') }}"),
        ("plain", "plain"),
    ],
)
def test_render(template: str, expected: str) -> None:
    assert render(template, value=3.0, labels={"agent": "a"}, extra={"threshold": "10"}) == expected


def test_fingerprint_is_stable_and_label_sensitive() -> None:
    labels = alert_labels(_rule(), SERIES)
    assert fingerprint(labels) == fingerprint(tuple(labels))
    assert fingerprint(labels) != fingerprint((*labels, ("x", "y")))
    assert len(fingerprint(labels)) == 16


def test_fingerprint_digests_are_those_already_persisted() -> None:
    """Stored alert state and notification identities hold these: they never change."""
    labels = (("alertname", "Höhe"), ("check", "db"), ("rule", "r1"), ("severity", "critical"))
    assert fingerprint(labels) == "0eadb9036ab9f962"
    assert fingerprint(()) == "e3b0c44298fc1c14"


def test_absent_alert_carries_the_filter_labels() -> None:
    rule = Rule(
        id="gone",
        name="Gone",
        condition=Condition(metric="m", labels=(("agent", "a"),), aggregate="absent"),
    )
    (event,) = step(rule, {}, {(): 1.0}, 0).events
    assert dict(event.alert.labels)["agent"] == "a"


def test_keep_missing_holds_restored_instances_until_their_series_reports() -> None:
    rule = _rule()
    firing = step(rule, {}, {SERIES: 11}, 0).instances
    (fp,) = firing
    held = step(rule, firing, {}, 1, keep_missing={fp})
    assert held.instances == firing
    assert held.events == []
    resolved = step(rule, firing, {SERIES: 1}, 2, keep_missing={fp})
    assert [e.alert.status for e in resolved.events] == [AlertStatus.RESOLVED]


# --- incremental steps (`scope`) ----------------------------------------------------------------

_AGENTS = ("a", "b", "c", "d", "e")
_value = st.one_of(st.none(), st.sampled_from([0.0, 5.0, 10.0, 11.0, 20.0]))


@st.composite
def _incremental_case(
    draw: st.DrawFn,
) -> tuple[Rule, dict[str, Instance], dict[Labels, float], frozenset[str], set[Labels], float]:
    """A rule, its state after a random history, every series' values now, and a changed subset.

    The history is a run of full steps, so the state is one the actor can really hold; values
    are drawn from a few levels around the threshold so pending, firing and resolving all occur.
    """
    rule = _rule(
        duration=draw(st.sampled_from([0.0, 2.0, 5.0])),
        keep=draw(st.sampled_from([0.0, 3.0])),
    )
    instances: dict[str, Instance] = {}
    now = 0.0
    for _ in range(draw(st.integers(0, 8))):
        now += draw(st.sampled_from([0.5, 1.0, 3.0]))
        history = draw(st.dictionaries(st.sampled_from(_AGENTS), _value))
        values: dict[Labels, float] = {
            (("agent", a),): v for a, v in history.items() if v is not None
        }
        instances = step(rule, instances, values, now).instances
    now += draw(st.sampled_from([0.5, 1.0, 3.0]))
    current = draw(st.dictionaries(st.sampled_from(_AGENTS), _value))
    values = {(("agent", a),): v for a, v in current.items() if v is not None}
    changed: set[Labels] = {(("agent", a),) for a in draw(st.sets(st.sampled_from(_AGENTS)))}
    keep = frozenset(draw(st.sets(st.sampled_from(sorted(instances)))) if instances else set())
    return rule, instances, values, keep, changed, now


@settings(max_examples=400, deadline=None)
@given(_incremental_case())
def test_an_incremental_step_equals_the_full_step_on_its_scope(
    case: tuple[Rule, dict[str, Instance], dict[Labels, float], frozenset[str], set[Labels], float],
) -> None:
    rule, before, values, keep, changed, now = case
    scope = {fingerprint(alert_labels(rule, series)) for series in changed}
    partial_values = {series: v for series, v in values.items() if series in changed}

    full = step(rule, before, values, now, keep_missing=keep)
    partial = step(rule, before, partial_values, now, keep_missing=keep, scope=scope)

    for fp in scope:
        assert partial.instances.get(fp) == full.instances.get(fp)
    assert partial.changed == full.changed & scope
    assert partial.events == [e for e in full.events if e.alert.fingerprint in scope]
    # outside the scope nothing moves
    for fp, inst in before.items():
        if fp not in scope:
            assert partial.instances[fp] is inst
    assert set(partial.instances) - scope == set(before) - scope


def test_an_empty_label_value_is_no_label() -> None:
    # Prometheus: a label with an empty value does not exist, on a series or set by a rule.
    rule = replace(_rule(), labels=(("team", ""), ("tier", "db")))
    series: Labels = (("agent", "a"), ("cluster", ""), ("team", "ops"))
    labels = dict(alert_labels(rule, series))
    assert labels == {
        "agent": "a",
        "tier": "db",
        "alertname": "High",
        "rule": "r1",
        "severity": "critical",
    }
    result = step(rule, {}, {series: 11.0}, 0.0)
    (event,) = result.events
    assert "cluster" not in dict(event.alert.labels)
    assert "team" not in dict(event.alert.labels)


def test_series_merged_by_rule_labels_fail_the_evaluation() -> None:
    # Prometheus refuses to merge: "vector contains metrics with the same labelset after
    # applying alert labels", and the rule's alerts keep their state.
    rule = replace(_rule(), labels=(("agent", "all"),))
    a: Labels = (("agent", "a"),)
    b: Labels = (("agent", "b"),)
    instances = step(rule, {}, {a: 11.0}, 0.0).instances
    with pytest.raises(DuplicateLabelset, match="same labelset after applying alert labels"):
        step(rule, instances, {a: 11.0, b: 12.0}, 1.0)
    # Only series whose condition holds are alerts: a false one does not collide.
    assert step(rule, instances, {a: 11.0, b: 1.0}, 1.0).instances.keys() == instances.keys()


@settings(max_examples=400, deadline=None)
@given(_incremental_case())
def test_an_idle_step_changes_nothing(
    case: tuple[Rule, dict[str, Instance], dict[Labels, float], frozenset[str], set[Labels], float],
) -> None:
    """`idle` says so only when the incremental step over the changed series returns the
    instances as they were, no event, nothing changed (so the actor may skip it)."""
    rule, before, values, keep, changed, now = case
    scope = {fingerprint(alert_labels(rule, series)) for series in changed}
    partial_values = {series: v for series, v in values.items() if series in changed}
    partial = step(rule, before, partial_values, now, keep_missing=keep, scope=scope)
    quiet = (partial.instances == before, partial.events, partial.changed) == (True, [], set())
    if idle(rule, before, partial_values, changed):
        assert quiet
    memo = SeriesFingerprints(rule)
    assert idle(rule, before, partial_values, changed, memo.of) == idle(
        rule, before, partial_values, changed
    )
    holds = any(compare(v, ">", 10) for v in partial_values.values())
    assert idle(rule, before, partial_values, changed) == (not holds and not (scope & set(before)))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.dictionaries(st.sampled_from(_AGENTS), _value),
            st.sets(st.sampled_from(_AGENTS)),
            st.booleans(),
        ),
        max_size=10,
    )
)
def test_steps_with_one_memo_of_fingerprints_equal_steps_without(
    history: list[tuple[dict[str, float | None], set[str], bool]],
) -> None:
    """A memo kept across steps (series coming, going and coming back; pruned to the series
    read now and then) gives the steps of fingerprints computed afresh, full or incremental."""
    rule = _rule(duration=2.0)
    memo = SeriesFingerprints(rule)
    fresh: dict[str, Instance] = {}
    memoised: dict[str, Instance] = {}
    now = 0.0
    for current, changed_agents, prune in history:
        now += 1.0
        values: dict[Labels, float] = {
            (("agent", a),): v for a, v in current.items() if v is not None
        }
        changed: set[Labels] = {(("agent", a),) for a in changed_agents}
        if prune:
            memo.retain(values)
            full = step(rule, fresh, values, now)
            mine = step(rule, memoised, values, now, fingerprint_of=memo.of)
        else:
            part: dict[Labels, float] = {s: v for s, v in values.items() if s in changed}
            scope = {fingerprint(alert_labels(rule, series)) for series in changed}
            full = step(rule, fresh, part, now, scope=scope)
            mine = step(rule, memoised, part, now, scope=scope, fingerprint_of=memo.of)
        assert (mine.instances, mine.events, mine.changed) == (
            full.instances,
            full.events,
            full.changed,
        )
        fresh, memoised = full.instances, mine.instances
        assert all(fp == fingerprint(alert_labels(rule, s)) for s, fp in memo.items())


@given(st.lists(st.sampled_from(_AGENTS), max_size=20), st.sets(st.sampled_from(_AGENTS)))
def test_the_memo_is_the_fingerprint_and_retain_keeps_what_still_reports(
    asked: list[str], reporting: set[str]
) -> None:
    rule = _rule()
    memo = SeriesFingerprints(rule)
    for agent in asked:
        series: Labels = (("agent", agent),)
        assert memo[series] == memo.of(series) == fingerprint(alert_labels(rule, series))
    assert set(memo) == {(("agent", a),) for a in asked}
    keep = {(("agent", a),) for a in reporting}
    memo.retain(keep)
    assert set(memo) == {(("agent", a),) for a in asked if a in reporting}
    assert memo.oversized(0) is (len(memo) > 256)

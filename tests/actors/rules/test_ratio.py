"""Ratio conditions (`divide_by`): the arithmetic, the configuration, and the actor over a store."""

from __future__ import annotations

import math
from typing import Any

import pytest
import trio
from pydantic import ValidationError
from trio.testing import MockClock

from actors.clock import FixedClock, VirtualClock
from actors.models import AlertEvent, AlertStatus
from actors.rules.actor import RulesActor
from actors.rules.config import RuleConfig
from actors.rules.evaluate import Divisor
from actors.rules.index import SelectorIndex
from actors.rules.plan import dispatch, plan_reads, selectors
from actors.rules.ratio import divide, read
from actors.rules.spec import rule_from_config
from actors.telemetry.store import MetricStore

A = (("agent", "a"),)
B = (("agent", "b"),)
C = (("agent", "c"),)


def test_divides_series_with_identical_labels() -> None:
    assert divide({A: 3.0, B: 1.0}, {A: 4.0, B: 8.0}) == {A: 0.75, B: 0.125}


def test_no_denominator_or_a_zero_one_is_no_value() -> None:
    assert divide({A: 3.0, B: 1.0, C: 0.0}, {A: 0.0, C: math.nan}) == {}


def test_denominator_without_numerator_is_left_out() -> None:
    assert divide({A: 0.0}, {A: 5.0, B: 5.0}) == {A: 0.0}


def test_label_sets_must_be_identical_not_a_subset() -> None:
    wider = (("agent", "a"), ("region", "eu"))
    assert divide({wider: 1.0}, {A: 2.0}) == {}


def _rule(**condition: Any) -> RuleConfig:
    cond: dict[str, Any] = {
        "metric": "agent_errors_total",
        "aggregate": "increase",
        "window": "5m",
        "divide_by": {"metric": "agent_executions_total"},
        "operator": ">",
        "threshold": 0.01,
    }
    cond.update(condition)
    return RuleConfig.model_validate({"id": "ratio", "name": "Ratio", "condition": cond})


def test_divide_by_takes_the_conditions_aggregate_and_labels_by_default() -> None:
    rule = rule_from_config(_rule(labels={"agent": "a"}))
    assert rule.condition.divide_by == Divisor("agent_executions_total", A, "increase")
    other = rule_from_config(
        _rule(divide_by={"metric": "x_total", "aggregate": "rate", "labels": {}})
    )
    assert other.condition.divide_by == Divisor("x_total", (), "rate")


def test_absent_cannot_be_a_ratio() -> None:
    with pytest.raises(ValidationError, match="absent cannot be divided"):
        _rule(aggregate="absent")
    with pytest.raises(ValidationError, match="cannot divide by absent"):
        _rule(divide_by={"metric": "x_total", "aggregate": "absent"})


def test_ratio_rules_watch_both_metrics_and_are_evaluated_whole() -> None:
    ratio = rule_from_config(_rule())
    plain = rule_from_config(_rule(divide_by=None).model_copy(update={"id": "plain"}))
    assert [m for m, _ in selectors(ratio)] == ["agent_errors_total", "agent_executions_total"]
    assert [m for m, _ in selectors(plain)] == ["agent_errors_total"]
    rules = {"ratio": ratio, "plain": plain}
    index = SelectorIndex()
    for rule in rules.values():
        for metric, matchers in selectors(rule):
            index.add(rule.id, metric, matchers)
    a: tuple[tuple[str, str], ...] = (("agent", "a"),)
    plan = dispatch(rules, index, {"agent_errors_total": {("a",): a}})
    assert (plan.whole, list(plan.scoped)) == (["ratio"], ["plain"])
    plan = dispatch(rules, index, {"agent_executions_total": {("a",): a}})
    assert (plan.whole, plan.scoped) == (["ratio"], {})
    twin = rule_from_config(_rule().model_copy(update={"id": "twin"}))
    assert not any(r.shared for r in plan_reads([ratio, twin]))


def _store(clock: FixedClock | VirtualClock) -> MetricStore:
    store = MetricStore(clock=clock)
    store.declare("agent_errors_total", "counter", "Errors.", ("agent",))
    store.declare("agent_executions_total", "counter", "Executions.", ("agent",))
    return store


def test_read_divides_over_the_same_window() -> None:
    clock = FixedClock(1_000_000.0)
    store = _store(clock)
    # Executions before the window do not count.
    store.record("agent_executions_total", 1000, {"agent": "a"}, timestamp=999_000.0)
    for agent, errors, runs in (("a", 3, 100), ("b", 0, 50), ("c", 2, 0)):
        if errors:
            store.record("agent_errors_total", errors, {"agent": agent}, timestamp=999_990.0)
        else:
            store.record("agent_errors_total", 0, {"agent": agent}, timestamp=999_700.0)
        if runs:
            store.record("agent_executions_total", runs, {"agent": agent}, timestamp=999_990.0)
    # b added no error yet (no value: no increase before a change), c ran nothing (no value).
    rule = rule_from_config(_rule())
    assert read(store, rule.condition, 1_000_000.0) == {A: 0.03}


async def test_a_ratio_fires_when_the_denominators_samples_arrive(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    clock = VirtualClock()
    store = _store(clock)
    send, receive = trio.open_memory_channel[AlertEvent](10)
    actor = RulesActor(rules=[_rule()], store=store, sink=send, clock=clock, tick=3600)
    await nursery.start(actor.run)
    store.record("agent_errors_total", 2, {"agent": "a"})
    await trio.sleep(0.1)
    assert actor.alerts() == []  # no executions: no value, no alert
    store.record("agent_executions_total", 100, {"agent": "a"})
    with trio.fail_after(1):
        event = await receive.receive()
    assert event.alert.status is AlertStatus.FIRING
    assert event.alert.value == 0.02
    store.record("agent_executions_total", 300, {"agent": "a"})
    with trio.fail_after(1):
        event = await receive.receive()
    assert event.alert.status is AlertStatus.RESOLVED

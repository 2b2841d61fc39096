"""The rules actor under the autojump clock, with the real metric store and the real stores
(SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any
from unittest.mock import patch

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from trio.testing import MockClock

from actors.clock import FixedClock, VirtualClock
from actors.models import AlertEvent, AlertStatus, Severity
from actors.rules.actor import RulesActor
from actors.rules.config import RuleConfig
from actors.rules.evaluate import alert_labels, fingerprint
from actors.rules.exceptions import InvalidRule, RuleNotFound
from actors.rules.fingerprints import SeriesFingerprints
from actors.rules.persist import AlertStateStore, MemoryAlertStateStore, SqliteAlertStateStore
from actors.store import QueryError
from actors.telemetry.store import MetricStore
from tests.conftest import Stores


def _rule(**extra: Any) -> RuleConfig:
    data: dict[str, Any] = {
        "id": "db-down",
        "name": "Database Connection Issues",
        "severity": "critical",
        "channels": ["email", "pagerduty"],
        "summary": "check {{ labels.check }} is down ({{ value }})",
        "condition": {
            "metric": "health_check_up",
            "labels": {"check": "database"},
            "aggregate": "last",
            "window": "1m",
            "operator": "<",
            "threshold": 1,
        },
    }
    data.update(extra)
    return RuleConfig.model_validate(data)


def _store(clock: VirtualClock) -> MetricStore:
    store = MetricStore(clock=clock)
    store.declare("health_check_up", "gauge", "Check up.", ("check",))
    return store


class Harness:
    def __init__(
        self, rules: list[RuleConfig], state: AlertStateStore | None = None, **options: Any
    ) -> None:
        self.clock = VirtualClock()
        self.store = _store(self.clock)
        self.send, self.receive = trio.open_memory_channel[AlertEvent](100)
        self.actor = RulesActor(
            rules=rules,
            store=self.store,
            sink=self.send,
            clock=self.clock,
            state=state or MemoryAlertStateStore(),
            **options,
        )

    async def next(self, timeout: float = 0.05) -> AlertEvent:
        with trio.fail_after(timeout):
            return await self.receive.receive()

    def nothing(self) -> bool:
        try:
            self.receive.receive_nowait()
        except trio.WouldBlock:
            return True
        return False


async def test_a_sample_fires_at_once_without_waiting_for_the_tick(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    h = Harness([_rule()])
    await nursery.start(h.actor.run)
    await trio.sleep(0.3)  # between ticks
    h.store.record("health_check_up", 0, {"check": "database"})
    # Well before the next tick (t = 1 s). Not "at once" in virtual time: after a round that took
    # over 1 ms of real time (a loaded machine) the actor rests in proportion before the next.
    event = await h.next(timeout=0.5)
    assert trio.current_time() < 1.0
    assert event.alert.status is AlertStatus.FIRING
    labels = dict(event.alert.labels)
    assert labels["alertname"] == "Database Connection Issues"
    assert labels["check"] == "database"
    assert labels["severity"] == "critical"
    assert dict(event.alert.annotations)["summary"] == "check database is down (0)"
    assert event.channels == ("email", "pagerduty")
    firing = h.store.aggregate("alerts_firing", {"rule": "db-down"}, "last", 10, now=h.clock.now())
    assert list(firing.values()) == [1.0]
    views = h.actor.alerts()
    assert [v.state for v in views] == ["firing"]
    h.store.record("health_check_up", 1, {"check": "database"})
    event = await h.next(timeout=0.5)
    assert trio.current_time() < 1.0
    assert event.alert.status is AlertStatus.RESOLVED
    assert h.actor.alerts() == []


async def test_duration_is_reached_by_the_tick(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    cond = {**_rule().condition.model_dump(), "window": "1m", "duration": "5s"}
    h = Harness([_rule(condition=cond)])
    await nursery.start(h.actor.run)
    start = trio.current_time()
    recorded_at = h.clock.now()
    h.store.record("health_check_up", 0, {"check": "database"})
    await trio.sleep(0.01)
    assert [v.state for v in h.actor.alerts()] == ["pending"]
    assert h.nothing()
    event = await h.next(timeout=7)
    assert 5 <= trio.current_time() - start <= 6
    assert event.alert.starts_at == recorded_at


async def test_absent_fires_on_the_tick(nursery: trio.Nursery, autojump_clock: MockClock) -> None:
    rule = _rule(condition={"metric": "health_check_up", "aggregate": "absent", "window": "10s"})
    h = Harness([rule])
    await nursery.start(h.actor.run)
    event = await h.next(timeout=1.5)
    assert event.alert.status is AlertStatus.FIRING


async def test_add_rule_in_the_seed_shape_and_remove_rule_resolves(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    h = Harness([])
    h.store.declare("custom_metric", "gauge", "Custom.", ())
    await nursery.start(h.actor.run)
    rule = h.actor.add_rule(
        {
            "id": "custom-alert",
            "name": "Custom Alert",
            "condition": {
                "metric": "custom_metric",
                "operator": ">",
                "threshold": 100,
                "duration": 0,
            },
            "severity": "warning",
            "channels": [{"type": "slack", "config": {}}],
            "enabled": True,
        }
    )
    assert rule.channels == ("slack",)
    assert rule.severity is Severity.WARNING
    h.store.record("custom_metric", 150)
    event = await h.next(timeout=0.001)
    assert event.alert.status is AlertStatus.FIRING
    assert event.channels == ("slack",)
    h.actor.remove_rule("custom-alert")
    event = await h.next(timeout=0.001)
    assert event.alert.status is AlertStatus.RESOLVED
    with pytest.raises(RuleNotFound):
        h.actor.remove_rule("custom-alert")


def test_add_rule_reports_every_problem() -> None:
    h = Harness([])
    with pytest.raises(InvalidRule) as info:
        h.actor.add_rule({"id": "x", "condition": {"metric": "m", "operator": "~"}})
    message = str(info.value)
    assert "name" in message
    assert "condition.operator" in message


async def test_restart_neither_repages_nor_forgets_the_resolution(
    stores: Stores, autojump_clock: MockClock
) -> None:
    db = stores.open(offload=False)
    state = SqliteAlertStateStore(database=db)
    h = Harness([_rule()], state)
    async with trio.open_nursery() as nursery:
        await nursery.start(h.actor.run)
        h.store.record("health_check_up", 0, {"check": "database"})
        first = await h.next()
        nursery.cancel_scope.cancel()
    # restart: same database, fresh actor and store (the process died)
    h2 = Harness([_rule()], SqliteAlertStateStore(database=db))
    h2.clock = h.clock
    async with trio.open_nursery() as nursery:
        await nursery.start(h2.actor.run)
        again = await h2.next()
        assert again.alert.status is AlertStatus.FIRING
        # same instance, same start: routing's notification log recognises it
        assert again.alert.fingerprint == first.alert.fingerprint
        assert again.alert.starts_at == first.alert.starts_at
        h2.store.record("health_check_up", 1, {"check": "database"})
        resolved = await h2.next(timeout=1.5)
        assert resolved.alert.status is AlertStatus.RESOLVED
        assert resolved.alert.starts_at == first.alert.starts_at
        nursery.cancel_scope.cancel()
    assert await SqliteAlertStateStore(database=db).load() == {}
    db.close()


async def test_a_removed_rule_resolves_after_restart(autojump_clock: MockClock) -> None:
    state = MemoryAlertStateStore()
    h = Harness([_rule()], state)
    async with trio.open_nursery() as nursery:
        await nursery.start(h.actor.run)
        h.store.record("health_check_up", 0, {"check": "database"})
        await h.next()
        nursery.cancel_scope.cancel()
    h2 = Harness([], state)
    async with trio.open_nursery() as nursery:
        await nursery.start(h2.actor.run)
        event = await h2.next()
        assert event.alert.status is AlertStatus.RESOLVED
        nursery.cancel_scope.cancel()
    assert state.data == {}


async def test_tracer_span_per_cycle(nursery: trio.Nursery, autojump_clock: MockClock) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    h = Harness([_rule()])
    h.actor._tracer = provider.get_tracer("test")
    await nursery.start(h.actor.run)
    h.store.record("health_check_up", 0, {"check": "database"})
    await h.next()
    spans = exporter.get_finished_spans()
    assert spans
    assert spans[-1].name == "rules.evaluate"


async def test_rules_sharing_a_metric_each_see_their_own_series(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    def rule(rule_id: str, labels: dict[str, str]) -> RuleConfig:
        return RuleConfig.model_validate(
            {
                "id": rule_id,
                "name": rule_id,
                "condition": {
                    "metric": "health_check_up",
                    "labels": labels,
                    "operator": "<",
                    "threshold": 1,
                },
            }
        )

    h = Harness([rule("db", {"check": "database"}), rule("api", {"check": "api"}), rule("all", {})])
    await nursery.start(h.actor.run)
    h.store.record("health_check_up", 0, {"check": "database"})
    h.store.record("health_check_up", 0, {"check": "cache"})
    await trio.sleep(0.01)
    got = sorted((v.rule_id, dict(v.labels)["check"]) for v in h.actor.alerts())
    assert got == [("all", "cache"), ("all", "database"), ("db", "database")]


async def test_duration_keeps_counting_across_a_restart(autojump_clock: MockClock) -> None:
    cond = {**_rule().condition.model_dump(), "window": "1h", "duration": "60s"}
    state = MemoryAlertStateStore()
    h = Harness([_rule(condition=cond)], state)
    async with trio.open_nursery() as nursery:
        await nursery.start(h.actor.run)
        h.store.record("health_check_up", 0, {"check": "database"})
        await trio.sleep(40)
        assert [v.state for v in h.actor.alerts()] == ["pending"]
        nursery.cancel_scope.cancel()
    h2 = Harness([_rule(condition=cond)], state)
    h2.clock = h.clock
    h2.actor._clock = h.clock
    async with trio.open_nursery() as nursery:
        await nursery.start(h2.actor.run)
        h2.store.record("health_check_up", 0, {"check": "database"})
        start = trio.current_time()
        event = await h2.next(timeout=30)
        # pending since 40 s before the restart: fires ~20 s after it, not 60 s
        assert trio.current_time() - start <= 21
        assert event.alert.status is AlertStatus.FIRING
        nursery.cancel_scope.cancel()


async def test_restored_firing_alert_waits_for_data_then_resolves_after_grace(
    autojump_clock: MockClock,
) -> None:
    state = MemoryAlertStateStore()
    h = Harness([_rule()], state)
    async with trio.open_nursery() as nursery:
        await nursery.start(h.actor.run)
        h.store.record("health_check_up", 0, {"check": "database"})
        await h.next()
        nursery.cancel_scope.cancel()
    h2 = Harness([_rule()], state)  # the metric store starts empty
    async with trio.open_nursery() as nursery:
        await nursery.start(h2.actor.run)
        assert (await h2.next()).alert.status is AlertStatus.FIRING  # re-announced
        await trio.sleep(59)
        assert h2.nothing()  # no data yet: not resolved, not dropped
        assert [v.state for v in h2.actor.alerts()] == ["firing"]
        resolved = await h2.next(timeout=3)  # still no data after the grace: resolved
        assert resolved.alert.status is AlertStatus.RESOLVED
        nursery.cancel_scope.cancel()


async def test_a_sample_rereads_only_its_own_series(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    every = {**_rule().condition.model_dump(), "labels": {}, "window": "1m", "duration": "0s"}
    h = Harness([_rule(condition=every)])
    for i in range(200):
        h.store.record("health_check_up", 1, {"check": f"url-{i}"})
    await nursery.start(h.actor.run)
    await trio.sleep(0.3)  # the first tick read all 200; now between ticks
    read = h.actor.series_evaluated
    h.store.record("health_check_up", 0, {"check": "url-7"})
    event = await h.next(timeout=0.001)
    assert dict(event.alert.labels)["check"] == "url-7"
    assert h.actor.series_evaluated - read == 1
    h.store.record("health_check_up", 1, {"check": "url-7"})
    # right after a round: coalesced with whatever else comes within the batching window
    assert (await h.next(timeout=0.05)).alert.status is AlertStatus.RESOLVED
    assert h.actor.series_evaluated - read == 2


_CHECKS = ("a", "b", "c", "d")


def _filtered_rule(
    rule_id: str, labels: dict[str, str], alert_labels: dict[str, str] | None = None
) -> RuleConfig:
    return RuleConfig.model_validate(
        {
            "id": rule_id,
            "name": rule_id,
            "labels": alert_labels or {},
            "summary": "{{ labels.check }} at {{ value }}",
            "condition": {
                "metric": "health_check_up",
                "labels": labels,
                "window": "1h",
                "operator": "<",
                "threshold": 1,
            },
        }
    )


def _equivalence_rules() -> list[RuleConfig]:
    absent_c = _filtered_rule("absent-c", {"check": "c"})
    max_d = _filtered_rule("max-d", {"check": "d"})
    return [
        _filtered_rule("all", {}),
        _filtered_rule("a", {"check": "a"}),
        _filtered_rule("b", {"check": "b"}),
        _filtered_rule("nobody", {"check": "z"}),  # selects no series
        _filtered_rule("no-such-label", {"zone": ""}),  # a missing label is the empty value
        absent_c.model_copy(
            update={"condition": absent_c.condition.model_copy(update={"aggregate": "absent"})}
        ),
        max_d.model_copy(
            update={"condition": max_d.condition.model_copy(update={"aggregate": "max"})}
        ),
        # its `check` label overrides the series': every series is one alert
        _filtered_rule("fleet", {}, {"check": "fleet"}),
    ]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.dictionaries(st.sampled_from(_CHECKS), st.sampled_from([0.0, 0.5, 1.0]), min_size=1),
        max_size=12,
    )
)
def test_incremental_rounds_alert_as_full_rounds(batches: list[dict[str, float]]) -> None:
    """Fed the same samples, evaluating just the changed series emits the same events and holds
    the same instances as evaluating every series (rules without `duration` or
    `keep_firing_for`, so only samples move them; the tick covers time): rules without a
    filter, filtered on one series, on none, on a label the series lack, `absent` and `max`
    filtered rules, and a rule whose labels merge every series into one alert. (A rule's
    filter is exact-match; the selector index's negative and regex matchers are pinned in
    test_index.py.)"""
    rules = _equivalence_rules()

    async def run() -> None:
        clock = FixedClock()
        sides = []
        for _ in range(2):
            store = MetricStore(clock=clock)
            store.declare("health_check_up", "gauge", "Check up.", ("check",))
            send, receive = trio.open_memory_channel[AlertEvent](1000)
            actor = RulesActor(rules=rules, store=store, sink=send, clock=clock)
            sides.append((store, actor, receive))
        (inc_store, incremental, inc_events), (full_store, full, full_events) = sides
        # as `run` starts: a full round (what holds before any sample, e.g. an absence)
        await incremental.evaluate(None)
        await full.evaluate(None)
        for batch in batches:
            clock.advance(1.0)
            for check, value in batch.items():
                inc_store.record("health_check_up", value, {"check": check})
                full_store.record("health_check_up", value, {"check": check})
            await incremental.evaluate_changed({"health_check_up": {(c,) for c in batch}})
            await full.evaluate(["health_check_up"])
            assert sorted(_drain(inc_events)) == sorted(_drain(full_events))
            assert _instances(incremental) == _instances(full)

    trio.run(run)


def _drain(receive: trio.MemoryReceiveChannel[AlertEvent]) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    while True:
        try:
            event = receive.receive_nowait()
        except trio.WouldBlock:
            return out
        out.append((event.rule_id, event.alert.fingerprint, str(event.alert.status)))


def _instances(actor: RulesActor) -> list[tuple[str, str, str, float, float]]:
    return [(v.rule_id, v.fingerprint, v.state, v.active_since, v.value) for v in actor.alerts()]


async def test_events_waiting_on_a_full_sink_survive_a_restart(autojump_clock: MockClock) -> None:
    """Resolutions pending while routing lags are sent by the next run, not lost with the
    cancelled one (their instances are already deleted from the state store)."""
    clock = VirtualClock()
    store = _store(clock)
    send, receive = trio.open_memory_channel[AlertEvent](1)
    rules = [_filtered_rule(name, {"check": name}) for name in ("a", "b", "c")]
    actor = RulesActor(rules=rules, store=store, sink=send, clock=clock)
    statuses: list[tuple[str, AlertStatus]] = []

    async def take(count: int) -> None:
        for _ in range(count):
            event = await receive.receive()
            statuses.append((event.rule_id, event.alert.status))

    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        for name in ("a", "b", "c"):
            store.record("health_check_up", 0, {"check": name})
        await take(3)
        for name in ("a", "b", "c"):
            store.record("health_check_up", 1, {"check": name})
        await trio.sleep(0.5)  # one resolution fits in the sink, the actor waits on the next
        nursery.cancel_scope.cancel()
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        await take(3)
        nursery.cancel_scope.cancel()
    assert sorted(statuses) == sorted(
        [(n, AlertStatus.FIRING) for n in "abc"] + [(n, AlertStatus.RESOLVED) for n in "abc"]
    )


async def test_a_rule_that_merges_series_fails_its_evaluation_visibly() -> None:
    condition = {"metric": "health_check_up", "aggregate": "last", "operator": "<", "threshold": 1}
    rule = _rule(labels={"check": "all"}, condition=condition)
    h = Harness([rule])
    h.store.record("health_check_up", 0, {"check": "database"})
    await h.actor.evaluate(None)
    assert len(h.actor.alerts()) == 1
    assert (await h.next()).alert.status is AlertStatus.FIRING
    h.store.record("health_check_up", 0, {"check": "cache"})
    await h.actor.evaluate(None)
    # Not merged: the evaluation failed, the alert kept its state, the failure is on record.
    assert "same labelset after applying alert labels" in h.actor.errors()["db-down"]
    assert h.actor.evaluation_failures == 1
    assert h.store.aggregate("rule_evaluation_failures_total", {}, "last", 60) == {
        (("rule", "db-down"),): 1.0
    }
    assert len(h.actor.alerts()) == 1
    assert h.nothing()
    h.store.record("health_check_up", 1, {"check": "cache"})
    await h.actor.evaluate(None)
    assert h.actor.errors() == {}
    assert len(h.actor.alerts()) == 1


async def test_an_alert_on_a_series_that_stopped_reporting_resolves(
    autojump_clock: MockClock,
) -> None:
    # "count < 1" on a counter: fires while the agent is idle, and resolves once the series
    # is stale (5 m without a sample), as in Prometheus; it used to fire for ever.
    condition = {
        "metric": "agent_executions_total",
        "aggregate": "count",
        "window": "1m",
        "operator": "<",
        "threshold": 1,
    }
    h = Harness([_rule(id="idle", condition=condition)])
    h.store.declare("agent_executions_total", "counter", "Executions.", ("agent",), external=True)
    h.store.record("agent_executions_total", 1, {"agent": "a"})
    await trio.sleep(61)
    await h.actor.evaluate(None)
    assert (await h.next()).alert.status is AlertStatus.FIRING
    await trio.sleep(240)  # 301 s after the last sample
    await h.actor.evaluate(None)
    event = await h.next()
    assert event.alert.status is AlertStatus.RESOLVED
    assert h.actor.alerts() == []


class FailingState(MemoryAlertStateStore):
    """A state store that is down (`QueryError`) while `down` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.attempts = 0

    async def save(self, rule_id: str, upserts: Any, deletes: Any) -> None:
        self.attempts += 1
        if self.down:
            raise QueryError("transaction", "connection refused")
        await super().save(rule_id, upserts, deletes)


async def test_a_failing_state_store_neither_stops_alerting_nor_loses_the_state(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    state = FailingState()
    state.down = True
    h = Harness([_rule()], state)
    await nursery.start(h.actor.run)
    h.store.record("health_check_up", 0, {"check": "database"})
    firing = await h.next(timeout=0.5)
    assert firing.alert.status is AlertStatus.FIRING  # sent although not saved
    assert h.actor.unsaved == 1
    assert state.data == {}
    h.store.record("health_check_up", 1, {"check": "database"})
    resolved = await h.next(timeout=0.5)
    assert resolved.alert.status is AlertStatus.RESOLVED
    h.store.record("health_check_up", 0, {"check": "database"})
    assert (await h.next(timeout=0.5)).alert.status is AlertStatus.FIRING
    assert h.actor.unsaved == 1  # merged per instance: bounded by the instances
    attempts = state.attempts
    await trio.sleep(10)  # the tick retries, with backoff
    assert state.attempts > attempts
    state.down = False
    while h.actor.unsaved:
        await trio.sleep(0.5)
    [(_fingerprint, saved)] = state.data["db-down"].items()
    assert saved.phase.value == "firing"
    assert h.actor.alerts()[0].state == "firing"


_ZONES = ("", "x", "y")
_VARIANTS: dict[str, dict[str, Any]] = {
    # the same rule id, as it may be replaced at runtime: other alert labels, other fingerprints
    "plain": {"name": "all", "labels": {}},
    "renamed": {"name": "everything", "labels": {}},
    "team": {"name": "all", "labels": {"team": "ops"}},
    "severe": {"name": "all", "labels": {}, "severity": "critical"},
}
_op = st.one_of(
    st.tuples(
        st.just("sample"),
        st.dictionaries(
            st.tuples(st.sampled_from(_CHECKS), st.sampled_from(_ZONES)),
            st.sampled_from([0.0, 1.0]),
            min_size=1,
            max_size=4,
        ),
    ),
    st.tuples(st.just("wait"), st.sampled_from([1.0, 61.0])),  # 61 s: every series goes stale
    st.tuples(st.just("replace"), st.sampled_from(sorted(_VARIANTS))),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_op, max_size=14))
def test_cached_fingerprints_never_go_stale(ops: list[tuple[str, Any]]) -> None:
    """Incremental rounds (fingerprints kept per rule and series across rounds, pruned to the
    series that still report) alert as full rounds when label sets come and go (a zone label
    set or not: other series, other alert labels), series stop reporting (a window passes:
    every value gone, then they report again), and the rule is replaced by another with the
    same id and other alert labels; every kept fingerprint is that of its series."""
    window = {"metric": "health_check_up", "window": "1m", "operator": "<", "threshold": 1}

    def variant(name: str) -> RuleConfig:
        return RuleConfig.model_validate(
            {"id": "all", **_VARIANTS[name], "condition": {**window, "labels": {}}}
        )

    rules = [
        variant("plain"),
        RuleConfig.model_validate(
            {"id": "in-x", "name": "in-x", "condition": {**window, "labels": {"zone": "x"}}}
        ),
    ]

    async def run() -> None:
        clock = FixedClock()
        sides = []
        for _ in range(2):
            store = MetricStore(clock=clock)
            store.declare("health_check_up", "gauge", "Check up.", ("check", "zone"))
            send, receive = trio.open_memory_channel[AlertEvent](1000)
            actor = RulesActor(rules=rules, store=store, sink=send, clock=clock)
            sides.append((store, actor, receive))
        (inc_store, incremental, inc_events), (full_store, full, full_events) = sides
        await incremental.evaluate(None)
        await full.evaluate(None)
        for kind, arg in ops:
            if kind == "sample":
                clock.advance(1.0)
                for (check, zone), value in arg.items():
                    for store in (inc_store, full_store):
                        store.record("health_check_up", value, {"check": check, "zone": zone})
                await incremental.evaluate_changed({"health_check_up": set(arg)})
                await full.evaluate(["health_check_up"])
            elif kind == "wait":
                clock.advance(arg)
                await incremental.evaluate(None)  # the tick
                await full.evaluate(None)
            else:
                incremental.add_rule(variant(arg))
                full.add_rule(variant(arg))
                await incremental.evaluate_changed({}, ["all"])
                await full.evaluate(["health_check_up"])
            assert sorted(_drain(inc_events)) == sorted(_drain(full_events))
            assert _instances(incremental) == _instances(full)
            for view in incremental.alerts():
                assert view.fingerprint == fingerprint(view.labels)
            for memo in incremental._fingerprints.values():
                assert memo.rule is next(r for r in incremental.rules() if r.id == memo.rule.id)
                for series, fp in memo.items():
                    assert fp == fingerprint(alert_labels(memo.rule, series))

    with patch.object(SeriesFingerprints, "oversized", lambda self, series: True):
        trio.run(run)  # pruned at every full round


_EVERY = {"labels": {}, "window": "1m", "duration": "0s"}


async def test_results_within_the_batching_window_take_one_round(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    """A result after a quiet spell is evaluated at once; the results arriving within the
    window after that round (checks spread over the second) wait for one round together."""
    h = Harness([_rule(condition={**_rule().condition.model_dump(), **_EVERY})], batch=0.025)
    await nursery.start(h.actor.run)
    await trio.sleep(0.3)  # between ticks
    rounds = h.actor.evaluations  # one rule: one step a round
    h.store.record("health_check_up", 1, {"check": "url-0"})
    await trio.sleep(0.001)
    assert h.actor.evaluations - rounds == 1
    for i in range(1, 21):  # one result a millisecond: 20 within the window
        h.store.record("health_check_up", 1, {"check": f"url-{i}"})
        await trio.sleep(0.001)
    await trio.sleep(0.05)
    assert trio.current_time() < 1.0  # no tick in between
    assert h.actor.evaluations - rounds == 2


async def test_a_failing_result_pages_within_the_batching_window(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    """Alone, at once; right after a round, by the end of the window that round opened."""
    h = Harness(
        [_rule(condition={**_rule().condition.model_dump(), **_EVERY})], batch=0.025, max_busy=1.0
    )
    await nursery.start(h.actor.run)
    await trio.sleep(0.3)
    began = trio.current_time()
    h.store.record("health_check_up", 0, {"check": "a"})
    assert dict((await h.next(timeout=0.5)).alert.labels)["check"] == "a"
    assert trio.current_time() == began  # no round before it: evaluated at once
    await trio.sleep(0.005)
    h.store.record("health_check_up", 0, {"check": "b"})
    assert dict((await h.next(timeout=0.5)).alert.labels)["check"] == "b"
    assert trio.current_time() <= began + 0.025 + 0.001


async def test_a_coalesced_round_dates_pending_from_the_samples(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    """`duration` counts from the sample's own time, not from the (later) round's."""
    cond = {**_rule().condition.model_dump(), **_EVERY, "duration": "5s"}
    h = Harness([_rule(condition=cond)], batch=0.025)
    await nursery.start(h.actor.run)
    await trio.sleep(0.3)
    h.store.record("health_check_up", 1, {"check": "a"})  # a round at once: the window opens
    await trio.sleep(0.005)
    recorded_at = h.clock.now()
    h.store.record("health_check_up", 0, {"check": "b"})
    await trio.sleep(0.05)  # the coalesced round ran (at the window's end)
    (view,) = h.actor.alerts()
    assert view.state == "pending"
    assert view.active_since == recorded_at
    event = await h.next(timeout=7)
    assert event.alert.starts_at == recorded_at


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(
            st.tuples(
                st.sampled_from(_CHECKS),
                st.sampled_from([0.0, 0.5, 1.0]),
                st.integers(min_value=0, max_value=24),  # ms into the window
            ),
            min_size=1,
            unique_by=lambda sample: sample[0],  # a check reports once a window
        ),
        max_size=10,
    )
)
def test_batched_rounds_alert_as_a_round_per_sample(
    windows: list[list[tuple[str, float, int]]],
) -> None:
    """Fed the same samples, one round per window (at its end, the samples dated by `at`) emits
    the same events and holds the same instances, with the same `active_since`, as one round
    per sample at the sample's time: the rules of `test_incremental_rounds_alert_as_full_rounds`
    (no `duration`: with one, the round's time decides when pending turns firing, later by at
    most the window), but for the one merging series: its evaluation fails when two of its
    series hold in one round (`DuplicateLabelset`), so whether it fired first depends on the
    rounds, as it did before batching under a flood of samples."""
    rules = [rule for rule in _equivalence_rules() if rule.id != "fleet"]

    async def run() -> None:
        clock = FixedClock()
        sides = []
        for _ in range(2):
            store = MetricStore(clock=clock)
            store.declare("health_check_up", "gauge", "Check up.", ("check",))
            send, receive = trio.open_memory_channel[AlertEvent](1000)
            actor = RulesActor(rules=rules, store=store, sink=send, clock=clock)
            sides.append((store, actor, receive))
        (one_store, one, one_events), (batch_store, batched, batch_events) = sides
        await one.evaluate(None)
        await batched.evaluate(None)
        for window in windows:
            clock.advance(1.0)
            at: dict[tuple[str, ...], float] = {}
            elapsed = 0.0
            for check, value, ms in sorted(window, key=lambda sample: sample[2]):
                clock.advance(ms / 1000 - elapsed)
                elapsed = ms / 1000
                one_store.record("health_check_up", value, {"check": check})
                batch_store.record("health_check_up", value, {"check": check})
                await one.evaluate_changed({"health_check_up": {(check,)}})
                at[(check,)] = clock.now()
            clock.advance(0.025 - elapsed)
            await batched.evaluate_changed({"health_check_up": set(at)}, at={"health_check_up": at})
            assert sorted(_dated(one_events)) == sorted(_dated(batch_events))
            assert _instances(one) == _instances(batched)

    trio.run(run)


def _dated(receive: trio.MemoryReceiveChannel[AlertEvent]) -> list[tuple[str, str, str, float]]:
    out: list[tuple[str, str, str, float]] = []
    while True:
        try:
            event = receive.receive_nowait()
        except trio.WouldBlock:
            return out
        alert = event.alert
        out.append((event.rule_id, alert.fingerprint, str(alert.status), alert.starts_at))

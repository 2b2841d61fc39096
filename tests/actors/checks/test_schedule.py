"""Lateness: the process measures how late it runs its checks, says when it cannot keep up, and
never reports a target failing for a timeout the monitor caused."""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.checks.actor import CheckActor
from actors.checks.logic import Observation
from actors.checks.schedule import GRACE_LOOKBACK, LATE, WINDOW, Lateness
from actors.clock import FixedClock, VirtualClock
from actors.models import CheckStatus
from actors.state import HealthState
from actors.telemetry.store import MetricStore
from tests.actors.recorder import Recorder

from .conftest import make_config


def test_declares_and_records_lateness_and_skips() -> None:
    recorder = Recorder()
    lateness = Lateness(recorder=recorder)
    assert recorder.declared == {
        "check_lateness_seconds": "histogram",
        "check_runs_skipped_total": "counter",
        "check_overloaded": "gauge",
    }
    lateness.ran(0.002, 10.0)
    lateness.ran(-0.001, 10.1)  # woke a hair early: on time
    lateness.skipped(3, "overrun", 10.2)
    lateness.skipped(0, "overrun", 10.3)
    assert recorder.values("check_lateness_seconds") == [(0.002, {}), (0.0, {})]
    assert recorder.values("check_runs_skipped_total") == [(3.0, {"reason": "overrun"})]
    assert recorder.values("check_overloaded") == [(0.0, {})]


def test_lateness_goes_into_the_metric_store_s_histogram() -> None:
    """Into a `MetricStore` (bound once) as into any recorder: every run's lateness, a run
    early counted as on time; no series before the first run."""
    clock = FixedClock()
    store = MetricStore(clock=clock)
    lateness = Lateness(recorder=store)
    assert store.handle("check_lateness_seconds").snapshot() == []
    lateness.ran(0.002, 10.0)
    lateness.ran(-0.001, 10.1)
    lateness.ran(0.7, 10.2)
    (series,) = store.handle("check_lateness_seconds").snapshot()
    assert series.count == 3
    assert series.sum == pytest.approx(0.702)
    assert series.buckets[0] == 2  # <= 5 ms
    assert series.max == 0.7


def test_says_when_it_cannot_keep_up_and_when_it_does_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = Recorder()
    changes: list[str | None] = []
    lateness = Lateness(recorder=recorder, on_change=changes.append)
    # 100 runs a second, 5 of them late: within the budget.
    for second in range(WINDOW + 2):
        for i in range(100):
            lateness.ran(LATE + 0.1 if i < 5 else 0.01, second + i / 100)
    assert changes == []
    assert lateness.overload is None
    # A fifth of them late for a few seconds: overloaded, said once, with the figures.
    with caplog.at_level(logging.INFO, logger="actors.checks"):
        for second in range(WINDOW + 2, WINDOW + 6):
            for i in range(100):
                lateness.ran(2.5 if i < 20 else 0.01, second + i / 100)
        assert lateness.overload is not None
        assert lateness.overload.startswith("overloaded: ")
        assert "started more than 0.5 s late (worst 2.50 s)" in lateness.overload
        assert changes
        assert changes[-1] == lateness.overload
        assert all(change is not None for change in changes)
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "checks cannot keep up: overloaded" in warnings[0].getMessage()
        # On time again: once the late seconds left the window, it keeps up, said once.
        for second in range(WINDOW + 6, 2 * WINDOW + 8):
            for i in range(100):
                lateness.ran(0.01, second + i / 100)
    assert lateness.overload is None
    assert changes[-1] is None
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.INFO] == [
        "checks keep up again"
    ]
    assert [v for v, _ in recorder.values("check_overloaded")] == [0.0, 1.0, 0.0]


def test_the_first_round_is_not_judged() -> None:
    recorder = Recorder()
    lateness = Lateness(recorder=recorder)
    for i in range(1000):  # a thousand checks' first runs, all late
        lateness.ran(1.5, 5.0 + i / 1000, first=True)
    lateness.ran(0.01, 6.5)
    assert lateness.overload is None
    assert len(recorder.values("check_lateness_seconds")) == 1001
    assert lateness.worst(5.0, 6.0) == 1.5


def test_a_withheld_timeout_is_overload() -> None:
    changes: list[str | None] = []
    lateness = Lateness(on_change=changes.append)
    lateness.ran(0.01, 5.0)
    lateness.skipped(1, "late", 5.5)
    lateness.ran(0.01, 6.0)
    assert lateness.overload is not None
    assert lateness.overload.endswith("; 1 timed out because of it, not reported")


def test_a_timeout_is_the_monitors_when_the_loop_was_late_meanwhile() -> None:
    lateness = Lateness()
    lateness.ran(0.05, 100.2)
    # A healthy loop: the timeout is the target's.
    assert not lateness.monitor_was_late(start=100.0, now=101.0, fired_late=0.001, timeout=1.0)
    # A check started 0.4 s late while the probe waited: the monitor's.
    lateness.ran(0.4, 100.6)
    assert lateness.monitor_was_late(start=100.0, now=101.0, fired_late=0.001, timeout=1.0)
    # ... but not for a probe that started after it (seconds after).
    assert not lateness.monitor_was_late(start=102.0, now=103.0, fired_late=0.0, timeout=1.0)
    # The timeout itself fired late (a stall): the monitor's.
    assert lateness.monitor_was_late(start=102.0, now=103.3, fired_late=0.3, timeout=1.0)
    # A long timeout tolerates a short stall.
    assert not lateness.monitor_was_late(start=100.0, now=110.0, fired_late=0.0, timeout=10.0)
    # History older than HISTORY seconds is forgotten, also when its slot is reused.
    lateness.ran(0.0, 164.5)
    assert lateness.worst(100.0, 165.0) == 0.0


class _Hangs:
    """Never answers; counts its runs."""

    def __init__(self) -> None:
        self.runs = 0

    async def probe(self) -> Observation:
        self.runs += 1
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        pass


def _actor(health: HealthState, lateness: Lateness, probe: _Hangs) -> CheckActor:
    config = make_config(name="target", kind="self", interval="10s", timeout="2s")
    return CheckActor(
        config=config, probe=probe, health=health, clock=VirtualClock(), schedule=lateness
    )


async def test_a_timeout_while_the_monitor_was_late_is_not_reported(
    autojump_clock: trio.testing.MockClock,
) -> None:
    recorder = Recorder()
    lateness = Lateness(recorder=recorder)
    health = HealthState(checks={"target": True}, clock=VirtualClock())
    probe = _Hangs()
    actor = _actor(health, lateness, probe)
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        while probe.runs < 1:
            await trio.sleep(0.01)
        # Another check starts 0.5 s late while this probe waits: the loop was behind.
        lateness.ran(0.5, trio.current_time())
        while not recorder.values("check_runs_skipped_total"):
            await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert health.current("target") is None
    assert actor.statistics().timeouts == 0
    assert recorder.values("check_runs_skipped_total") == [(1.0, {"reason": "late"})]


async def test_a_timeout_on_time_is_reported(autojump_clock: trio.testing.MockClock) -> None:
    lateness = Lateness()
    health = HealthState(checks={"target": True}, clock=VirtualClock())
    actor = _actor(health, lateness, _Hangs())
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        while health.current("target") is None:
            await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    result = health.current("target")
    assert result is not None
    assert result.status is CheckStatus.FAIL
    assert result.message == "timed out after 2s"


class _LaggingClock(VirtualClock):
    """The loop's clock plus `lag`: a test moves it to play a stalled event loop."""

    def __init__(self) -> None:
        super().__init__()
        self.lag = 0.0

    def monotonic(self) -> float:
        return super().monotonic() + self.lag


async def test_overruns_are_counted_as_skipped(autojump_clock: trio.testing.MockClock) -> None:
    recorder = Recorder()
    lateness = Lateness(recorder=recorder)
    clock = _LaggingClock()
    config = make_config(name="stalled", kind="self", interval="1s", timeout="1s")

    class _Stalls:
        async def probe(self) -> Observation:
            clock.lag += 3.5  # the loop stalls 3.5 s during this run
            return Observation.ok("ok")

        async def aclose(self) -> None:
            pass

    health = HealthState(clock=clock)
    actor = CheckActor(
        config=config, probe=_Stalls(), health=health, clock=clock, schedule=lateness
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        while not recorder.values("check_runs_skipped_total"):
            await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    # A run that ended 3.5 s after it started on a 1 s interval missed 3 slots.
    assert recorder.values("check_runs_skipped_total")[0] == (3.0, {"reason": "overrun"})


def test_grace_is_the_recent_lateness_at_most_the_timeout() -> None:
    lateness = Lateness()
    assert lateness.grace(50.0, 1.0) == 0.0
    lateness.ran(0.3, 50.0)
    assert lateness.grace(51.0, 1.0) == pytest.approx(0.3)
    lateness.ran(4.0, 51.5)
    assert lateness.grace(52.0, 1.0) == 1.0
    assert lateness.grace(60.0, 1.0) == 0.0  # older than the look-back
    # Lateness within the grace a probe was given is not held against the target's timeout.
    assert not lateness.monitor_was_late(
        start=51.0, now=53.0, fired_late=0.0, timeout=2.0, grace=4.0
    )


async def test_a_probe_gets_more_time_while_the_monitor_runs_late(
    autojump_clock: trio.testing.MockClock,
) -> None:
    lateness = Lateness()
    health = HealthState(checks={"target": True}, clock=VirtualClock())

    class _Slow:
        async def probe(self) -> Observation:
            await trio.sleep(2.5)  # its timeout is 2 s
            return Observation.ok("answered")

        async def aclose(self) -> None:
            pass

    config = make_config(name="target", kind="self", interval="10s", timeout="2s")
    actor = CheckActor(
        config=config, probe=_Slow(), health=health, clock=VirtualClock(), schedule=lateness
    )
    lateness.ran(1.0, trio.current_time())  # the loop ran a second late just now
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        while health.current("target") is None:
            await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    result = health.current("target")
    assert result is not None
    assert result.status is CheckStatus.PASS


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.booleans(),  # a run (True) or a grace asked (False)
            st.floats(min_value=0.0, max_value=0.9),  # time advanced before it
            st.floats(min_value=-0.1, max_value=3.0),  # the run's lateness
        ),
        max_size=60,
    )
)
def test_grace_kept_up_to_date_equals_the_look_back(
    steps: list[tuple[bool, float, float]],
) -> None:
    """`grace` keeps its look-back as the runs come; it must equal the worst of the last
    `GRACE_LOOKBACK` seconds computed afresh, however runs and graces interleave."""
    lateness = Lateness()
    now = 100.0
    for is_run, advance, late in steps:
        now += advance
        if is_run:
            lateness.ran(late, now)
        else:
            expected = min(5.0, lateness.worst(now - GRACE_LOOKBACK, now))
            assert lateness.grace(now, 5.0) == expected

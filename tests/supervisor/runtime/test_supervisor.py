"""Supervisor semantics on trio, deterministic under the autojump clock."""

from __future__ import annotations

import itertools
import logging
import math
import random

import anyio
import anyio.abc
import pytest
import trio
import trio.testing

from supervisor.runtime import (
    AutoShutdown,
    Backoff,
    ChildNotFoundError,
    ChildSpec,
    ChildStartError,
    ChildState,
    DuplicateChildError,
    EventKind,
    NotSupervisedError,
    Restart,
    RestartIntensityExceeded,
    StartTimeoutError,
    Strategy,
    Supervisor,
    SupervisorEvent,
    SupervisorStateError,
    current_child,
)
from tests.supervisor.passes import Passes

from ._support import Actor, Boom

NO_BACKOFF = Backoff.none()


def states(sup: Supervisor) -> dict[str, ChildState]:
    return {info.id: info.state for info in sup.which_children()}


def make(log: list[str], *names: str, **plans: list[str | tuple[str, float]]) -> dict[str, Actor]:
    return {name: Actor(name, log, plans.get(name, [])) for name in names}


# -- strategies ------------------------------------------------------------------------------------


async def test_one_for_one_restarts_only_the_failed_child(autojump_clock: object) -> None:
    log: list[str] = []
    actors = make(log, "a", "b", "c", b=[("crash", 1.0)])
    sup = Supervisor([ChildSpec(n, a) for n, a in actors.items()], intensity=5, backoff=NO_BACKOFF)
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await trio.sleep(2)
        assert [a.incarnations for a in actors.values()] == [1, 2, 1]
        assert states(sup) == dict.fromkeys("abc", ChildState.RUNNING)
        info = {i.id: i for i in sup.which_children()}
        assert (info["b"].restarts, info["b"].failures, info["b"].starts) == (1, 1, 2)
        assert info["b"].last_error == "Boom: b crashed"
        assert (info["a"].restarts, info["a"].failures) == (0, 0)
        await sup.stop()
    assert log[:6] == ["a:begin", "a:up", "b:begin", "b:up", "c:begin", "c:up"]
    assert log[6:9] == ["b:crash", "b:begin", "b:up"]


async def test_one_for_all_stops_all_in_reverse_then_starts_all_in_order(
    autojump_clock: object,
) -> None:
    log: list[str] = []
    actors = make(log, "a", "b", "c", b=[("crash", 1.0)])
    sup = Supervisor(
        [ChildSpec(n, a) for n, a in actors.items()],
        strategy=Strategy.ONE_FOR_ALL,
        intensity=5,
        backoff=NO_BACKOFF,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await trio.sleep(2)
        await sup.stop()
    assert log[6:] == [
        "b:crash",
        "c:cancelled",
        "a:cancelled",
        "a:begin",
        "a:up",
        "b:begin",
        "b:up",
        "c:begin",
        "c:up",
        "c:cancelled",
        "b:cancelled",
        "a:cancelled",
    ]
    assert {i.id: i.restarts for i in sup.which_children()} == {"a": 1, "b": 1, "c": 1}


async def test_rest_for_one_restarts_the_failed_child_and_those_after_it(
    autojump_clock: object,
) -> None:
    log: list[str] = []
    actors = make(log, "a", "b", "c", b=[("crash", 1.0)])
    sup = Supervisor(
        [ChildSpec(n, a) for n, a in actors.items()],
        strategy=Strategy.REST_FOR_ONE,
        intensity=5,
        backoff=NO_BACKOFF,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await trio.sleep(2)
        assert [a.incarnations for a in actors.values()] == [1, 2, 2]
        await sup.stop()
    assert log[6:12] == ["b:crash", "c:cancelled", "b:begin", "b:up", "c:begin", "c:up"]


async def test_temporary_sibling_is_not_restarted_by_one_for_all(autojump_clock: object) -> None:
    log: list[str] = []
    actors = make(log, "a", "t", "b", b=[("crash", 1.0)])
    sup = Supervisor(
        [
            ChildSpec("a", actors["a"]),
            ChildSpec("t", actors["t"], restart=Restart.TEMPORARY),
            ChildSpec("b", actors["b"]),
        ],
        strategy=Strategy.ONE_FOR_ALL,
        intensity=5,
        backoff=NO_BACKOFF,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await trio.sleep(2)
        assert states(sup) == {
            "a": ChildState.RUNNING,
            "t": ChildState.STOPPED,
            "b": ChildState.RUNNING,
        }
        assert actors["t"].incarnations == 1
        await sup.stop()


# -- restart types -----------------------------------------------------------------------------


async def test_restart_types(autojump_clock: object) -> None:
    log: list[str] = []
    actors = make(
        log,
        "perm",
        "trans_ret",
        "trans_crash",
        "temp",
        perm=[("return", 1.0)],
        trans_ret=[("return", 1.0)],
        trans_crash=[("crash", 1.0)],
        temp=[("crash", 1.0)],
    )
    sup = Supervisor(
        [
            ChildSpec("perm", actors["perm"]),
            ChildSpec("trans_ret", actors["trans_ret"], restart=Restart.TRANSIENT),
            ChildSpec("trans_crash", actors["trans_crash"], restart=Restart.TRANSIENT),
            ChildSpec("temp", actors["temp"], restart=Restart.TEMPORARY),
        ],
        intensity=2,
        backoff=NO_BACKOFF,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await trio.sleep(5)
        assert states(sup) == {
            "perm": ChildState.RUNNING,
            "trans_ret": ChildState.STOPPED,
            "trans_crash": ChildState.RUNNING,
            "temp": ChildState.FAILED,
        }
        assert {n: a.incarnations for n, a in actors.items()} == {
            "perm": 2,
            "trans_ret": 1,
            "trans_crash": 2,
            "temp": 1,
        }
        # Exactly two restarts were counted (temporary and transient-normal are not), so the
        # intensity of 2 is not exceeded: the supervisor still runs.
        assert sup.statistics().restarts_in_period == 2
        assert sup.running
        await sup.stop()


async def test_temporary_crash_does_not_count_toward_intensity(autojump_clock: object) -> None:
    log: list[str] = []
    temp = Actor("temp", log, [("crash", 1.0)])
    sup = Supervisor([ChildSpec("temp", temp, restart=Restart.TEMPORARY)], intensity=0)
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await trio.sleep(3)
        assert sup.running
        assert states(sup) == {"temp": ChildState.FAILED}
        await sup.stop()


# -- intensity -----------------------------------------------------------------------------------


async def test_intensity_stops_children_in_reverse_and_raises(autojump_clock: object) -> None:
    log: list[str] = []
    actors = make(log, "a", "b", "c", b=[("crash", 1.0)] * 10)
    sup = Supervisor(
        [ChildSpec(n, a) for n, a in actors.items()],
        name="root",
        intensity=2,
        period=10.0,
        backoff=NO_BACKOFF,
    )
    with pytest.raises(RestartIntensityExceeded) as caught:
        await sup.run()
    assert trio.current_time() == 3.0  # third crash within 10 s
    assert caught.value.supervisor == "root"
    assert caught.value.child == "b"
    assert isinstance(caught.value.__cause__, Boom)
    assert log[-2:] == ["c:cancelled", "a:cancelled"]
    assert states(sup) == {"a": ChildState.STOPPED, "b": ChildState.FAILED, "c": ChildState.STOPPED}
    assert not sup.running


async def test_restarts_spread_beyond_the_period_do_not_exceed(autojump_clock: object) -> None:
    log: list[str] = []
    crasher = Actor("x", log, [("crash", 6.0)] * 5)
    sup = Supervisor([ChildSpec("x", crasher)], intensity=1, period=5.0, backoff=NO_BACKOFF)
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await trio.sleep(31)
        assert crasher.incarnations == 6
        assert sup.running
        await sup.stop()


async def test_intensity_escalates_through_two_levels(autojump_clock: object) -> None:
    log: list[str] = []
    leaf = Actor("leaf", log, [("crash", 1.0)] * 100)
    sibling = Actor("sibling", log)
    mid = Supervisor(
        [ChildSpec("leaf", leaf)], name="mid", intensity=1, period=10.0, backoff=NO_BACKOFF
    )
    root = Supervisor(
        [ChildSpec("sibling", sibling), ChildSpec("mid", mid.run)],
        name="root",
        intensity=1,
        period=100.0,
        backoff=NO_BACKOFF,
    )
    with pytest.raises(RestartIntensityExceeded) as caught:
        await root.run()
    # mid fails after 2 leaf crashes (t=2), root restarts mid once, mid fails again (t=4),
    # the second restart of mid exceeds root's intensity of 1.
    assert trio.current_time() == 4.0
    assert leaf.incarnations == 4
    assert caught.value.supervisor == "root"
    assert caught.value.child == "mid"
    cause = caught.value.__cause__
    assert isinstance(cause, RestartIntensityExceeded)
    assert cause.supervisor == "mid"
    assert isinstance(cause.__cause__, Boom)
    assert log[-1] == "sibling:cancelled"
    info = {i.id: i for i in root.which_children()}
    assert info["mid"].failures == 2
    assert info["mid"].supervisor is not None
    assert info["mid"].supervisor.name == "mid"

    # A failed supervisor can run again.
    leaf.plan.clear()
    async with trio.open_nursery() as nursery:
        await nursery.start(root.run)
        assert states(root) == {"sibling": ChildState.RUNNING, "mid": ChildState.RUNNING}
        assert states(mid) == {"leaf": ChildState.RUNNING}
        await root.stop()


# -- start and stop ------------------------------------------------------------------------------


async def test_ordered_start_waits_for_started_and_stop_is_reversed(
    autojump_clock: object,
) -> None:
    log: list[str] = []
    actors = {n: Actor(n, log, start_delay=1.0) for n in "abc"}
    sup = Supervisor([ChildSpec(n, a) for n, a in actors.items()])
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        assert trio.current_time() == 3.0  # each took 1 s to report started, one after another
        assert log == ["a:begin", "a:up", "b:begin", "b:up", "c:begin", "c:up"]
        await sup.stop()
    assert log[6:] == ["c:cancelled", "b:cancelled", "a:cancelled"]
    assert [a.up_times[0] for a in actors.values()] == [1.0, 2.0, 3.0]


async def test_states_during_start_and_backoff(autojump_clock: object) -> None:
    log: list[str] = []
    slow = Actor("slow", log, [("crash", 1.0)], start_delay=1.0)
    sup = Supervisor(
        [ChildSpec("slow", slow)],
        backoff=Backoff(initial=5.0, jitter=0.0),
        intensity=5,
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sup.run)
        await trio.sleep(0.5)
        assert states(sup) == {"slow": ChildState.STARTING}
        await trio.sleep(1.0)
        assert states(sup) == {"slow": ChildState.RUNNING}
        await trio.sleep(1.0)  # crashed at t=2; restarting at t=7
        assert states(sup) == {"slow": ChildState.RESTARTING}
        assert sup.which_children()[0].since == 2.0
        await trio.sleep(5.0)  # t=7.5: launched, reports started at t=8
        assert states(sup) == {"slow": ChildState.STARTING}
        await trio.sleep(1.0)
        assert states(sup) == {"slow": ChildState.RUNNING}
        await sup.stop()
    assert states(sup) == {"slow": ChildState.STOPPED}


class CrashRightAfterStarted:
    """Calls ``task_status.started()`` and raises in the same step (no checkpoint between).

    It does so on its first `crashes` incarnations, then runs until cancelled; `running` is set
    when the incarnation that stays up has started. Log entries: ``name:up``, ``name:crash``,
    ``name:cancelled``.
    """

    def __init__(self, name: str, log: list[str], crashes: int) -> None:
        self.name = name
        self.log = log
        self.crashes = crashes
        self.incarnations = 0
        self.up_times: list[float] = []
        self.running = trio.Event()

    async def __call__(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        self.incarnations += 1
        task_status.started()
        self.up_times.append(trio.current_time())
        self.log.append(f"{self.name}:up")
        if self.incarnations <= self.crashes:
            self.log.append(f"{self.name}:crash")
            raise Boom(f"{self.name} crashed right after it started")
        self.running.set()
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            self.log.append(f"{self.name}:cancelled")
            raise


ONE_SECOND = Backoff(initial=1.0, base=1.0, factor=1.0, maximum=1.0, jitter=0.0)


@pytest.mark.parametrize(
    ("strategy", "restarted_with_b"),
    [
        (Strategy.ONE_FOR_ONE, ""),
        (Strategy.ONE_FOR_ALL, "ac"),
        (Strategy.REST_FOR_ONE, "c"),
    ],
)
async def test_start_returns_once_each_child_started_although_one_crashes_right_after(
    autojump_clock: object, strategy: Strategy, restarted_with_b: str
) -> None:
    log: list[str] = []
    a, c = Actor("a", log), Actor("c", log)
    b = CrashRightAfterStarted("b", log, crashes=3)
    # The first start of each, then b's three restarts, each with the siblings it restarts.
    expected_starts = 3 + 3 * (1 + len(restarted_with_b))
    starts: list[tuple[str | None, float]] = []
    all_started = trio.Event()

    def listener(event: SupervisorEvent) -> None:
        if event.kind is EventKind.CHILD_STARTED:
            starts.append((event.child, event.time))
            if len(starts) == expected_starts:
                all_started.set()

    sup = Supervisor(
        [ChildSpec("a", a), ChildSpec("b", b), ChildSpec("c", c)],
        strategy=strategy,
        intensity=10,
        period=100.0,
        backoff=ONE_SECOND,
        listener=listener,
    )
    assert set(Strategy) == {Strategy.ONE_FOR_ONE, Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE}
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        # Every child called started() once: start returns at once, c was not held back by b.
        assert trio.current_time() == 0.0
        assert log[:6] == ["a:begin", "a:up", "b:up", "b:crash", "c:begin", "c:up"]
        assert c.up_times == [0.0]
        # b is restarted by policy (1 s backoff each time), with the siblings its strategy says.
        with trio.fail_after(10):
            await all_started.wait()
        assert b.running.is_set()
        assert b.up_times == [0.0, 1.0, 2.0, 3.0]
        assert trio.current_time() == 3.0
        expected = {name: 4 if name in restarted_with_b else 1 for name in "ac"}
        assert {"a": a.incarnations, "c": c.incarnations} == expected
        assert states(sup) == dict.fromkeys("abc", ChildState.RUNNING)
        assert {i.id: i.failures for i in sup.which_children()} == {"a": 0, "b": 3, "c": 0}
        await sup.stop()


async def test_crash_loop_in_a_nested_supervisor_does_not_hold_back_its_parents_children(
    autojump_clock: object,
) -> None:
    log: list[str] = []
    b = CrashRightAfterStarted("b", log, crashes=3)
    late = Actor("late", log)
    events: list[EventKind] = []
    inner = Supervisor(
        [ChildSpec("a", Actor("a", log)), ChildSpec("b", b)],
        name="inner",
        listener=lambda event: events.append(event.kind),
        intensity=10,
        period=100.0,
        backoff=ONE_SECOND,
    )
    root = Supervisor([ChildSpec.supervisor(inner), ChildSpec("late", late)], name="root")
    async with trio.open_nursery() as nursery:
        await nursery.start(root.run)
        assert trio.current_time() == 0.0
        assert late.up_times == [0.0]
        assert events.count(EventKind.SUPERVISOR_STARTED) == 1
        with trio.fail_after(10):
            await b.running.wait()
        # inner's restarts of b after its start are ordinary restarts: root saw no failure.
        assert events.count(EventKind.SUPERVISOR_STARTED) == 1
        assert {i.id: i.restarts for i in root.which_children()} == {"inner": 0, "late": 0}
        assert states(root) == {"inner": ChildState.RUNNING, "late": ChildState.RUNNING}
        await root.stop()


async def test_tight_crash_loop_right_after_started_does_not_hold_start(
    autojump_clock: object,
) -> None:
    log: list[str] = []
    looper = CrashRightAfterStarted("loop", log, crashes=10**9)
    sup = Supervisor(
        [ChildSpec("loop", looper), ChildSpec("after", Actor("after", log))],
        intensity=500,
        period=100.0,
        backoff=NO_BACKOFF,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        assert "after:up" in log
        await sup.stop()
    assert trio.current_time() == 0.0
    assert looper.incarnations < 500
    assert states(sup) == {"loop": ChildState.STOPPED, "after": ChildState.STOPPED}


@pytest.mark.parametrize("strategy", list(Strategy))
async def test_child_that_never_starts_fails_the_supervisor_start(
    autojump_clock: object, strategy: Strategy
) -> None:
    log: list[str] = []
    a, c = Actor("a", log), Actor("c", log)
    b = Actor("b", log, ["crash_before_start"] * 10)
    sup = Supervisor(
        [ChildSpec("a", a), ChildSpec("b", b), ChildSpec("c", c)],
        strategy=strategy,
        intensity=2,
        period=100.0,
        backoff=ONE_SECOND,
    )
    async with trio.open_nursery() as nursery:
        with pytest.raises(RestartIntensityExceeded) as caught:
            await nursery.start(sup.run)
    assert caught.value.child == "b"
    assert trio.current_time() == 2.0  # retried twice, 1 s apart, then intensity exceeded
    assert b.incarnations == 3
    assert c.incarnations == 0  # the children after a start failure wait for it
    assert states(sup) == {"a": ChildState.STOPPED, "b": ChildState.FAILED, "c": ChildState.STOPPED}


async def test_restart_that_fails_before_started_after_the_start_holds_only_its_followers(
    autojump_clock: object,
) -> None:
    log: list[str] = []
    a = Actor("a", log, [("crash", 1.0), "crash_before_start", "crash_before_start"])
    b = Actor("b", log)
    b_restarted = trio.Event()

    def listener(event: SupervisorEvent) -> None:
        if event.kind is EventKind.CHILD_STARTED and event.child == "b" and b.incarnations == 2:
            b_restarted.set()

    sup = Supervisor(
        [ChildSpec("a", a), ChildSpec("b", b)],
        strategy=Strategy.REST_FOR_ONE,
        intensity=10,
        period=100.0,
        backoff=ONE_SECOND,
        listener=listener,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        assert trio.current_time() == 0.0
        with trio.fail_after(10):
            await b_restarted.wait()
        # a crashed at 1, failed to start at 2 and 3 (b waits, restarted with it), up at 4.
        assert a.up_times == [0.0, 4.0]
        assert b.up_times == [0.0, 4.0]
        await sup.stop()


async def test_child_that_fails_before_started_is_retried_and_blocks_later_children(
    autojump_clock: object,
) -> None:
    log: list[str] = []
    a = Actor("a", log, ["crash_before_start", "crash_before_start"])
    b = Actor("b", log)
    sup = Supervisor(
        [ChildSpec("a", a), ChildSpec("b", b)],
        intensity=5,
        backoff=Backoff(initial=1.0, base=2.0, jitter=0.0),
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        assert trio.current_time() == 3.0  # delays 1 s then 2 s
        assert log == [
            *["a:begin", "a:crash", "a:begin", "a:crash"],
            *["a:begin", "a:up", "b:begin", "b:up"],
        ]
        assert sup.which_children()[0].failures == 2
        await sup.stop()


async def test_transient_child_returning_before_started_does_not_block(
    autojump_clock: object, caplog: pytest.LogCaptureFixture
) -> None:
    log: list[str] = []
    once = Actor("once", log, ["return_before_start"])
    b = Actor("b", log)
    sup = Supervisor(
        [ChildSpec("once", once, restart=Restart.TRANSIENT), ChildSpec("b", b)],
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        assert states(sup) == {"once": ChildState.STOPPED, "b": ChildState.RUNNING}
        await sup.stop()
    assert "without calling task_status.started()" in caplog.text


async def test_start_timeout_counts_as_a_failure(autojump_clock: object) -> None:
    log: list[str] = []
    hung = Actor("hung", log, start_delay=100.0)
    sup = Supervisor(
        [ChildSpec("hung", hung, start_timeout=2.0)],
        intensity=1,
        period=100.0,
        backoff=Backoff(initial=1.0, jitter=0.0),
    )
    with pytest.raises(RestartIntensityExceeded) as caught:
        await sup.run()
    assert trio.current_time() == 5.0  # 2 s, 1 s backoff, 2 s, then intensity exceeded
    assert isinstance(caught.value.__cause__, StartTimeoutError)
    info = sup.which_children()[0]
    assert info.failures == 2
    assert info.last_error is not None
    assert "did not report started within 2 s" in info.last_error
    assert "hung:up" not in log

    other = Supervisor()
    async with trio.open_nursery() as nursery:
        await nursery.start(other.run)
        with pytest.raises(ChildStartError) as start_error:
            await other.start_child(
                ChildSpec("h", Actor("h", log, start_delay=9.0), start_timeout=1.0)
            )
        assert isinstance(start_error.value.__cause__, StartTimeoutError)
        assert trio.current_time() == 6.0
        await other.stop()


async def test_graceful_shutdown_lets_a_trapping_child_finish(autojump_clock: object) -> None:
    log: list[str] = []
    trapper = Actor("t", log, [("trap", 2.0)])
    sup = Supervisor([ChildSpec("t", trapper, shutdown=5.0)])
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await sup.stop()
    assert trio.current_time() == 2.0
    assert log[-2:] == ["t:stop-requested", "t:cleaned"]
    assert states(sup) == {"t": ChildState.STOPPED}


async def test_graceful_shutdown_cancels_after_the_timeout(autojump_clock: object) -> None:
    log: list[str] = []
    trapper = Actor("t", log, [("trap", 10.0)])
    sup = Supervisor([ChildSpec("t", trapper, shutdown=3.0)])
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await sup.stop()
    assert trio.current_time() == 3.0
    assert log[-2:] == ["t:stop-requested", "t:cancelled"]


@pytest.mark.parametrize("shutdown", [0.0, None])
async def test_brutal_shutdown_cancels_at_once(
    autojump_clock: object, shutdown: float | None
) -> None:
    log: list[str] = []
    trapper = Actor("t", log, [("trap", 10.0)])
    sup = Supervisor([ChildSpec("t", trapper, shutdown=shutdown)])
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await sup.stop()
    assert trio.current_time() == 0.0
    assert log[-1] == "t:cancelled"
    assert "t:stop-requested" not in log


async def test_child_that_does_not_trap_is_cancelled_at_once(autojump_clock: object) -> None:
    log: list[str] = []
    sup = Supervisor([ChildSpec("a", Actor("a", log), shutdown=60.0)])
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await sup.stop()
    assert trio.current_time() == 0.0
    assert log[-1] == "a:cancelled"


async def test_nested_supervisor_stops_its_children_in_order_within_their_timeouts(
    autojump_clock: object,
) -> None:
    log: list[str] = []
    inner = Supervisor(
        [
            ChildSpec("x", Actor("x", log, [("trap", 1.0)]), shutdown=5.0),
            ChildSpec("y", Actor("y", log, [("trap", 2.0)]), shutdown=5.0),
        ],
        name="inner",
    )
    outer = Supervisor([ChildSpec("z", Actor("z", log)), ChildSpec.supervisor(inner)], name="outer")
    async with trio.open_nursery() as nursery:
        await nursery.start(outer.run)
        await outer.stop()
    assert trio.current_time() == 3.0
    assert log[6:] == [
        "y:stop-requested",
        "y:cleaned",
        "x:stop-requested",
        "x:cleaned",
        "z:cancelled",
    ]


async def test_cancelling_run_cancels_every_child(autojump_clock: object) -> None:
    log: list[str] = []
    sup = Supervisor([ChildSpec(n, Actor(n, log, [("trap", 1.0)])) for n in "ab"])
    with trio.move_on_after(1.0):
        await sup.run()
    assert sorted(log[-2:]) == ["a:cancelled", "b:cancelled"]
    assert not sup.running


# -- backoff -------------------------------------------------------------------------------------


async def test_backoff_delays_grow_cap_and_reset(autojump_clock: object) -> None:
    log: list[str] = []
    plan: list[str | tuple[str, float]] = ["crash", "crash", "crash", "crash", "crash", "crash"]
    plan += [("crash", 20.0), "crash"]
    crasher = Actor("x", log, plan)
    backoff = Backoff(initial=0.0, base=1.0, factor=2.0, maximum=4.0, jitter=0.0, reset_after=10.0)
    sup = Supervisor([ChildSpec("x", crasher)], intensity=100, period=1.0, backoff=backoff)
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await trio.sleep(60)
        await sup.stop()
    # delays 0, 1, 2, 4, 4, 4; then a 20 s run resets the count: 0, then 1 again.
    assert crasher.up_times[:7] == [0.0, 0.0, 1.0, 3.0, 7.0, 11.0, 15.0]
    assert crasher.up_times[7] == 35.0
    assert crasher.up_times[8] == 36.0


async def test_backoff_jitter_is_deterministic_with_a_seeded_rng(autojump_clock: object) -> None:
    async def up_times(seed: int) -> list[float]:
        crasher = Actor("x", [], ["crash"] * 6)
        backoff = Backoff(initial=1.0, base=1.0, factor=2.0, maximum=8.0, jitter=0.5)
        sup = Supervisor(
            [ChildSpec("x", crasher)],
            intensity=100,
            backoff=backoff,
            rng=random.Random(seed),
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(sup.run)
            await trio.sleep(100)
            await sup.stop()
        return [round(t - crasher.up_times[0], 9) for t in crasher.up_times]

    first, again, other = await up_times(1), await up_times(1), await up_times(2)
    assert first == again
    assert first != other
    delays = [b - a for a, b in itertools.pairwise(first)]
    for delay, nominal in zip(delays, [1, 1, 2, 4, 8, 8], strict=True):
        assert nominal * 0.5 - 1e-9 <= delay <= min(8, nominal * 1.5) + 1e-9


async def test_crash_loop_is_throttled_by_backoff(autojump_clock: object) -> None:
    crasher = Actor("x", [], ["crash"] * 10_000)
    sup = Supervisor(
        [ChildSpec("x", crasher)],
        intensity=1000,
        period=1.0,
        backoff=Backoff(base=0.5, maximum=30.0),
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await trio.sleep(3600)
        await sup.stop()
    # A crash loop without backoff would run millions of times in an hour; with it, ~2 a minute.
    assert crasher.incarnations < 150


# -- dynamic children ---------------------------------------------------------------------------


async def test_dynamic_children(autojump_clock: object) -> None:
    log: list[str] = []
    sup = Supervisor([ChildSpec("a", Actor("a", log))], intensity=5)
    with pytest.raises(SupervisorStateError):
        await sup.start_child(ChildSpec("b", Actor("b", log)))
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)

        slow = Actor("b", log, start_delay=2.0)
        info = await sup.start_child(ChildSpec("b", slow))
        assert trio.current_time() == 2.0  # returned once b reported started
        assert info.state is ChildState.RUNNING
        assert info.starts == 1

        with pytest.raises(DuplicateChildError):
            await sup.start_child(ChildSpec("b", slow))

        with pytest.raises(ChildStartError) as caught:
            await sup.start_child(ChildSpec("c", Actor("c", log, ["crash_before_start"])))
        assert isinstance(caught.value.__cause__, Boom)
        assert [i.id for i in sup.which_children()] == ["a", "b"]

        await sup.terminate_child("b")
        assert states(sup) == {"a": ChildState.RUNNING, "b": ChildState.STOPPED}
        assert log[-1] == "b:cancelled"
        await trio.sleep(10)  # a terminated permanent child is not restarted
        assert states(sup)["b"] is ChildState.STOPPED
        await sup.terminate_child("b")  # idempotent

        info = await sup.restart_child("b")
        assert info.state is ChildState.RUNNING
        assert (info.starts, info.restarts) == (2, 0)

        # restart a running child with a new spec, in place
        replacement = Actor("b2", log)
        info = await sup.restart_child("b", ChildSpec("b", replacement))
        assert replacement.incarnations == 1
        assert info.starts == 3
        with pytest.raises(ValueError):
            await sup.restart_child("b", ChildSpec("other", replacement))

        failing = Actor("b3", log, ["crash_before_start"])
        with pytest.raises(ChildStartError):
            await sup.restart_child("b", ChildSpec("b", failing))
        assert states(sup)["b"] is ChildState.FAILED

        await sup.delete_child("b")
        assert [i.id for i in sup.which_children()] == ["a"]
        with pytest.raises(ChildNotFoundError):
            await sup.terminate_child("b")
        with pytest.raises(ChildNotFoundError):
            await sup.restart_child("b")
        with pytest.raises(ChildNotFoundError):
            await sup.delete_child("b")

        await sup.start_child(ChildSpec("b", Actor("b", log)))  # the id is free again
        assert [i.id for i in sup.which_children()] == ["a", "b"]
        await sup.stop()
    assert log[-2:] == ["b:cancelled", "a:cancelled"]


async def test_start_child_from_a_child_task(autojump_clock: object) -> None:
    log: list[str] = []
    sup: Supervisor

    async def spawner(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await sup.start_child(ChildSpec("spawned", Actor("spawned", log)))
        log.append("spawner:done")
        await trio.sleep_forever()

    sup = Supervisor([ChildSpec("spawner", spawner)])
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await trio.sleep(1)
        assert log == ["spawned:begin", "spawned:up", "spawner:done"]
        await sup.stop()


async def test_dynamic_child_is_supervised_and_terminate_cancels_pending_restart(
    autojump_clock: object,
) -> None:
    log: list[str] = []
    sup = Supervisor(intensity=5, backoff=Backoff(initial=10.0, jitter=0.0))
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await sup.start_child(ChildSpec("x", Actor("x", log, [("crash", 1.0)])))
        await trio.sleep(2)
        assert states(sup) == {"x": ChildState.RESTARTING}
        await sup.terminate_child("x")
        await trio.sleep(20)
        assert states(sup) == {"x": ChildState.STOPPED}
        assert log.count("x:up") == 1
        await sup.stop()


# -- significant children ------------------------------------------------------------------------


async def test_any_significant_exit_stops_the_supervisor(autojump_clock: object) -> None:
    log: list[str] = []
    sup = Supervisor(
        [
            ChildSpec("a", Actor("a", log)),
            ChildSpec(
                "job",
                Actor("job", log, [("return", 2.0)]),
                restart=Restart.TRANSIENT,
                significant=True,
            ),
        ],
        auto_shutdown=AutoShutdown.ANY_SIGNIFICANT,
    )
    await sup.run()  # returns by itself
    assert trio.current_time() == 2.0
    assert log[-1] == "a:cancelled"


async def test_all_significant_waits_for_every_significant_child(autojump_clock: object) -> None:
    log: list[str] = []
    sup = Supervisor(
        [
            ChildSpec(
                "j1",
                Actor("j1", log, [("return", 1.0)]),
                restart=Restart.TRANSIENT,
                significant=True,
            ),
            ChildSpec(
                "j2",
                Actor("j2", log, [("crash", 3.0)]),
                restart=Restart.TEMPORARY,
                significant=True,
            ),
            ChildSpec("a", Actor("a", log)),
        ],
        auto_shutdown=AutoShutdown.ALL_SIGNIFICANT,
    )
    await sup.run()
    assert trio.current_time() == 3.0


async def test_never_auto_shutdown_and_terminate_does_not_trigger(autojump_clock: object) -> None:
    log: list[str] = []
    specs = [
        ChildSpec(
            "j", Actor("j", log, [("return", 1.0)]), restart=Restart.TEMPORARY, significant=True
        ),
        ChildSpec("k", Actor("k", log), restart=Restart.TRANSIENT, significant=True),
    ]
    never = Supervisor(specs[:1])
    async with trio.open_nursery() as nursery:
        await nursery.start(never.run)
        await trio.sleep(5)
        assert never.running
        await never.stop()

    anysig = Supervisor(specs[1:], auto_shutdown=AutoShutdown.ANY_SIGNIFICANT)
    async with trio.open_nursery() as nursery:
        await nursery.start(anysig.run)
        await anysig.terminate_child("k")
        await trio.sleep(5)
        assert anysig.running
        await anysig.stop()


def test_significant_permanent_child_is_rejected() -> None:
    with pytest.raises(ValueError, match="significant"):
        ChildSpec("x", Actor("x", []), significant=True)


# -- introspection and events --------------------------------------------------------------------


async def test_tree_snapshot_walk_statistics_and_events(autojump_clock: object) -> None:
    log: list[str] = []
    events: list[SupervisorEvent] = []
    inner = Supervisor(
        [ChildSpec("leaf", Actor("leaf", log, [("crash", 1.0)]))],
        name="checks",
        intensity=5,
        backoff=NO_BACKOFF,
        listener=events.append,
    )
    root = Supervisor(
        [ChildSpec("web", Actor("web", log)), ChildSpec("checks", inner.run)],
        name="root",
        listener=events.append,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(root.run)
        await trio.sleep(2)
        tree = root.tree()
        stats = root.statistics()
        inner_stats = inner.statistics()
        await root.stop()
    assert tree.running
    assert [path for path, _ in tree.walk()] == ["root/web", "root/checks", "root/checks/leaf"]
    leaf = dict(tree.walk())["root/checks/leaf"]
    assert (leaf.state, leaf.restarts, leaf.failures, leaf.starts) == (ChildState.RUNNING, 1, 1, 2)
    assert leaf.last_error == "Boom: leaf crashed"
    assert leaf.since == 1.0
    with pytest.raises(AttributeError):
        leaf.restarts = 5  # type: ignore[misc]
    assert (stats.children, stats.children_running, stats.restarts_total) == (2, 2, 0)
    assert (inner_stats.restarts_total, inner_stats.failures_total) == (1, 1)
    kinds = [(e.supervisor, e.kind, e.child) for e in events]
    assert kinds[:5] == [
        ("root", EventKind.CHILD_STARTED, "web"),
        ("checks", EventKind.CHILD_STARTED, "leaf"),
        ("checks", EventKind.SUPERVISOR_STARTED, None),
        ("root", EventKind.CHILD_STARTED, "checks"),
        ("root", EventKind.SUPERVISOR_STARTED, None),
    ]
    assert ("checks", EventKind.CHILD_FAILED, "leaf") in kinds
    assert ("checks", EventKind.CHILD_RESTART_SCHEDULED, "leaf") in kinds
    assert kinds[-1] == ("root", EventKind.SUPERVISOR_STOPPED, None)
    failed = next(e for e in events if e.kind is EventKind.CHILD_FAILED)
    assert (failed.error, failed.time) == ("Boom: leaf crashed", 1.0)


async def test_listener_errors_are_logged_not_raised(
    autojump_clock: object, caplog: pytest.LogCaptureFixture
) -> None:
    def bad(event: SupervisorEvent) -> None:
        raise RuntimeError("listener bug")

    sup = Supervisor([ChildSpec("a", Actor("a", []))], listener=bad)
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await sup.stop()
    assert "listener failed" in caplog.text


async def test_crash_is_logged_with_the_child_id_and_never_printed(
    autojump_clock: object,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG, logger="supervisor.runtime")
    sup = Supervisor(
        [ChildSpec("flaky", Actor("flaky", [], [("crash", 1.0)]))],
        name="root",
        intensity=5,
        backoff=NO_BACKOFF,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await trio.sleep(2)
        await sup.stop()
    crash = next(r for r in caplog.records if r.levelno == logging.ERROR)
    assert crash.name == "supervisor.runtime"
    assert "'flaky'" in crash.getMessage()
    assert (crash.__dict__["actor"], crash.__dict__["supervisor"]) == ("flaky", "root")
    assert crash.exc_info is not None
    assert crash.exc_info[0] is Boom
    out, err = capsys.readouterr()
    assert (out, err) == ("", "")


# -- misc contracts ------------------------------------------------------------------------------


async def test_run_twice_concurrently_is_refused(autojump_clock: object) -> None:
    sup = Supervisor([ChildSpec("a", Actor("a", []))])
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        with pytest.raises(SupervisorStateError):
            await sup.run()
        await sup.stop()
    await sup.stop()  # not running: returns at once


async def test_started_twice_is_a_crash(autojump_clock: object) -> None:
    async def twice(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        task_status.started()

    sup = Supervisor([ChildSpec("t", twice, restart=Restart.TEMPORARY)])
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await trio.sleep(1)
        info = sup.which_children()[0]
        assert info.state is ChildState.FAILED
        assert info.last_error is not None
        assert "twice" in info.last_error
        await sup.stop()


async def test_current_child_context(autojump_clock: object) -> None:
    seen: list[tuple[str, str]] = []

    async def probe(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        ctx = current_child()
        seen.append((ctx.supervisor, ctx.id))
        task_status.started()
        await trio.sleep_forever()

    with pytest.raises(NotSupervisedError):
        current_child()
    sup = Supervisor([ChildSpec("p", probe)], name="s")
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await sup.stop()
    assert seen == [("s", "p")]


def test_constructor_validation() -> None:
    actor = Actor("a", [])
    with pytest.raises(DuplicateChildError):
        Supervisor([ChildSpec("a", actor), ChildSpec("a", actor)])
    with pytest.raises(ValueError):
        Supervisor(intensity=-1)
    with pytest.raises(ValueError):
        Supervisor(period=0)
    with pytest.raises(ValueError):
        ChildSpec("", actor)
    with pytest.raises(ValueError):
        ChildSpec("a", actor, shutdown=-1.0)
    sub = Supervisor(name="sub")
    assert ChildSpec("x", sub.run).nested is sub
    spec = ChildSpec.supervisor(sub)
    assert (spec.id, spec.nested, spec.shutdown) == ("sub", sub, math.inf)


async def test_stop_and_calls_are_served_during_a_tight_crash_loop(autojump_clock: object) -> None:
    log: list[str] = []
    looper = Actor("loop", log, ["crash"] * 1_000_000)
    sup = Supervisor(
        [ChildSpec("ok", Actor("ok", log)), ChildSpec("loop", looper)],
        intensity=10**9,
        backoff=NO_BACKOFF,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        for _ in range(50):
            await trio.lowlevel.checkpoint()
        await sup.start_child(ChildSpec("late", Actor("late", log)))
        await sup.stop()
    assert trio.current_time() == 0.0
    assert 1 < looper.incarnations < 1000
    assert states(sup) == dict.fromkeys(["ok", "loop", "late"], ChildState.STOPPED)


async def test_runs_under_an_anyio_task_group_on_trio(autojump_clock: object) -> None:
    log: list[str] = []
    sup = Supervisor([ChildSpec("a", Actor("a", log, [("crash", 1.0)]))], backoff=NO_BACKOFF)
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        await anyio.sleep(2)
        assert sup.which_children()[0].restarts == 1
        await sup.stop()
    assert log[-1] == "a:cancelled"


# -- unordered children (ordered=False) --------------------------------------------------------


async def _passes_to_start_and_stop(n: int, *, ordered: bool) -> tuple[int, int]:
    log: list[str] = []
    children = [ChildSpec(f"c{i}", Actor(f"c{i}", log), shutdown=1.0) for i in range(n)]
    sup = Supervisor(children, ordered=ordered, backoff=NO_BACKOFF)
    passes = Passes()
    trio.lowlevel.add_instrument(passes)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(sup.run)
            started = passes.count
            assert log.count("c0:up") == log.count(f"c{n - 1}:up") == 1
            before_stop = passes.count
            await sup.stop()
            stopped = passes.count - before_stop
    finally:
        trio.lowlevel.remove_instrument(passes)
    assert states(sup) == dict.fromkeys((f"c{i}" for i in range(n)), ChildState.STOPPED)
    return started, stopped


async def test_unordered_children_start_and_stop_in_a_few_scheduler_passes(
    autojump_clock: object,
) -> None:
    # Counted, not timed: an ordered supervisor waits one pass per child to start and to stop.
    start, stop = await _passes_to_start_and_stop(2000, ordered=False)
    assert max(start, stop) <= 5
    ordered_start, ordered_stop = await _passes_to_start_and_stop(200, ordered=True)
    assert min(ordered_start, ordered_stop) >= 200


async def test_unordered_children_are_launched_together(autojump_clock: object) -> None:
    log: list[str] = []
    actors = {n: Actor(n, log, start_delay=1.0) for n in ("a", "b", "c")}
    sup = Supervisor([ChildSpec(n, a) for n, a in actors.items()], ordered=False)
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        # Each takes 1 s to start: together, not one after the other.
        assert trio.current_time() == pytest.approx(1.0)
        assert sorted(log[:3]) == ["a:begin", "b:begin", "c:begin"]
        await sup.stop()


async def test_an_unordered_child_failing_to_start_holds_only_itself(
    autojump_clock: object,
) -> None:
    log: list[str] = []
    bad = Actor("bad", log, ["crash_before_start", "crash_before_start"])
    good = Actor("good", log)
    sup = Supervisor(
        [ChildSpec("bad", bad), ChildSpec("good", good)],
        ordered=False,
        intensity=5,
        backoff=Backoff(initial=1.0, base=1.0, factor=1.0, maximum=1.0, jitter=0.0),
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        # The supervisor reports started once bad came up (third try, 2 s later), but good
        # ran from the first pass.
        assert trio.current_time() == pytest.approx(2.0)
        assert good.up_times == [0.0]
        assert bad.incarnations == 3
        await sup.stop()


async def test_unordered_children_are_asked_to_stop_together(autojump_clock: object) -> None:
    log: list[str] = []
    names = ("a", "b", "c")
    sup = Supervisor(
        [ChildSpec(n, Actor(n, log, [("trap", 1.0)]), shutdown=5.0) for n in names],
        ordered=False,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await sup.stop()
    # Each cleans up for 1 s after its stop request: together, 1 s in all, not 3.
    assert trio.current_time() == pytest.approx(1.0)
    stop_log = [entry for entry in log if not entry.endswith((":begin", ":up"))]
    assert sorted(stop_log[:3]) == ["a:stop-requested", "b:stop-requested", "c:stop-requested"]
    assert states(sup) == dict.fromkeys(names, ChildState.STOPPED)


def test_unordered_children_need_one_for_one() -> None:
    with pytest.raises(ValueError, match="ONE_FOR_ONE"):
        Supervisor([], ordered=False, strategy=Strategy.REST_FOR_ONE)


async def _passes_to_start_and_delete_dynamically(n: int, *, batch: bool) -> tuple[int, int]:
    """Scheduler passes to add `n` children to a running unordered supervisor and to delete
    them again, in one call each (`batch`) or one child at a time."""
    log: list[str] = []
    sup = Supervisor([], ordered=False, backoff=NO_BACKOFF)
    specs = [ChildSpec(f"c{i}", Actor(f"c{i}", log), shutdown=1.0) for i in range(n)]
    passes = Passes()
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        trio.lowlevel.add_instrument(passes)
        try:
            if batch:
                assert await sup.start_children(specs) == {}
            else:
                for spec in specs:
                    await sup.start_child(spec)
            started = passes.count
            assert log.count("c0:up") == log.count(f"c{n - 1}:up") == 1
            assert len(sup.which_children()) == n
            if batch:
                await sup.delete_children(spec.id for spec in specs)
            else:
                for spec in specs:
                    await sup.delete_child(spec.id)
            deleted = passes.count - started
        finally:
            trio.lowlevel.remove_instrument(passes)
        assert sup.which_children() == []
        assert log.count("c0:cancelled") == log.count(f"c{n - 1}:cancelled") == 1
        await sup.stop()
    return started, deleted


async def test_children_added_and_deleted_together_take_a_few_scheduler_passes(
    autojump_clock: object,
) -> None:
    # Counted, not timed: thousands of checks a sharded replica takes over at its first beat
    # (or gives up) are one supervisor call, not one (and a pass or more) each.
    start, delete = await _passes_to_start_and_delete_dynamically(2000, batch=True)
    assert max(start, delete) <= 5
    one_by_one = await _passes_to_start_and_delete_dynamically(200, batch=False)
    assert min(one_by_one) >= 200


async def test_start_children_reports_the_ones_that_failed_and_keeps_the_rest(
    autojump_clock: object,
) -> None:
    log: list[str] = []
    for ordered in (False, True):
        sup = Supervisor([ChildSpec("a", Actor("a", log))], ordered=ordered)
        async with trio.open_nursery() as nursery:
            await nursery.start(sup.run)
            with pytest.raises(DuplicateChildError):
                await sup.start_children([ChildSpec("b", Actor("b", log))] * 2)
            with pytest.raises(DuplicateChildError):
                await sup.start_children([ChildSpec("a", Actor("a", log))])
            failed = await sup.start_children(
                [
                    ChildSpec("b", Actor("b", log, start_delay=1.0)),
                    ChildSpec("c", Actor("c", log, ["crash_before_start"])),
                    ChildSpec("d", Actor("d", log)),
                ]
            )
            assert list(failed) == ["c"]
            assert isinstance(failed["c"], ChildStartError)
            assert isinstance(failed["c"].__cause__, Boom)
            assert states(sup) == dict.fromkeys("abd", ChildState.RUNNING)
            with pytest.raises(ChildNotFoundError):
                await sup.delete_children(["b", "c"])
            assert [i.id for i in sup.which_children()] == ["a", "b", "d"]
            await sup.delete_children(["d", "b"])
            assert states(sup) == {"a": ChildState.RUNNING}
            await sup.stop()
        with pytest.raises(SupervisorStateError):
            await sup.start_children([ChildSpec("e", Actor("e", log))])


async def test_ordered_children_deleted_together_stop_in_reverse_order(
    autojump_clock: object,
) -> None:
    log: list[str] = []
    sup = Supervisor([ChildSpec(n, Actor(n, log)) for n in "abc"])
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await sup.delete_children(["a", "c"])
        assert [entry for entry in log if entry.endswith(":cancelled")] == [
            "c:cancelled",
            "a:cancelled",
        ]
        assert states(sup) == {"b": ChildState.RUNNING}
        await sup.stop()


async def test_unordered_children_are_cancelled_in_the_pass_that_asks_the_stop() -> None:
    # Counted, not timed: on a loop busy with thousands of checks each scheduler pass is long,
    # and a stop that waits for the supervisor's own task costs one more of them.
    passes = Passes()
    cancelled_at = passes.cancelled_at
    child = passes.sleeper

    log: list[str] = []
    trapping = Actor("trapping", log, [("trap", 0.0)])
    specs = [ChildSpec(f"c{i}", child) for i in range(100)]
    specs.append(ChildSpec("trapping", trapping, shutdown=5.0))
    sup = Supervisor(specs, ordered=False)
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await trio.testing.wait_all_tasks_blocked()
        trio.lowlevel.add_instrument(passes)
        try:
            asked = passes.count
            await sup.stop()
        finally:
            trio.lowlevel.remove_instrument(passes)
    assert len(cancelled_at) == 100
    assert max(cancelled_at) == asked + 1  # the next pass, not one more
    assert "trapping:stop-requested" in log
    assert states(sup) == dict.fromkeys([s.id for s in specs], ChildState.STOPPED)
    assert sup.statistics().failures_total == 0


async def test_an_ordered_stop_cancels_the_nested_last_childs_children_at_once() -> None:
    # The root's stop reaches the checks (a nested unordered supervisor, its last child) in the
    # call that asks it, not one pass later when the root's own task runs: counted, not timed.
    passes = Passes()
    cancelled_at = passes.cancelled_at
    child = passes.sleeper

    log: list[str] = []
    nested = Supervisor([ChildSpec(f"c{i}", child) for i in range(100)], ordered=False)
    first = Actor("first", log, [("trap", 0.0)])
    root = Supervisor([ChildSpec("first", first, shutdown=5.0), ChildSpec.supervisor(nested)])
    async with trio.open_nursery() as nursery:
        await nursery.start(root.run)
        await trio.testing.wait_all_tasks_blocked()
        trio.lowlevel.add_instrument(passes)
        try:
            asked = passes.count
            root.request_stop()
            assert "first:stop-requested" not in log  # stopped after the nested ones
            await root.stop()
        finally:
            trio.lowlevel.remove_instrument(passes)
    assert len(cancelled_at) == 100
    assert max(cancelled_at) == asked + 1  # the next pass, not one more per level
    assert log[-2:] == ["first:stop-requested", "first:cleaned"]
    assert states(root) == {"first": ChildState.STOPPED, nested.name: ChildState.STOPPED}
    assert root.statistics().failures_total == nested.statistics().failures_total == 0


async def test_a_stop_asked_during_an_ordered_start_asks_no_child_before_its_turn(
    autojump_clock: object,
) -> None:
    # While `b` is still starting, `a` (started) is the last one running, but `b` stops first:
    # nothing is asked early; every child stops in reverse order once the start is over.
    log: list[str] = []
    a = Actor("a", log, [("trap", 0.0)])
    b = Actor("b", log, [("trap", 0.0)], start_delay=1.0)
    sup = Supervisor([ChildSpec("a", a, shutdown=5.0), ChildSpec("b", b, shutdown=5.0)])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sup.run)
        while "b:begin" not in log:
            await trio.sleep(0.01)
        sup.request_stop()
        await trio.testing.wait_all_tasks_blocked()
        assert "a:stop-requested" not in log
        await sup.stop()
    assert [entry for entry in log if entry.endswith(("up", "stop-requested"))] == [
        "a:up",
        "b:up",
        "b:stop-requested",
        "a:stop-requested",
    ]


async def test_request_stop_when_not_running_does_nothing() -> None:
    sup = Supervisor([ChildSpec("a", Actor("a", []))])
    sup.request_stop()
    assert not sup.running
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        assert sup.which_children()[0].state is ChildState.RUNNING
        await sup.stop()


async def test_a_stop_cancels_each_child_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # Asked at once by the stop's call (`_ask_now`), a child is not cancelled again when the
    # supervisor's task stops it: for thousands of checks each call costs (trio builds a
    # cancel reason with the calling task's repr before it finds the scope cancelled).
    calls: list[int] = []
    real = anyio.CancelScope

    class Counted:
        def __init__(self) -> None:
            self._scope = real()

        def __enter__(self) -> Counted:
            self._scope.__enter__()
            return self

        def __exit__(self, *exc: object) -> bool:
            return bool(self._scope.__exit__(*exc))  # type: ignore[arg-type]

        def cancel(self) -> None:
            calls.append(id(self))
            self._scope.cancel()

    monkeypatch.setattr(anyio, "CancelScope", Counted)  # the attempts' scopes
    sup = Supervisor([ChildSpec(f"c{i}", Actor(f"c{i}", [])) for i in range(20)], ordered=False)
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await sup.stop()
    assert len(calls) == len(set(calls)) == 20
    assert states(sup) == {f"c{i}": ChildState.STOPPED for i in range(20)}

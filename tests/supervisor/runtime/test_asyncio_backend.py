"""The core scenarios again on the asyncio backend.

pytest's trio_mode runs every async test on trio, so these are sync tests that call
``anyio.run(scenario, backend="asyncio")``. They use short real timings (tens of ms).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import anyio.abc
import pytest

from supervisor.runtime import (
    AutoShutdown,
    Backoff,
    ChildSpec,
    ChildStartError,
    ChildState,
    Mailbox,
    Overflow,
    Restart,
    RestartIntensityExceeded,
    Strategy,
    Supervisor,
)

from ._support import Actor, Boom

NO_BACKOFF = Backoff.none()
TICK = 0.01


def on_asyncio(scenario: Callable[[], Awaitable[None]]) -> None:
    anyio.run(scenario, backend="asyncio")


async def wait_logged(log: list[str], entry: str, times: int) -> None:
    """Wait (real time, bounded) until `entry` was logged `times` times: a loaded machine may
    need longer than a fixed sleep, and the assertions that follow must not race the restart."""
    with anyio.fail_after(5):
        while log.count(entry) < times:
            await anyio.sleep(TICK / 2)


def states(sup: Supervisor) -> dict[str, ChildState]:
    return {info.id: info.state for info in sup.which_children()}


def test_one_for_one_ordered_start_restart_and_reverse_stop() -> None:
    log: list[str] = []

    async def scenario() -> None:
        actors = {n: Actor(n, log, [("crash", TICK)] if n == "b" else []) for n in "abc"}
        sup = Supervisor([ChildSpec(n, a) for n, a in actors.items()], backoff=NO_BACKOFF)
        async with anyio.create_task_group() as tg:
            await tg.start(sup.run)
            await wait_logged(log, "b:up", 2)
            assert [a.incarnations for a in actors.values()] == [1, 2, 1]
            assert states(sup) == dict.fromkeys("abc", ChildState.RUNNING)
            await sup.stop()

    on_asyncio(scenario)
    assert log == [
        *["a:begin", "a:up", "b:begin", "b:up", "c:begin", "c:up"],
        *["b:crash", "b:begin", "b:up"],
        *["c:cancelled", "b:cancelled", "a:cancelled"],
    ]


def test_one_for_all_and_rest_for_one() -> None:
    logs: dict[Strategy, list[str]] = {}

    async def scenario() -> None:
        for strategy in (Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE):
            log = logs[strategy] = []
            actors = {n: Actor(n, log, [("crash", TICK)] if n == "b" else []) for n in "abc"}
            sup = Supervisor(
                [ChildSpec(n, a) for n, a in actors.items()],
                strategy=strategy,
                backoff=NO_BACKOFF,
            )
            async with anyio.create_task_group() as tg:
                await tg.start(sup.run)
                await wait_logged(log, "c:up", 2)
                await sup.stop()

    on_asyncio(scenario)
    assert logs[Strategy.ONE_FOR_ALL][6:15] == [
        *["b:crash", "c:cancelled", "a:cancelled"],
        *["a:begin", "a:up", "b:begin", "b:up", "c:begin", "c:up"],
    ]
    assert logs[Strategy.REST_FOR_ONE][6:12] == [
        *["b:crash", "c:cancelled"],
        *["b:begin", "b:up", "c:begin", "c:up"],
    ]


def test_intensity_escalates_through_two_levels() -> None:
    async def scenario() -> None:
        leaf = Actor("leaf", [], [("crash", TICK)] * 100)
        mid = Supervisor([ChildSpec("leaf", leaf)], name="mid", intensity=1, backoff=NO_BACKOFF)
        root = Supervisor(
            [ChildSpec("sib", Actor("sib", [])), ChildSpec.supervisor(mid)],
            name="root",
            intensity=1,
            backoff=NO_BACKOFF,
        )
        with pytest.raises(RestartIntensityExceeded) as caught:
            await root.run()
        assert caught.value.supervisor == "root"
        cause = caught.value.__cause__
        assert isinstance(cause, RestartIntensityExceeded)
        assert cause.supervisor == "mid"
        assert isinstance(cause.__cause__, Boom)
        assert leaf.incarnations == 4
        assert states(root) == {"sib": ChildState.STOPPED, "mid": ChildState.FAILED}

    on_asyncio(scenario)


def test_restart_types_and_significant_auto_shutdown() -> None:
    async def scenario() -> None:
        log: list[str] = []
        sup = Supervisor(
            [
                ChildSpec("perm", Actor("perm", log, [("return", TICK)])),
                ChildSpec("temp", Actor("temp", log, [("crash", TICK)]), restart=Restart.TEMPORARY),
                ChildSpec(
                    "job",
                    Actor("job", log, [("crash", TICK), ("return", 4 * TICK)]),
                    restart=Restart.TRANSIENT,
                    significant=True,
                ),
            ],
            intensity=5,
            backoff=NO_BACKOFF,
            auto_shutdown=AutoShutdown.ANY_SIGNIFICANT,
        )
        await sup.run()  # returns once "job" returned normally (after one crash + restart)
        assert log.count("job:up") == 2
        assert log.count("perm:up") == 2
        assert log.count("temp:up") == 1
        assert states(sup)["temp"] is ChildState.FAILED

    on_asyncio(scenario)


def test_graceful_and_brutal_shutdown() -> None:
    async def scenario() -> None:
        log: list[str] = []
        sup = Supervisor(
            [
                ChildSpec("brutal", Actor("brutal", log, [("trap", 1.0)]), shutdown=None),
                ChildSpec("graceful", Actor("graceful", log, [("trap", TICK)]), shutdown=5.0),
                ChildSpec("late", Actor("late", log, [("trap", 10.0)]), shutdown=2 * TICK),
            ]
        )
        async with anyio.create_task_group() as tg:
            await tg.start(sup.run)
            start = anyio.current_time()
            await sup.stop()
            elapsed = anyio.current_time() - start
        assert log[6:] == [
            *["late:stop-requested", "late:cancelled"],
            *["graceful:stop-requested", "graceful:cleaned"],
            "brutal:cancelled",
        ]
        assert 3 * TICK <= elapsed < 1.0

    on_asyncio(scenario)


def test_dynamic_children() -> None:
    async def scenario() -> None:
        log: list[str] = []
        sup = Supervisor([ChildSpec("a", Actor("a", log))])
        async with anyio.create_task_group() as tg:
            await tg.start(sup.run)
            info = await sup.start_child(ChildSpec("b", Actor("b", log, start_delay=TICK)))
            assert info.state is ChildState.RUNNING
            with pytest.raises(ChildStartError):
                await sup.start_child(ChildSpec("c", Actor("c", log, ["crash_before_start"])))
            await sup.terminate_child("b")
            assert states(sup) == {"a": ChildState.RUNNING, "b": ChildState.STOPPED}
            info = await sup.restart_child("b")
            assert info.starts == 2
            await sup.delete_child("b")
            assert [i.id for i in sup.which_children()] == ["a"]
            await sup.stop()

    on_asyncio(scenario)


def test_mailbox_survives_consumer_restart_and_overflow_policies() -> None:
    async def scenario() -> None:
        box: Mailbox[int] = Mailbox("work", 100)
        received: list[int] = []

        async def producer(
            *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
        ) -> None:
            task_status.started()
            for i in range(30):
                await box.send(i)
                await anyio.sleep(TICK / 5)
            await anyio.sleep_forever()

        async def consumer(
            *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
        ) -> None:
            task_status.started()
            async for item in box:
                received.append(item)
                if item in (5, 17):
                    raise RuntimeError("choked")

        sup = Supervisor(
            [ChildSpec("consumer", consumer), ChildSpec("producer", producer)],
            intensity=5,
            backoff=Backoff(initial=TICK, jitter=0.0),
        )
        async with anyio.create_task_group() as tg:
            await tg.start(sup.run)
            with anyio.fail_after(2):
                while len(received) < 30:
                    await anyio.sleep(TICK)
            await sup.stop()
        assert received == list(range(30))

        drop: Mailbox[int] = Mailbox("drop", 2, overflow=Overflow.DROP_OLDEST)
        for i in range(4):
            await drop.send(i)
        assert [drop.receive_nowait(), drop.receive_nowait()] == [2, 3]

        latest: Mailbox[tuple[str, int]] = Mailbox(
            "latest", 2, overflow=Overflow.COALESCE, key=lambda kv: kv[0]
        )
        for kv in [("a", 1), ("b", 1), ("a", 2)]:
            await latest.send(kv)
        assert [await latest.receive(), await latest.receive()] == [("a", 2), ("b", 1)]

        # a cancelled receive loses nothing; a blocked sender resumes when room appears
        with anyio.move_on_after(TICK):
            await drop.receive()
        drop.send_nowait(7)
        assert await drop.receive() == 7
        full: Mailbox[int] = Mailbox("full", 1)
        await full.send(1)
        async with anyio.create_task_group() as tg:
            tg.start_soon(full.send, 2)
            with anyio.fail_after(5):
                while full.statistics().tasks_waiting_send < 1:
                    await anyio.sleep(TICK / 5)
            assert full.statistics().tasks_waiting_send == 1
            assert await full.receive() == 1
        assert full.receive_nowait() == 2

    on_asyncio(scenario)

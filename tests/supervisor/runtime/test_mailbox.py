"""Mailbox semantics on trio, deterministic under the autojump clock."""

from __future__ import annotations

from dataclasses import dataclass

import anyio
import pytest
import trio

from supervisor.runtime import (
    Backoff,
    ChildSpec,
    Mailbox,
    MailboxStatistics,
    Overflow,
    Supervisor,
)


@dataclass(frozen=True)
class Reading:
    sensor: str
    value: int


async def test_fifo_send_receive_and_nowait(autojump_clock: object) -> None:
    box: Mailbox[int] = Mailbox("numbers", 3)
    with pytest.raises(anyio.WouldBlock):
        box.receive_nowait()
    await box.send(1)
    box.send_nowait(2)
    await box.send(3)
    with pytest.raises(anyio.WouldBlock):
        box.send_nowait(4)
    assert len(box) == 3
    assert [box.receive_nowait(), await box.receive(), await box.receive()] == [1, 2, 3]
    assert box.statistics() == MailboxStatistics(
        name="numbers",
        size=0,
        capacity=3,
        overflow=Overflow.BLOCK,
        sent=3,
        received=3,
        dropped=0,
        coalesced=0,
        tasks_waiting_send=0,
        tasks_waiting_receive=0,
        closed=False,
    )


async def test_block_waits_for_room_and_receive_waits_for_a_message(
    autojump_clock: object,
) -> None:
    box: Mailbox[int] = Mailbox("b", 1)
    got: list[tuple[float, int]] = []

    async def consumer() -> None:
        for _ in range(3):
            await trio.sleep(1)
            got.append((trio.current_time(), await box.receive()))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        for i in range(3):
            await box.send(i)
        sent_at = trio.current_time()
        assert box.statistics().tasks_waiting_send == 0
    assert sent_at == 2.0  # the third send waited for the second receive
    assert got == [(1.0, 0), (2.0, 1), (3.0, 2)]


async def test_drop_oldest_never_blocks(autojump_clock: object) -> None:
    box: Mailbox[int] = Mailbox("d", 3, overflow=Overflow.DROP_OLDEST)
    for i in range(5):
        await box.send(i)
    box.send_nowait(5)
    assert [box.receive_nowait() for _ in range(3)] == [3, 4, 5]
    stats = box.statistics()
    assert (stats.sent, stats.received, stats.dropped) == (6, 3, 3)


async def test_coalesce_keeps_the_latest_value_per_key_in_place(autojump_clock: object) -> None:
    box: Mailbox[Reading] = Mailbox("c", 2, overflow=Overflow.COALESCE, key=lambda r: r.sensor)
    await box.send(Reading("a", 1))
    await box.send(Reading("b", 1))
    await box.send(Reading("a", 2))  # replaces a=1, keeps a first
    box.send_nowait(Reading("b", 2))
    with pytest.raises(anyio.WouldBlock):
        box.send_nowait(Reading("c", 1))  # new key, full
    assert [box.receive_nowait(), await box.receive()] == [Reading("a", 2), Reading("b", 2)]
    stats = box.statistics()
    assert (stats.sent, stats.received, stats.coalesced, stats.dropped) == (4, 2, 2, 0)


async def test_coalesce_new_key_blocks_until_room(autojump_clock: object) -> None:
    box: Mailbox[Reading] = Mailbox("c", 1, overflow=Overflow.COALESCE, key=lambda r: r.sensor)
    await box.send(Reading("a", 1))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(box.send, Reading("b", 1))
        await trio.sleep(1)
        assert box.statistics().tasks_waiting_send == 1
        assert await box.receive() == Reading("a", 1)
    assert box.receive_nowait() == Reading("b", 1)


async def test_cancelled_receive_loses_nothing(autojump_clock: object) -> None:
    box: Mailbox[str] = Mailbox("x", 2)
    with trio.move_on_after(1):
        await box.receive()
    assert box.statistics().tasks_waiting_receive == 0
    await box.send("kept")
    assert await box.receive() == "kept"


async def test_woken_then_cancelled_receiver_passes_the_message_on(
    autojump_clock: object,
) -> None:
    box: Mailbox[str] = Mailbox("x", 2)
    got: list[str] = []
    first = trio.CancelScope()

    async def first_receiver() -> None:
        with first:
            got.append(await box.receive())

    async def second_receiver() -> None:
        got.append(await box.receive())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(first_receiver)
        await trio.sleep(1)
        nursery.start_soon(second_receiver)
        await trio.sleep(1)
        box.send_nowait("one")  # wakes the first receiver...
        first.cancel()  # ...which is cancelled before it runs
        await trio.sleep(1)
        assert got == ["one"]
        box.send_nowait("two")
    assert sorted(got) == ["one", "two"]
    assert len(box) == 0


async def test_cancelled_send_does_not_send(autojump_clock: object) -> None:
    box: Mailbox[int] = Mailbox("x", 1)
    await box.send(1)
    with trio.move_on_after(1):
        await box.send(2)
    assert box.statistics().tasks_waiting_send == 0
    assert box.receive_nowait() == 1
    with pytest.raises(anyio.WouldBlock):
        box.receive_nowait()


async def test_close_drains_then_ends_iteration(autojump_clock: object) -> None:
    box: Mailbox[int] = Mailbox("x", 5)
    for i in range(3):
        await box.send(i)
    box.close()
    with pytest.raises(anyio.ClosedResourceError):
        await box.send(9)
    assert [i async for i in box] == [0, 1, 2]
    with pytest.raises(anyio.EndOfStream):
        await box.receive()


async def test_close_wakes_waiting_tasks(autojump_clock: object) -> None:
    box: Mailbox[int] = Mailbox("x", 1)
    outcomes: list[str] = []

    async def receive() -> None:
        try:
            await box.receive()
        except anyio.EndOfStream:
            outcomes.append("end")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(receive)
        await trio.sleep(1)
        box.close()
    full: Mailbox[int] = Mailbox("y", 1)
    await full.send(1)

    async def send() -> None:
        try:
            await full.send(2)
        except anyio.ClosedResourceError:
            outcomes.append("closed")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send)
        await trio.sleep(1)
        full.close()
    assert outcomes == ["end", "closed"]


def test_validation() -> None:
    with pytest.raises(ValueError):
        Mailbox[int]("x", 0)
    with pytest.raises(ValueError):
        Mailbox[int]("x", 1, overflow=Overflow.COALESCE)
    with pytest.raises(ValueError):
        Mailbox[int]("x", 1, key=lambda v: v)
    assert "3" in repr(Mailbox[int]("x", 3))


async def test_mailbox_survives_consumer_restart(autojump_clock: object) -> None:
    """What the producer sends while the consumer is down is received after its restart."""
    box: Mailbox[int] = Mailbox("work", 100)
    received: list[int] = []

    async def producer(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        for i in range(20):
            await box.send(i)
            await trio.sleep(1)
        await trio.sleep_forever()

    async def consumer(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async for item in box:
            received.append(item)
            if item in (4, 11):
                raise RuntimeError(f"choked on {item}")

    sup = Supervisor(
        [ChildSpec("consumer", consumer), ChildSpec("producer", producer)],
        intensity=5,
        backoff=Backoff(initial=3.5, jitter=0.0),
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await trio.sleep(6.5)
        # consumer crashed at t=4 and is down until t=7.5: 5 and 6 wait in the mailbox
        assert received == [0, 1, 2, 3, 4]
        assert len(box) == 2
        await trio.sleep(30)
        await sup.stop()
    assert received == list(range(20))
    assert {i.id: i.failures for i in sup.which_children()} == {"consumer": 2, "producer": 0}

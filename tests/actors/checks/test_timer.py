"""`CheckTimer`: parked waits woken at their due times or when their socket turns readable."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from actors.checks.timer import QUANTUM, CheckTimer


async def _wake_times(timer: CheckTimer, dues: list[float]) -> list[tuple[float, float, bool]]:
    """(due, woken at, lost) of one wait per due, made together."""
    seen: list[tuple[float, float, bool]] = []

    async def one(due: float) -> None:
        lost = await timer.wait(due)
        seen.append((due, trio.current_time(), lost))

    async with trio.open_nursery() as nursery:
        for due in dues:
            nursery.start_soon(one, due)
    return seen


async def test_waits_end_at_their_due_times(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    timer = CheckTimer()
    await nursery.start(timer.run)
    dues = [5.0, 1.0, 3.0, 1.0005, 2.5, 1.001]
    seen = await _wake_times(timer, dues)
    assert sorted(due for due, _, _ in seen) == sorted(dues)
    for due, woken, lost in seen:
        assert due <= woken <= due + QUANTUM
        assert not lost
    stats = timer.statistics()
    assert stats.parked == 0
    assert stats.timed == len(dues)
    # one wake-up per QUANTUM at most: 1.0005 and 1.001 are woken together
    assert stats.wakeups < len(dues)


async def test_a_due_time_passed_returns_at_once(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    timer = CheckTimer()  # not even running: nothing to wait for
    start = trio.current_time()
    assert await timer.wait(start - 1.0) is False
    assert trio.current_time() == start


async def test_an_earlier_wait_brings_the_wake_up_forward(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    timer = CheckTimer()
    await nursery.start(timer.run)
    woken: list[float] = []

    async def late() -> None:
        await timer.wait(100.0)
        woken.append(trio.current_time())

    nursery.start_soon(late)
    await trio.sleep(1.0)  # the timer sleeps until 100 now
    assert await timer.wait(2.0) is False
    assert 2.0 <= trio.current_time() <= 2.0 + QUANTUM
    assert woken == []


async def test_a_socket_turning_readable_ends_its_wait(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    timer = CheckTimer()
    if not timer.watching:
        pytest.skip("no epoll here")
    await nursery.start(timer.run)
    ours, theirs = trio.socket.socketpair()
    with ours, theirs:
        result: list[tuple[bool, float]] = []

        async def wait() -> None:
            lost = await timer.wait(60.0, ours)
            result.append((lost, trio.current_time()))

        nursery.start_soon(wait)
        await trio.sleep(10.0)
        assert result == []  # idle: nothing to wake it
        theirs.close()  # the peer goes away
        closed = trio.current_time()
        with trio.fail_after(1):
            while not result:
                await trio.sleep(0.001)
        lost, at = result[0]
        assert lost is True
        assert at - closed < 0.01  # at once, not at 60
        assert timer.statistics().lost == 1
        assert timer.statistics().parked == 0
        # the socket is no longer watched: a wait without it ends by time
        assert await timer.wait(trio.current_time() + 1.0) is False


async def test_a_wait_ended_by_time_leaves_its_socket_unwatched(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    timer = CheckTimer()
    if not timer.watching:
        pytest.skip("no epoll here")
    await nursery.start(timer.run)
    ours, theirs = trio.socket.socketpair()
    with ours, theirs:
        assert await timer.wait(5.0, ours) is False
        await theirs.send(b"x")  # readable now, and nobody waits: nothing happens
        assert await timer.wait(trio.current_time() + 1.0) is False
        assert timer.statistics().lost == 0
        # watched again, it is readable at once
        assert await timer.wait(trio.current_time() + 60.0, ours) is True


async def test_a_cancelled_wait_leaves_nothing_behind(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    timer = CheckTimer()
    await nursery.start(timer.run)
    ours, theirs = trio.socket.socketpair()
    sock = ours if timer.watching else None
    with ours, theirs:
        with trio.move_on_after(1.0) as scope:
            await timer.wait(10.0, sock)
        assert scope.cancelled_caught
        assert timer.statistics().parked == 0
        theirs.close()  # readable: the cancelled wait is not woken, nothing spins
        assert await timer.wait(trio.current_time() + 20.0) is False
        assert timer.statistics().lost == 0


async def test_waits_parked_while_run_restarts_are_woken(
    autojump_clock: trio.testing.MockClock,
) -> None:
    timer = CheckTimer()
    woken: list[float] = []

    async def wait() -> None:
        await timer.wait(5.0)
        woken.append(trio.current_time())

    async with trio.open_nursery() as inner:
        scope = trio.CancelScope()

        async def run_for_a_while(task_status: trio.TaskStatus[None]) -> None:
            with scope:
                await timer.run(task_status=task_status)

        await inner.start(run_for_a_while)
        inner.start_soon(wait)
        await trio.sleep(1.0)
        scope.cancel()  # `run` stops (a restart), the wait stays parked
        await trio.sleep(10.0)
        assert woken == []
        await inner.start(timer.run)  # and continues where it left
        with trio.fail_after(1):
            while not woken:
                await trio.sleep(0.001)
        assert woken[0] >= 11.0
        inner.cancel_scope.cancel()


async def test_without_watching_a_socket_is_refused() -> None:
    timer = CheckTimer(watch=False)
    assert timer.watching is False
    ours, theirs = trio.socket.socketpair()
    with ours, theirs, pytest.raises(ValueError, match="does not watch"):
        await timer.wait(trio.current_time() + 1.0, ours)


def test_quantum_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="quantum"):
        CheckTimer(quantum=-1.0)


async def test_a_socket_of_a_closed_one_s_number_is_watched(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    """Sockets stay registered (disarmed) between waits; one closed meanwhile and its number
    taken by a new socket is watched all the same, and a socket watched again and again wakes
    its every wait."""
    timer = CheckTimer()
    if not timer.watching:
        pytest.skip("no epoll here")
    await nursery.start(timer.run)
    ours, theirs = trio.socket.socketpair()
    number = ours.fileno()
    with theirs:
        assert await timer.wait(trio.current_time() + 1.0, ours) is False
        ours.close()
    again, peer = trio.socket.socketpair()
    with again, peer:
        assert number in (again.fileno(), peer.fileno())
        watched = again if again.fileno() == number else peer
        other = peer if watched is again else again
        for _ in range(3):
            assert await timer.wait(trio.current_time() + 1.0, watched) is False
            await other.send(b"x")
            assert await timer.wait(trio.current_time() + 60.0, watched) is True
            assert await watched.recv(1) == b"x"
        other.close()
        assert await timer.wait(trio.current_time() + 60.0, watched) is True
    assert timer.statistics().parked == 0

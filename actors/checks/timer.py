"""`CheckTimer`: one timer for every check of a process, and one watch over their connections.

A check's task waits between runs until its next run is due or, for a probe that keeps a
connection open (`SocketWatchingProbe`), until that connection turns readable (the target closed
or reset it, or sent bytes unasked). Waited for with a trio deadline, every wait ends in the
deadline's expiry: a `trio.Cancelled` raised through the task's frames and its cancel scopes,
which costs more than the rest of the wait put together, once per run of every check.

Here the check's task parks itself instead (`wait`: a heap entry, and its socket registered with
an epoll object of the timer's own) and one task, `run`, wakes it with `trio.lowlevel.reschedule`
when it is due or its socket turned readable: no cancellation and no exception per run. `run`
itself waits for the earliest due time with a deadline and for the epoll object's readiness,
and wakes at most once per `QUANTUM`: the waits due within a quantum after a wake-up are woken
together at its end, so its own expiry (one cancellation) is shared by the runs due in that
time (thousands of checks at 1 s: a wait due every fraction of a millisecond). A run so starts
up to `QUANTUM` after its due time, measured as lateness like any other delay
(`actors.checks.schedule`).

Where the platform has no epoll (not Linux), `watching` is False and callers watch sockets their
own way (the check actor falls back to waiting on the probe's `wait_lost` with a deadline).

Contract: `run` must be running for `wait` to return (the composition root runs it as a child
started before the checks and stopped after them); a restarted `run` continues with the waits
parked meanwhile. A wait that is cancelled (the check is stopped or restarted) leaves nothing
behind. Used from the trio thread only.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import math
import select

import trio

__all__ = ["QUANTUM", "CheckTimer", "CheckTimerStatistics"]

QUANTUM = 0.002
"""Seconds between two wake-ups of the timer at least (waits due meanwhile are woken together)."""

_ONESHOT = getattr(select, "EPOLLONESHOT", 0)
_EVENTS = getattr(select, "EPOLLIN", 0) | getattr(select, "EPOLLRDHUP", 0) | _ONESHOT


class _Wait:
    """One parked wait: its task (None once woken or aborted), its socket's fd (-1: none)."""

    __slots__ = ("fd", "lost", "task")

    def __init__(self, task: trio.lowlevel.Task, fd: int) -> None:
        self.task: trio.lowlevel.Task | None = task
        self.fd = fd
        self.lost = False


class CheckTimerStatistics:
    """Counters of a `CheckTimer`: waits parked now, wake-ups of `run`, waits ended by time and
    by a readable socket."""

    __slots__ = ("lost", "parked", "timed", "wakeups")

    def __init__(self, *, parked: int, wakeups: int, timed: int, lost: int) -> None:
        self.parked = parked
        self.wakeups = wakeups
        self.timed = timed
        self.lost = lost

    def __repr__(self) -> str:
        return (
            f"CheckTimerStatistics(parked={self.parked}, wakeups={self.wakeups}, "
            f"timed={self.timed}, lost={self.lost})"
        )


class CheckTimer:
    """Wakes the tasks of many checks at their due times (see the module docstring).

    Args:
        quantum: seconds between two wake-ups of `run` by time at least (>= 0).
        watch: watch sockets with an epoll object where the platform has one (False: never;
            `watching` then says False and `wait` refuses a socket).
    """

    def __init__(self, *, quantum: float = QUANTUM, watch: bool = True) -> None:
        if not quantum >= 0:
            raise ValueError("quantum must be >= 0")
        self._quantum = quantum
        self._heap: list[tuple[float, int, _Wait]] = []
        self._order = itertools.count()
        self._epoll: select.epoll | None = None
        if watch and hasattr(select, "epoll"):
            self._epoll = select.epoll()
        self._by_fd: dict[int, _Wait] = {}
        self._parked = 0
        # The wake-up `run` waits for, to bring it forward when an earlier wait comes.
        self._scope: trio.CancelScope | None = None
        self._wakeups = 0
        self._timed = 0
        self._lost = 0

    @property
    def watching(self) -> bool:
        """Whether `wait` can watch a socket."""
        return self._epoll is not None

    def statistics(self) -> CheckTimerStatistics:
        """Counters since the timer was created."""
        return CheckTimerStatistics(
            parked=self._parked, wakeups=self._wakeups, timed=self._timed, lost=self._lost
        )

    def close(self) -> None:
        """Release the epoll object (after the last `run`); waits must not be made after it."""
        if self._epoll is not None:
            self._epoll.close()

    async def wait(self, due: float, sock: trio.socket.SocketType | None = None) -> bool:
        """Wait until the loop time `due` (False), or until `sock` turns readable (True): its
        peer closed or reset it, or sent bytes. The socket is only watched, nothing is read.

        A checkpoint: returns at once (after one) when `due` has passed. Cancelling the wait
        leaves the socket as it was.

        Raises:
            ValueError: a socket given while not `watching`.
        """
        if sock is not None and self._epoll is None:
            raise ValueError("this timer does not watch sockets")
        if due <= trio.current_time():
            await trio.lowlevel.checkpoint()
            return False
        task = trio.lowlevel.current_task()
        fd = -1 if sock is None else sock.fileno()
        waiting = _Wait(task, fd)
        if fd >= 0:
            assert self._epoll is not None
            try:  # registered by an earlier wait (and disarmed since): armed again
                self._epoll.modify(fd, _EVENTS)
            except FileNotFoundError:
                self._epoll.register(fd, _EVENTS)
            self._by_fd[fd] = waiting
        heapq.heappush(self._heap, (due, next(self._order), waiting))
        self._parked += 1
        scope = self._scope
        if scope is not None and due < scope.deadline:
            scope.deadline = due

        def abort(_: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
            self._end(waiting)  # its heap entry stays, skipped when it comes up
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)
        return waiting.lost

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Wake the parked waits when due or watched socket turns readable, until cancelled.

        One cancel scope serves the wake-ups by a readable socket until its deadline expires
        (a wait for an answer is woken this way every run of an http check): its deadline is
        moved only when the earliest due time is no longer within a quantum of it."""
        task_status.started()
        epoll = self._epoll
        heap = self._heap
        quantum = self._quantum
        while True:
            with trio.CancelScope() as scope:
                self._scope = scope
                while True:
                    now = trio.current_time()
                    while heap and heap[0][0] <= now:
                        waiting = heapq.heappop(heap)[2]
                        if waiting.task is not None:
                            self._timed += 1
                            self._wake(waiting)
                    first = heap[0][0] if heap else math.inf
                    if not first <= scope.deadline <= max(first, now) + quantum:
                        scope.deadline = max(first, now + quantum)
                    if epoll is None:
                        await trio.sleep_forever()
                    await trio.lowlevel.wait_readable(epoll.fileno())
                    self._wakeups += 1
                    self._wake_lost(epoll.poll(0))
            self._scope = None
            self._wakeups += 1

    # -- internals -----------------------------------------------------------------------------

    def _wake_lost(self, events: list[tuple[int, int]]) -> None:
        for fd, _ in events:
            waiting = self._by_fd.get(fd)
            if waiting is not None and waiting.task is not None:
                waiting.lost = True
                self._lost += 1
                self._wake(waiting, fired=True)
            # else not ours any more: one-shot, the event disarmed it (nothing spins)

    def _wake(self, waiting: _Wait, *, fired: bool = False) -> None:
        task = waiting.task
        self._end(waiting, fired=fired)
        assert task is not None
        trio.lowlevel.reschedule(task)

    def _end(self, waiting: _Wait, *, fired: bool = False) -> None:
        """Forget a wait (woken or aborted): its socket is no longer watched.

        A socket stays registered with the epoll object between waits, disarmed (one-shot:
        an event disarms it; a wait ended otherwise disarms it here), so the next wait on it
        (the next run's, or the answer's) arms it with one call; closing it unregisters it."""
        waiting.task = None
        self._parked -= 1
        fd = waiting.fd
        if fd >= 0 and self._by_fd.get(fd) is waiting:
            del self._by_fd[fd]
            if not fired:
                assert self._epoll is not None
                with contextlib.suppress(OSError):  # closed meanwhile: the kernel dropped it
                    self._epoll.modify(fd, _ONESHOT)

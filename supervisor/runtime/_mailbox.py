"""`Mailbox`: a named, bounded, typed channel that outlives the tasks using it."""

from __future__ import annotations

import enum
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

import anyio
from anyio.lowlevel import checkpoint

__all__ = ["Mailbox", "MailboxStatistics", "Overflow"]

T = TypeVar("T")


class Overflow(enum.Enum):
    """What `Mailbox.send` does when the mailbox is full."""

    BLOCK = "block"
    """Wait for room (`send_nowait` raises `anyio.WouldBlock`)."""
    DROP_OLDEST = "drop_oldest"
    """Drop the oldest queued message to make room; never waits."""
    COALESCE = "coalesce"
    """A message whose key is already queued replaces the queued one in place (latest wins,
    keeps its position); a new key waits for room like BLOCK."""


@dataclass(frozen=True, slots=True)
class MailboxStatistics:
    """Counters of a mailbox: `sent` counts accepted messages (including coalesced ones),
    `dropped` the ones DROP_OLDEST discarded, `coalesced` the ones COALESCE replaced."""

    name: str
    size: int
    capacity: int
    overflow: Overflow
    sent: int
    received: int
    dropped: int
    coalesced: int
    tasks_waiting_send: int
    tasks_waiting_receive: int
    closed: bool


class Mailbox(Generic[T]):
    """A named, bounded FIFO of messages of type T, owned by the supervision tree.

    The composition root creates it and hands it to a producer and a consumer. The mailbox holds
    the buffer itself, so it survives restarts of either side: what is sent while the consumer
    restarts is received by its next incarnation. Any number of tasks may send and receive;
    waiting tasks are served first come, first served. Cancelling a `send` or `receive` never
    loses or duplicates a message.

    Args:
        name: for statistics, logs and metrics.
        capacity: maximum number of queued messages (>= 1).
        overflow: see `Overflow`.
        key: for COALESCE only: maps a message to its coalescing key.

    Raises:
        ValueError: capacity < 1, COALESCE without `key`, or `key` with another policy.
    """

    __slots__ = (
        "_buffer",
        "_capacity",
        "_closed",
        "_coalesced",
        "_dropped",
        "_items",
        "_key",
        "_name",
        "_overflow",
        "_received",
        "_receivers",
        "_senders",
        "_sent",
    )

    def __init__(
        self,
        name: str,
        capacity: int,
        *,
        overflow: Overflow = Overflow.BLOCK,
        key: Callable[[T], Hashable] | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"mailbox {name!r}: capacity must be >= 1, got {capacity!r}")
        if (overflow is Overflow.COALESCE) != (key is not None):
            raise ValueError(f"mailbox {name!r}: a key function is required for COALESCE only")
        self._name = name
        self._capacity = capacity
        self._overflow = overflow
        self._key = key
        self._buffer: deque[T] = deque()
        self._items: OrderedDict[Hashable, T] = OrderedDict()
        self._receivers: deque[anyio.Event] = deque()
        self._senders: deque[anyio.Event] = deque()
        self._closed = False
        self._sent = 0
        self._received = 0
        self._dropped = 0
        self._coalesced = 0

    def __repr__(self) -> str:
        return (
            f"<Mailbox {self._name!r} {len(self)}/{self._capacity} {self._overflow.name}"
            f"{' closed' if self._closed else ''}>"
        )

    @property
    def name(self) -> str:
        """The mailbox name."""
        return self._name

    @property
    def capacity(self) -> int:
        """Maximum number of queued messages."""
        return self._capacity

    @property
    def overflow(self) -> Overflow:
        """The overflow policy."""
        return self._overflow

    @property
    def closed(self) -> bool:
        """True once `close` was called."""
        return self._closed

    def __len__(self) -> int:
        return len(self._items) if self._key is not None else len(self._buffer)

    def statistics(self) -> MailboxStatistics:
        """A frozen snapshot of the counters."""
        return MailboxStatistics(
            name=self._name,
            size=len(self),
            capacity=self._capacity,
            overflow=self._overflow,
            sent=self._sent,
            received=self._received,
            dropped=self._dropped,
            coalesced=self._coalesced,
            tasks_waiting_send=len(self._senders),
            tasks_waiting_receive=len(self._receivers),
            closed=self._closed,
        )

    # -- sending -------------------------------------------------------------------------------

    def send_nowait(self, value: T) -> None:
        """Queue `value` without waiting.

        Raises:
            anyio.WouldBlock: full (BLOCK; COALESCE with a key that is not queued).
            anyio.ClosedResourceError: the mailbox was closed.
        """
        if self._closed:
            raise anyio.ClosedResourceError
        key = self._key
        if key is None:
            buffer = self._buffer
            if len(buffer) >= self._capacity:
                if self._overflow is not Overflow.DROP_OLDEST:
                    raise anyio.WouldBlock
                buffer.popleft()
                self._dropped += 1
            buffer.append(value)
        else:
            k = key(value)
            items = self._items
            if k in items:
                items[k] = value  # keeps its position: a hot key is not starved
                self._coalesced += 1
                self._sent += 1
                return
            if len(items) >= self._capacity:
                raise anyio.WouldBlock
            items[k] = value
        self._sent += 1
        if self._receivers:
            self._receivers.popleft().set()

    async def send(self, value: T) -> None:
        """Queue `value`, waiting for room if the policy says so (BLOCK, COALESCE).

        Raises:
            anyio.ClosedResourceError: the mailbox was (or got) closed.
        """
        # One checkpoint, before the operation: cancelled there, nothing was sent; past it, the
        # operation completes without yielding again (cheaper than trio's two-part pattern on
        # asyncio, where a shielded checkpoint costs a cancel scope).
        await checkpoint()
        try:
            self.send_nowait(value)
        except anyio.WouldBlock:
            pass
        else:
            return
        while True:
            event = anyio.Event()
            self._senders.append(event)
            try:
                await event.wait()
            except BaseException:
                if event.is_set():
                    self._wake_sender()  # our turn was given to us: pass it on
                else:
                    self._senders.remove(event)
                raise
            try:
                self.send_nowait(value)
            except anyio.WouldBlock:
                continue
            return

    def _wake_sender(self) -> None:
        if self._senders and len(self) < self._capacity:
            self._senders.popleft().set()

    # -- receiving -----------------------------------------------------------------------------

    def receive_nowait(self) -> T:
        """Take the oldest message without waiting.

        Raises:
            anyio.WouldBlock: empty.
            anyio.EndOfStream: empty and closed.
        """
        if self._key is None:
            if not self._buffer:
                raise anyio.EndOfStream if self._closed else anyio.WouldBlock
            value = self._buffer.popleft()
        else:
            if not self._items:
                raise anyio.EndOfStream if self._closed else anyio.WouldBlock
            value = self._items.popitem(last=False)[1]
        self._received += 1
        if self._senders:
            self._senders.popleft().set()
        return value

    async def receive(self) -> T:
        """Take the oldest message, waiting for one.

        Raises:
            anyio.EndOfStream: the mailbox is closed and empty.
        """
        await checkpoint()
        try:
            return self.receive_nowait()
        except anyio.WouldBlock:
            pass
        while True:
            event = anyio.Event()
            self._receivers.append(event)
            try:
                await event.wait()
            except BaseException:
                if event.is_set():
                    if len(self) and self._receivers:  # pass our wake-up on
                        self._receivers.popleft().set()
                else:
                    self._receivers.remove(event)
                raise
            try:
                return self.receive_nowait()
            except anyio.WouldBlock:
                continue

    def __aiter__(self) -> Mailbox[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    def close(self) -> None:
        """Refuse further sends; receivers drain what is queued, then get `anyio.EndOfStream`
        (async iteration ends). Waiting senders get `anyio.ClosedResourceError`. Idempotent."""
        self._closed = True
        while self._receivers:
            self._receivers.popleft().set()
        while self._senders:
            self._senders.popleft().set()

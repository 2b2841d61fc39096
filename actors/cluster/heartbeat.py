"""The replica's heartbeat: what must happen every `[cluster] heartbeat`, in two loops.

Liveness (`live`), on a schedule of its own:
- Write this replica's row in the membership table and read the live replicas
  (`actors.cluster.membership`), reported to `on_members` (the `cluster_replicas_live` gauge;
  sharded replicas recompute their share of the checks from it, `actors.cluster.ownership`).
  The membership's store is meant to be a connection of its own (`actors.store.dedicated`): on
  a loaded replica the shared store's connections are busy with history writes, and a row
  written behind them ages past the 3 heartbeats after which peers count the replica dead.
- Between beats, when a live peer's last beat is so old that it will count as dead before this
  replica's next beat, the membership table is read again at that moment (`Membership.read`),
  so a dead replica's share moves 3 of its heartbeats after its last beat, not up to one more
  later.

The rest (`chores`), on the same period but in a loop of its own, so that however long it takes
it never delays a liveness beat:
- Renew the leases of the outbox rows this replica has claimed (a lease is 3 heartbeats, so a
  replica that misses two beats keeps its claims, and a dead one loses them 3 beats after its
  last renewal: then another replica sends them).
- Refresh the silences from the store, so a silence created through another replica's API is
  listed by this one's API within a heartbeat (routing already refreshes before every flush).
- Then `after_beat` (sharded replicas: read the other replicas' check results).

A store error is logged and the loop goes on: the next beat tries again (leases run on
meanwhile, which is what a lease is for; a replica that cannot write its row keeps its last
list of members, hence its share). Each loop starts a round every `interval` seconds; a round
that takes longer than that is followed by the next at once, never by several.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

from actors.cluster.membership import Member, Membership
from actors.notify.outbox import Outbox
from actors.routing.silencing import Silences
from actors.store import StoreError

__all__ = ["Heartbeat"]

_AFTER_DEATH = 0.005  # seconds after a peer's death time at which the table is read again


class Heartbeat:
    """Writes this replica's membership row, renews delivery claims and refreshes silences every
    `interval` seconds (see the module docstring).

    Args:
        interval: seconds between beats (`[cluster] heartbeat`).
        outbox: the outbox whose claims this replica renews.
        silences: the process's silences.
        logger: where failed beats are logged.
        membership: this replica's membership row (None: not written).
        on_members: called with the live members after each beat or read of them.
        after_beat: awaited at the end of every round of chores (its store errors are logged
            like the others').
    """

    def __init__(
        self,
        *,
        interval: float,
        outbox: Outbox,
        silences: Silences,
        logger: logging.Logger | None = None,
        membership: Membership | None = None,
        on_members: Callable[[list[Member]], None] | None = None,
        after_beat: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._after_beat = after_beat
        self._read_at = 0.0  # event-loop time of the last membership read
        self._interval = interval
        self.membership = membership
        self._on_members = on_members
        self._outbox = outbox
        self._silences = silences
        self._log = logger or logging.getLogger("blipee.cluster")
        self.beats = 0
        """Rounds of chores done (claims, silences, `after_beat`)."""
        self.lives = 0
        """Membership rows written."""

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Beat until cancelled, liveness and chores in loops of their own (started at once);
        then leave the membership table (bounded by one heartbeat: a replica that cannot reach
        the database ages out instead)."""
        task_status.started()
        try:
            async with trio.open_nursery() as nursery:
                if self.membership is not None:
                    nursery.start_soon(self._keep_alive)
                nursery.start_soon(self._keep_up)
        finally:
            if self.membership is not None:
                with trio.move_on_after(self._interval) as scope:
                    scope.shield = True
                    try:
                        await self.membership.leave()
                    except StoreError as exc:
                        self._log.warning("cannot leave the membership table: %s", exc)

    async def _keep_alive(self) -> None:
        """The liveness loop: `live` at a fixed rate, the members watched in between."""
        due = trio.current_time()
        while True:
            await self.live()
            # A fixed rate (a slow beat does not stretch the period toward the 3 beats after
            # which peers count this replica dead); one that overran starts the next at once.
            due = max(due + self._interval, trio.current_time())
            await self._watch_until(due)

    async def _keep_up(self) -> None:
        """The chores' loop: `chores` at a fixed rate."""
        due = trio.current_time()
        while True:
            await self.chores()
            due = max(due + self._interval, trio.current_time())
            await trio.sleep_until(due)

    async def _watch_until(self, due: float) -> None:
        """Sleep until `due`; but when a peer would count as dead before that (it missed its
        beats), read the members again at that moment, so its share moves 3 of its heartbeats
        after its last beat rather than up to one of ours later."""
        while self.membership is not None:
            death = self.membership.next_death()
            if death is None:
                break
            at = self._read_at + death + _AFTER_DEATH
            if at >= due:
                break
            await trio.sleep_until(at)
            try:
                members = await self.membership.read()
            except StoreError as exc:
                self._log.warning("cannot read the membership table: %s", exc)
                break
            self._read_at = trio.current_time()
            if self._on_members is not None:
                self._on_members(members)
        await trio.sleep_until(due)

    async def beat(self) -> None:
        """One whole beat, in order: `live`, then `chores`. Never raises a store error
        (logged)."""
        await self.live()
        await self.chores()

    async def live(self) -> None:
        """Write this replica's membership row and report the live members to `on_members`
        (nothing without a membership). Never raises a store error (logged; the members and
        the share stay as last read)."""
        if self.membership is None:
            return
        try:
            members = await self.membership.beat()
        except StoreError as exc:
            self._log.warning("cannot write this replica's heartbeat: %s", exc)
            return
        self._read_at = trio.current_time()
        self.lives += 1
        if self._on_members is not None:
            self._on_members(members)

    async def chores(self) -> None:
        """Renew the claims, refresh the silences, then `after_beat`. Never raises a store
        error (logged)."""
        try:
            await self._outbox.renew()
        except StoreError as exc:
            self._log.warning("cannot renew delivery claims: %s", exc)
        try:
            await self._silences.refresh()
        except StoreError as exc:
            self._log.warning("cannot refresh silences: %s", exc)
        if self._after_beat is not None:
            try:
                await self._after_beat()
            except StoreError as exc:
                self._log.warning("cannot read the shared state after the beat: %s", exc)
        self.beats += 1

"""The replica's heartbeat: what must happen every `[cluster] heartbeat`.

- Renew the leases of the outbox rows this replica has claimed (a lease is 3 heartbeats, so a
  replica that misses two beats keeps its claims, and a dead one loses them 3 beats after its
  last renewal: then another replica sends them).
- Refresh the silences from the store, so a silence created through another replica's API is
  listed by this one's API within a heartbeat (routing already refreshes before every flush).
- Write this replica's row in the membership table and read the live replicas
  (`actors.cluster.membership`), reported to `on_members` (the `cluster_replicas_live` gauge;
  sharded replicas recompute their share of the checks from it, `actors.cluster.ownership`).
- Then `after_beat` (sharded replicas: read the other replicas' check results).

Between beats, when a live peer's last beat is so old that it will count as dead before this
replica's next beat, the membership table is read again at that moment (`Membership.read`), so
a dead replica's share moves 3 of its heartbeats after its last beat, not up to one more later.

A store error is logged and the beat goes on: the next one tries again (leases run on meanwhile,
which is what a lease is for). Beats start every `interval` seconds; a beat that takes longer
than that is followed by the next at once, never by several.
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
    """Renews delivery claims and refreshes silences every `interval` seconds.

    Args:
        interval: seconds between beats (`[cluster] heartbeat`).
        outbox: the outbox whose claims this replica renews.
        silences: the process's silences.
        logger: where failed beats are logged.
        membership: this replica's membership row (None: not written).
        on_members: called with the live members after each beat that read them.
        after_beat: awaited at the end of every beat (its store errors are logged like the
            beat's).
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

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Beat until cancelled (started at once); then leave the membership table (bounded by
        one heartbeat: a replica that cannot reach the database ages out instead)."""
        task_status.started()
        try:
            due = trio.current_time()
            while True:
                await self.beat()
                # A fixed rate (a slow beat does not stretch the period toward the 3 beats after
                # which peers count this replica dead); one that overran starts the next at once.
                due = max(due + self._interval, trio.current_time())
                await self._watch_until(due)
        finally:
            if self.membership is not None:
                with trio.move_on_after(self._interval) as scope:
                    scope.shield = True
                    try:
                        await self.membership.leave()
                    except StoreError as exc:
                        self._log.warning("cannot leave the membership table: %s", exc)

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
        """One beat: membership, renew, refresh, then `after_beat`. Never raises a store error
        (logged)."""
        if self.membership is not None:
            try:
                members = await self.membership.beat()
            except StoreError as exc:
                self._log.warning("cannot write this replica's heartbeat: %s", exc)
            else:
                self._read_at = trio.current_time()
                if self._on_members is not None:
                    self._on_members(members)
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

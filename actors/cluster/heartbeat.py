"""The replica's heartbeat: what must happen every `[cluster] heartbeat`.

- Renew the leases of the outbox rows this replica has claimed (a lease is 3 heartbeats, so a
  replica that misses two beats keeps its claims, and a dead one loses them 3 beats after its
  last renewal: then another replica sends them).
- Refresh the silences from the store, so a silence created through another replica's API is
  listed by this one's API within a heartbeat (routing already refreshes before every flush).

A store error is logged and the beat goes on: the next one tries again (leases run on meanwhile,
which is what a lease is for). The loop is a plain sleep between beats: a beat that takes long
delays the next rather than piling up.
"""

from __future__ import annotations

import logging

import trio

from actors.notify.outbox import Outbox
from actors.routing.silencing import Silences
from actors.store import StoreError

__all__ = ["Heartbeat"]


class Heartbeat:
    """Renews delivery claims and refreshes silences every `interval` seconds.

    Args:
        interval: seconds between beats (`[cluster] heartbeat`).
        outbox: the outbox whose claims this replica renews.
        silences: the process's silences.
        logger: where failed beats are logged.
    """

    def __init__(
        self,
        *,
        interval: float,
        outbox: Outbox,
        silences: Silences,
        logger: logging.Logger | None = None,
    ) -> None:
        self._interval = interval
        self._outbox = outbox
        self._silences = silences
        self._log = logger or logging.getLogger("blipee.cluster")
        self.beats = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Beat until cancelled (started at once)."""
        task_status.started()
        while True:
            await self.beat()
            await trio.sleep(self._interval)

    async def beat(self) -> None:
        """One beat: renew, then refresh. Never raises a store error (it is logged)."""
        try:
            await self._outbox.renew()
        except StoreError as exc:
            self._log.warning("cannot renew delivery claims: %s", exc)
        try:
            await self._silences.refresh()
        except StoreError as exc:
            self._log.warning("cannot refresh silences: %s", exc)
        self.beats += 1

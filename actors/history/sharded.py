"""`ShardedHistory`: what a sharded replica's status page reads of the check history.

Each check is read where its runs are known best: from this replica's `HistoryRecorder` when
the replica runs it (or before any assignment), and from the shared history as `RemoteHistory`
holds it when another replica runs it. Until `RemoteHistory` has loaded a check that just moved
away (its next refresh), the recorder's view of it (its runs here until the move) is shown.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from actors.history.recorder import HistoryRecorder
from actors.history.remote import RemoteHistory
from actors.history.repository import StoredResult
from actors.history.rollup import Bucket, Incident, Window

__all__ = ["ShardedHistory"]


class ShardedHistory:
    """Routes each check's reads to the recorder or to the remote history (see the module
    docstring). Implements the status page's `HistoryReader`.

    Args:
        local: this replica's recorder.
        remote: the history of the checks run elsewhere.
        elsewhere: whether another replica runs a check now (False before any assignment).
    """

    def __init__(
        self,
        *,
        local: HistoryRecorder,
        remote: RemoteHistory,
        elsewhere: Callable[[str], bool],
    ) -> None:
        self._local = local
        self._remote = remote
        self._elsewhere = elsewhere

    def _remote_for(self, check: str) -> bool:
        return self._elsewhere(check) and self._remote.holds(check)

    def columns(
        self, check: str, window: Window, now: float
    ) -> tuple[list[int], list[int], list[int], list[int]]:
        """The window's slots as columns: runs, failures, latency sum and max (us)."""
        if self._remote_for(check):
            return self._remote.columns(check, window, now)
        return self._local.columns(check, window, now)

    def totals(self, check: str, window: Window, now: float) -> tuple[int, int]:
        """(runs, failures) over the window."""
        if self._remote_for(check):
            return self._remote.totals(check, window, now)
        return self._local.totals(check, window, now)

    def shape(self, check: str, window: Window) -> int:
        """Changes whenever the check's uptime bar over the window shows something new, also
        when the check's reads move from one source to the other."""
        if self._remote_for(check):
            return 2 * self._remote.shape(check, window) + 1
        return 2 * self._local.shape(check, window)

    def open_incidents(self) -> Mapping[str, Incident]:
        """The incidents going on now, by check: each from the source its check is read from
        (the recorder's incident of a check that moved away is not shown once it is read
        from the shared history)."""
        found = {
            name: incident
            for name, incident in self._local.open_incidents().items()
            if not self._remote_for(name)
        }
        for name, incident in self._remote.open_incidents().items():
            if self._remote_for(name):
                found[name] = incident
        return found

    async def buckets(self, check: str, window: Window, now: float) -> list[Bucket]:
        """The check's buckets over the window, oldest first.

        Raises:
            actors.store.errors.StoreError: the query failed.
        """
        if self._remote_for(check):
            return await self._remote.buckets(check, window, now)
        return await self._local.buckets(check, window, now)

    async def results(self, check: str, limit: int) -> list[StoredResult]:
        """The check's newest runs, newest first.

        Raises:
            actors.store.errors.StoreError: the query failed.
        """
        if self._remote_for(check):
            return await self._remote.results(check, limit)
        return await self._local.results(check, limit)

    async def incidents(self, check: str, since: float) -> list[Incident]:
        """The check's incidents open or ended after `since`, newest first.

        Raises:
            actors.store.errors.StoreError: the query failed.
        """
        if self._remote_for(check):
            return await self._remote.incidents(check, since)
        return await self._local.incidents(check, since)

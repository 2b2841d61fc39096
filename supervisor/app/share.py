"""Sharded replicas: run the checks this replica owns, and show the others' from the store.

`CheckShare` is the `share` child of the checks subsystem (after the `checks` supervisor, so it
starts once that runs and stops before it). Whenever this replica's share changes
(`actors.cluster.ownership.Ownership`, recomputed at every heartbeat) it brings the `checks`
supervisor's children in line: a check it no longer owns is stopped at once (the in-flight probe
is cancelled) and its local results dropped; a check it now owns is started. The rules follow
the same change synchronously (the app wires `RulesActor.release` / `adopt`), before any check
is started or stopped here, and so does the check history (`HistoryRecorder.release` of the
lost checks once stopped, `take_over` of the gained ones before they start: their history is
reloaded from the shared one before their first run here is recorded).

`refresh` (every heartbeat, after the beat) reads the newest stored run of every check another
replica runs from the shared history and hands them to the health state, so `/api/health` and
`/api/v1/checks` of any replica cover every check (a remote result is as old as the owner's last
history flush, `[history] flush_interval`, plus a heartbeat; its `details.replica` names the
owner). With `[history] enabled = false` there is nothing to read: those checks show as pending
here, and `GET /api/v1/cluster` says where each runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import trio

from actors.cluster.ownership import Change, Ownership
from actors.history import HistoryRecorder, HistoryRepository
from actors.history.repository import StoredResult
from actors.models import CheckResult, CheckStatus
from actors.state import HealthState
from supervisor.runtime import ChildSpec, Supervisor

__all__ = ["CHECK_PREFIX", "START_BATCH", "CheckShare", "remote_result"]

CHECK_PREFIX = "check:"

START_BATCH = 250
"""Checks started in one supervisor call when a share grows: building a check actor costs about
half a millisecond of CPU, so a batch holds the event loop (the heartbeat, the API) for a
fraction of a second, not for seconds as thousands built at once would."""


def remote_result(stored: StoredResult, *, owner: str | None, critical: bool) -> CheckResult:
    """A run another replica stored, as this replica's health state shows it."""
    status = CheckStatus(stored.status)
    return CheckResult(
        check=stored.check,
        status=status,
        message=stored.message,
        latency_seconds=stored.latency_us / 1e6,
        timestamp=stored.at,
        observed=status,
        critical=critical,
        details={"replica": owner} if owner else {},
    )


class CheckShare:
    """Keeps the `checks` supervisor running exactly the owned checks. See the module doc.

    Args:
        ownership: this replica's share (its listener is registered here).
        supervisor: the nested `checks` supervisor.
        spec: the child spec of a configured check, by name (None: no longer configured).
        health: the health state (local results dropped, remote ones set).
        critical: whether a check is critical, by name.
        repository: the shared check history (None: `[history] enabled = false`).
        logger: where checks that cannot start are logged.
        history: this replica's check history recorder (None: `[history] enabled = false`).

    Attributes:
        lock: held while the children change (a reload holds it too).
    """

    def __init__(
        self,
        *,
        ownership: Ownership,
        supervisor: Supervisor,
        spec: Callable[[str], ChildSpec | None],
        health: HealthState,
        critical: Callable[[str], bool],
        repository: HistoryRepository | None,
        logger: logging.Logger,
        history: HistoryRecorder | None = None,
    ) -> None:
        self._ownership = ownership
        self._supervisor = supervisor
        self._spec = spec
        self._health = health
        self._critical = critical
        self._repository = repository
        self._log = logger
        self._history = history
        self._changed = trio.Event()
        self.lock = trio.Lock()
        ownership.add_listener(self._on_change)

    def _on_change(self, change: Change) -> None:
        self._changed.set()

    def running(self) -> set[str]:
        """The checks whose actors are children of the `checks` supervisor now."""
        return {
            info.id.removeprefix(CHECK_PREFIX)
            for info in self._supervisor.which_children()
            if info.id.startswith(CHECK_PREFIX)
        }

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Reconcile at start and after every change of the share, until cancelled."""
        task_status.started()
        while True:
            self._changed = trio.Event()  # a change during the reconcile runs it again
            await self.reconcile()
            await self._changed.wait()

    async def reconcile(self) -> None:
        """Stop the checks not owned any more, then start the owned ones not running: the lost
        ones in one supervisor call, the gained ones in calls of `START_BATCH` (the children of
        a call launched or stopped at once: thousands of checks a replica takes over at its
        first beat are not started one by one)."""
        async with self.lock:
            owned = self._ownership.owned
            running = self.running()
            lost = running - owned
            if lost:
                await self._supervisor.delete_children(CHECK_PREFIX + name for name in lost)
                self._health.release(lost)
                if self._history is not None:
                    self._history.release(lost)
                self._log.info("checks handed over", extra={"checks": sorted(lost)})
            wanted = [
                name for name in self._ownership.checks if name in owned and name not in running
            ]
            if wanted and self._history is not None:
                self._history.take_over(wanted)
            started: list[str] = []
            for at in range(0, len(wanted), START_BATCH):
                started += await self._start(wanted[at : at + START_BATCH])
            if started:
                self._log.info("checks taken over", extra={"checks": started})

    async def _start(self, names: list[str]) -> list[str]:
        """Start the checks `names` together; the names of those that started."""
        specs = [spec for name in names if (spec := self._spec(name)) is not None]
        if not specs:
            return []
        failed = await self._supervisor.start_children(specs)
        for error in failed.values():  # a probe that cannot start: logged, the rest run
            self._log.error(
                "check %s cannot start: %s", error.child.removeprefix(CHECK_PREFIX), error
            )
        return [s.id.removeprefix(CHECK_PREFIX) for s in specs if s.id not in failed]

    async def refresh(self) -> None:
        """Show the latest stored result of every check another replica runs.

        Raises:
            StoreError: the history cannot be read (the last remote results stay).
        """
        ownership = self._ownership
        if not ownership.assigned:
            return
        elsewhere = [name for name in ownership.checks if not ownership.owns(name)]
        results: dict[str, CheckResult] = {}
        if self._repository is not None:
            stored: dict[str, StoredResult] = {}
            asked: set[str] = set()
            # Only the checks run elsewhere are read (each its newest run, by index). A reload
            # or a beat may move checks during a read: go by the share after it, reading those
            # that moved here meanwhile (a few names) before anything is shown.
            while missing := [name for name in elsewhere if name not in asked]:
                stored.update(await self._repository.latest(missing))
                asked.update(missing)
                elsewhere = [name for name in ownership.checks if not ownership.owns(name)]
            for name in elsewhere:
                found = stored.get(name)
                if found is not None:
                    results[name] = remote_result(
                        found, owner=ownership.owner_of(name), critical=self._critical(name)
                    )
        self._health.set_remote(elsewhere, results)

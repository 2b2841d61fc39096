"""`CheckShare.reconcile` (sharded replicas): the checks a replica takes over or hands over at
a beat start or stop together, in a few scheduler passes, not one (or more) per check."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
import trio

from actors.clock import FixedClock
from actors.cluster.ownership import Ownership
from actors.history import HistoryConfig, HistoryRecorder, HistoryRepository
from actors.state import HealthState
from actors.store import Database
from supervisor.app.share import CHECK_PREFIX, START_BATCH, CheckShare
from supervisor.runtime import ChildSpec, ChildStartError, Supervisor

CHECKS = 2000


class _Passes(trio.abc.Instrument):
    """Counts the scheduler's passes (each pass ends in one wait for I/O)."""

    def __init__(self) -> None:
        self.count = 0

    def before_io_wait(self, timeout: float) -> None:
        self.count += 1


async def _check(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    task_status.started()
    await trio.sleep_forever()


async def _broken(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    raise OSError("no such device")


def _share(names: list[str], supervisor: Supervisor, broken: str = "") -> CheckShare:
    ownership = Ownership(replica="a", checks=names)
    return CheckShare(
        ownership=ownership,
        supervisor=supervisor,
        spec=lambda name: ChildSpec(CHECK_PREFIX + name, _broken if name == broken else _check),
        health=HealthState(checks=dict.fromkeys(names, True)),
        critical=lambda name: True,
        repository=None,
        logger=logging.getLogger("test.share"),
    )


async def test_checks_taken_over_and_handed_over_start_and_stop_together() -> None:
    names = [f"c{i}" for i in range(CHECKS)]
    supervisor = Supervisor([], name="checks", ordered=False)
    share = _share(names, supervisor)
    ownership = share._ownership
    passes = _Passes()
    batches: list[int] = []
    start_children = supervisor.start_children

    async def counted(specs: Iterable[ChildSpec]) -> dict[str, ChildStartError]:
        batch = list(specs)
        batches.append(len(batch))
        return await start_children(batch)

    supervisor.start_children = counted  # type: ignore[method-assign]
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        trio.lowlevel.add_instrument(passes)
        try:
            ownership.update(["a"])  # alone at its first beat: every check is its own
            await share.reconcile()
            assert share.running() == set(names)
            took_all = passes.count
            ownership.update(["a", "b"])  # b joined: about half move to b
            await share.reconcile()
            handed_over = passes.count - took_all
        finally:
            trio.lowlevel.remove_instrument(passes)
        assert share.running() == ownership.owned
        assert 0 < len(ownership.owned) < CHECKS
        # Started or stopped one after the other, each check would cost at least one pass.
        assert max(took_all, handed_over) < CHECKS / 50
        # In batches, so that building thousands of check actors does not hold the loop (the
        # heartbeat, the API) for seconds.
        assert batches == [START_BATCH] * (CHECKS // START_BATCH)
        await supervisor.stop()


async def test_a_check_that_cannot_start_is_logged_and_the_others_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    names = [f"c{i}" for i in range(10)]
    supervisor = Supervisor([], name="checks", ordered=False)
    share = _share(names, supervisor, broken="c3")
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        share._ownership.update(["a"])
        with caplog.at_level(logging.INFO, logger="test.share"):
            await share.reconcile()
        assert share.running() == set(names) - {"c3"}
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1
        assert errors[0].startswith("check c3 cannot start:")
        taken = [r for r in caplog.records if r.getMessage() == "checks taken over"]
        assert [getattr(r, "checks", None) for r in taken] == [[n for n in names if n != "c3"]]
        await supervisor.stop()


class _History(HistoryRecorder):
    """Records the hand-overs the share reports, with the checks running at each."""

    def __init__(self, running: Callable[[], set[str]], path: Path) -> None:
        super().__init__(
            repository=HistoryRepository(Database(path, offload=False)),
            config=HistoryConfig(),
            clock=FixedClock(0.0),
        )
        self.calls: list[tuple[str, set[str], set[str]]] = []
        self._running = running

    def take_over(self, checks: Iterable[str]) -> None:
        self.calls.append(("take_over", set(checks), self._running()))

    def release(self, checks: Iterable[str]) -> None:
        self.calls.append(("release", set(checks), self._running()))


async def test_the_history_takes_gained_checks_over_before_they_start(tmp_path: Path) -> None:
    names = [f"c{i}" for i in range(20)]
    supervisor = Supervisor([], name="checks", ordered=False)
    share = _share(names, supervisor)
    history = _History(share.running, tmp_path / "h.db")
    share._history = history
    ownership = share._ownership
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        ownership.update(["a"])
        await share.reconcile()
        ownership.update(["a", "b"])
        await share.reconcile()
        lost = set(names) - ownership.owned
        ownership.update(["a"])
        await share.reconcile()
        # Taken over before any of them runs; released once they are stopped.
        assert history.calls == [
            ("take_over", set(names), set()),
            ("release", lost, ownership.owned - lost),
            ("take_over", lost, ownership.owned - lost),
        ]
        await supervisor.stop()

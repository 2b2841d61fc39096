"""`CheckShare.refresh` (sharded replicas): the checks shown as run elsewhere are those of the
share when the stored results arrive, not of the share before the read (a beat or a reload can
move checks meanwhile)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, cast

import trio

from actors.cluster.ownership import Ownership
from actors.history.repository import HistoryRepository, StoredResult
from actors.state import HealthState
from supervisor.app.share import CheckShare
from supervisor.runtime import Supervisor


class _SlowHistory:
    """A history whose read of the latest results waits until released (notes what it was
    asked)."""

    def __init__(self, results: dict[str, StoredResult]) -> None:
        self.results = results
        self.reading = trio.Event()
        self.release = trio.Event()
        self.asked: list[list[str]] = []

    async def latest(self, checks: Iterable[str]) -> dict[str, StoredResult]:
        checks = list(checks)
        self.asked.append(checks)
        self.reading.set()
        await self.release.wait()
        return {name: self.results[name] for name in checks if name in self.results}


async def test_a_check_taken_over_during_the_read_is_not_shown_as_run_elsewhere() -> None:
    names = [f"c{i}" for i in range(12)]
    ownership = Ownership(replica="a", checks=names)
    ownership.update(["a", "b"])
    gained = next(name for name in names if not ownership.owns(name))  # b's, until b dies
    history = _SlowHistory({n: StoredResult(n, 1.0, "fail", 10, "by b") for n in names})
    health = HealthState(checks=dict.fromkeys(names, True))
    share = CheckShare(
        ownership=ownership,
        supervisor=cast("Supervisor", None),
        spec=lambda name: None,
        health=health,
        critical=lambda name: True,
        repository=cast("HistoryRepository", cast("Any", history)),
        logger=logging.getLogger("test"),
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(share.refresh)
        await history.reading.wait()
        ownership.update(["a"])  # b is gone: every check is a's now
        history.release.set()
    assert health.current(gained) is None  # not b's stale result: a runs it now


async def test_only_checks_run_elsewhere_are_read_and_those_handed_over_meanwhile_too() -> None:
    names = [f"c{i}" for i in range(12)]
    ownership = Ownership(replica="a", checks=names)
    ownership.update(["a", "b"])
    history = _SlowHistory({n: StoredResult(n, 1.0, "pass", 10, "stored") for n in names})
    health = HealthState(checks=dict.fromkeys(names, True))
    share = CheckShare(
        ownership=ownership,
        supervisor=cast("Supervisor", None),
        spec=lambda name: None,
        health=health,
        critical=lambda name: True,
        repository=cast("HistoryRepository", cast("Any", history)),
        logger=logging.getLogger("test"),
    )
    b_s = [name for name in names if not ownership.owns(name)]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(share.refresh)
        await history.reading.wait()
        ownership.update(["a", "b", "c"])  # c takes some of a's checks during the read
        history.release.set()
    handed = [name for name in names if not ownership.owns(name) and name not in b_s]
    assert handed
    assert history.asked[0] == b_s  # not a's own checks
    assert history.asked[1:] == [handed]
    for name in names:
        shown = health.current(name)
        assert (shown is not None) == (not ownership.owns(name)), name

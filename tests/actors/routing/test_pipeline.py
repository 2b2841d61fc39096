"""Rules -> routing -> notify's durable outbox, with one SQLite database, across a restart.

A crash after a page must neither page again nor lose the resolution: the rules restore their
firing instance (same start), routing its notification log, and the outbox ignores a key it has.
"""

from __future__ import annotations

from pathlib import Path

import trio
from trio.testing import MockClock

from actors.clock import VirtualClock
from actors.models import AlertEvent, AlertStatus
from actors.notify.outbox import Outbox
from actors.routing.actor import RoutingActor
from actors.routing.config import RoutingConfig
from actors.routing.persist import SqliteRoutingStore
from actors.rules.actor import RulesActor
from actors.rules.config import RuleConfig
from actors.rules.persist import SqliteAlertStateStore
from actors.store import Database
from actors.telemetry.store import MetricStore

RULE = RuleConfig.model_validate(
    {
        "id": "db-down",
        "name": "Database Connection Issues",
        "severity": "critical",
        "channels": ["email", "pagerduty"],
        "condition": {
            "metric": "health_check_up",
            "labels": {"check": "database"},
            "operator": "<",
            "threshold": 1,
        },
    }
)


class Process:
    """One life of the monitor's alerting part, over a shared database file."""

    def __init__(self, db: Database, clock: VirtualClock) -> None:
        self.store = MetricStore(clock=clock)
        self.store.declare("health_check_up", "gauge", "Up.", ("check",))
        self.outbox = Outbox(database=db, clock=clock)
        send, receive = trio.open_memory_channel[AlertEvent](100)
        self.rules = RulesActor(
            rules=[RULE],
            store=self.store,
            sink=send,
            clock=clock,
            state=SqliteAlertStateStore(database=db),
        )
        self.routing = RoutingActor(
            config=RoutingConfig.model_validate({"group_interval": "10s"}),
            events=receive,
            outbox=self.outbox,
            clock=clock,
            store=SqliteRoutingStore(database=db),
        )

    async def start(self, nursery: trio.Nursery) -> None:
        await nursery.start(self.routing.run)
        await nursery.start(self.rules.run)


async def _rows(outbox: Outbox, channel: str) -> list[tuple[str, str]]:
    return [(e.status.value, e.key) for e in await outbox.pending(channel)]


async def test_page_once_and_resolve_across_a_restart(
    tmp_path: Path, autojump_clock: MockClock
) -> None:
    db = Database(tmp_path / "monitor.db", synchronous="NORMAL", offload=False)
    clock = VirtualClock()
    first = Process(db, clock)
    async with trio.open_nursery() as nursery:
        await first.start(nursery)
        first.store.record("health_check_up", 0, {"check": "database"})
        await trio.sleep(0.01)
        email = await _rows(first.outbox, "email")
        assert [status for status, _ in email] == ["firing"]
        assert [s for s, _ in await _rows(first.outbox, "pagerduty")] == ["firing"]
        nursery.cancel_scope.cancel()  # the process dies

    second = Process(db, clock)
    async with trio.open_nursery() as nursery:
        await second.start(nursery)
        second.store.record("health_check_up", 0, {"check": "database"})
        await trio.sleep(30)
        assert await _rows(second.outbox, "email") == email  # not paged again
        second.store.record("health_check_up", 1, {"check": "database"})
        await trio.sleep(11)
        rows = await _rows(second.outbox, "email")
        assert [s for s, _ in rows] == ["firing", "resolved"]
        (resolved,) = [
            e for e in await second.outbox.pending("email") if e.status.value == "resolved"
        ]
        alert = resolved.notification().alerts[0]
        assert alert.status is AlertStatus.RESOLVED
        nursery.cancel_scope.cancel()
    db.close()

"""The audit repository on both engines (SQLite and PostgreSQL): entries written, read newest
first after a restart, logged as one structured line each, and trimmed to the newest `keep`."""

from __future__ import annotations

import logging

import pytest

from actors.clock import FixedClock
from actors.web.audit import AuditLog
from tests.conftest import Stores


async def test_entries_survive_a_restart_newest_first_and_are_trimmed(
    stores: Stores, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="test.audit")
    clock = FixedClock(1_767_225_600.0)
    logger = logging.getLogger("test.audit")
    audit = AuditLog(database=stores.open(), clock=clock, logger=logger, keep=150)
    for n in range(250):
        clock.advance(1.0)
        await audit.record("silence.create", token="ops", address="10.0.0.1", target=f"s{n}")
    await audit.record("auth.failed", token=None, address=None, detail="x" * 1000)

    reopened = AuditLog(database=stores.open(), clock=clock, logger=logger, keep=150)
    newest = await reopened.recent(3)
    assert [(e.action, e.token, e.address, e.target) for e in newest] == [
        ("auth.failed", "none", "unknown", ""),
        ("silence.create", "ops", "10.0.0.1", "s249"),
        ("silence.create", "ops", "10.0.0.1", "s248"),
    ]
    assert newest[0].at == clock.now()
    assert len(newest[0].detail) == 500
    kept = await reopened.recent(1000)
    assert 150 <= len(kept) < 250  # trimmed every 100 writes to the newest 150
    lines = [r for r in caplog.records if r.name == "test.audit"]
    assert len(lines) == 251
    assert getattr(lines[0], "audit_target", None) == "s0"

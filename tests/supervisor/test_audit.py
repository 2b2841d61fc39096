"""The audit log through a running App on its real listener: silences created and expired,
reloads, test alerts and failed authentications are stored (the database), logged as one
structured line each, and listed by GET /api/v1/audit; failed authentications are limited per
address (429 with Retry-After)."""

from __future__ import annotations

import json
import logging
import os
import signal
from pathlib import Path

import httpx
import pytest
import trio

from actors.clock import FixedClock
from actors.web.audit import AuditLog, FailureLimiter
from supervisor.app import App
from supervisor.app.lifecycle import serve
from supervisor.config import load_config

CONFIG = """
[server]
listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:0"

[security]
auth_failures = {failures}
auth_failure_window = "1m"

[[security.tokens]]
name = "silencer"
token = "t-silence"
scopes = ["silences:write", "alerts:test"]

[[security.tokens]]
name = "ops"
token = "t-ops"
scopes = ["read", "config:reload"]

[storage]
path = "{db}"

[[checks]]
name = "self"
kind = "self"
interval = "10s"
timeout = "1s"
critical = false

[channels.console]
kind = "console"
"""

JSON = {"Content-Type": "application/json"}


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **JSON}


def _app(tmp_path: Path, failures: int) -> App:
    path = tmp_path / "c.toml"
    path.write_text(CONFIG.format(db=tmp_path / "m.db", failures=failures))
    return App(load_config(path, env={}), path=path, env={})


async def test_writes_and_failures_are_audited(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="blipee.audit")
    app = _app(tmp_path, failures=100)
    async with trio.open_nursery() as nursery:
        await nursery.start(app.run)
        base = f"http://127.0.0.1:{app.api_server.port}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            body = json.dumps({"matchers": ["alertname=x"], "duration": "1h"})
            created = await http.post("/api/v1/silences", content=body, headers=_auth("t-silence"))
            assert created.status_code == 201
            sid = created.json()["id"]
            expired = await http.delete(f"/api/v1/silences/{sid}", headers=_auth("t-silence"))
            assert expired.status_code == 200
            tested = await http.post("/api/test-alert?channel=console", headers=_auth("t-silence"))
            assert tested.status_code == 200, tested.text
            assert (await http.post("/api/v1/reload", headers=_auth("t-ops"))).status_code == 200
            assert (await http.post("/api/v1/reload", headers=_auth("nope"))).status_code == 401
            assert (await http.post("/api/v1/reload", headers=JSON)).status_code == 401
            assert (
                await http.post("/api/v1/reload", headers=_auth("t-silence"))
            ).status_code == 403
            # Refused writes are audited as failures only; a 404 is not a change.
            missing = await http.delete("/api/v1/silences/nope", headers=_auth("t-silence"))
            assert missing.status_code == 404

            listed = await http.get("/api/v1/audit", headers=_auth("t-ops"))
            assert listed.status_code == 200, listed.text
            entries = listed.json()["entries"]
            assert (await http.get("/api/v1/audit")).status_code == 401
            assert (await http.get("/api/v1/audit", headers=_auth("t-silence"))).status_code == 403
            assert (
                await http.get("/api/v1/audit?limit=0", headers=_auth("t-ops"))
            ).status_code == 400
        logger = logging.getLogger("t")
        stored = AuditLog(database=app.database, clock=FixedClock(), logger=logger)
        assert [e.to_json() for e in (await stored.recent(100))[2:]] == entries  # stored
        await app.stop()

    seen = [(e["action"], e["token"], e["target"]) for e in reversed(entries)]
    assert seen == [
        ("silence.create", "silencer", sid),
        ("silence.expire", "silencer", sid),
        ("test_alert", "silencer", "console"),
        ("reload", "ops", ""),
        ("auth.failed", "none", "/api/v1/reload"),
        ("auth.failed", "none", "/api/v1/reload"),
        ("auth.failed", "silencer", "/api/v1/reload"),
    ]
    assert {e["address"] for e in entries} == {"127.0.0.1"}
    assert "t-silence" not in json.dumps(entries)
    lines = [r for r in caplog.records if r.name == "blipee.audit"]
    later = [("auth.failed", "none"), ("auth.failed", "silencer")]  # the refused audit reads
    assert [(getattr(r, "audit_action", ""), getattr(r, "audit_token", "")) for r in lines] == [
        (a, t) for a, t, _ in seen
    ] + later


async def test_failed_authentications_are_limited_per_address(tmp_path: Path) -> None:
    app = _app(tmp_path, failures=3)
    async with trio.open_nursery() as nursery:
        await nursery.start(app.run)
        base = f"http://127.0.0.1:{app.api_server.port}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            for _ in range(3):
                assert (
                    await http.post("/api/v1/reload", headers=_auth("guess"))
                ).status_code == 401
            refused = await http.post("/api/v1/reload", headers=_auth("t-ops"))
            assert refused.status_code == 429
            assert 1 <= int(refused.headers["Retry-After"]) <= 60
            assert set(refused.json()) == {"error"}
            assert (await http.get("/api/v1/checks")).status_code == 429
            assert (await http.get("/api/health")).status_code == 429
            assert (await http.get("/api/health/live")).status_code == 200
            assert (await http.get("/api/health/ready")).status_code in (200, 503)
        await app.stop()


def test_the_limiter_counts_a_window_per_address() -> None:
    limiter = FailureLimiter(limit=3, window=60.0, max_addresses=2)
    for t in (0.0, 10.0, 20.0):
        assert limiter.retry_after("a", t) is None
        limiter.failed("a", t)
    assert limiter.retry_after("a", 30.0) == 30.0
    assert limiter.retry_after("b", 30.0) is None
    assert limiter.retry_after("a", 60.0) is None  # the first left the window
    limiter.failed("b", 61.0)
    limiter.failed("c", 62.0)
    assert limiter.tracked() == ("b", "c")  # at most two addresses: the least recent dropped
    assert FailureLimiter(limit=0, window=60.0).retry_after("a", 0.0) is None


async def test_a_reload_by_sighup_is_audited(tmp_path: Path) -> None:
    app = _app(tmp_path, failures=10)
    async with trio.open_nursery() as nursery:

        async def main(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            await serve(app, task_status=task_status)

        await nursery.start(main)
        assert app.web is not None
        audit = app.web.access.audit
        os.kill(os.getpid(), signal.SIGHUP)
        with trio.fail_after(10):
            while not await audit.recent(1):
                await trio.sleep(0.01)
        (entry,) = await audit.recent(10)
        assert (entry.action, entry.token, entry.address) == ("reload", "SIGHUP", "local")
        os.kill(os.getpid(), signal.SIGTERM)

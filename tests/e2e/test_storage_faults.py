"""Storage faults under a running monitor process: it keeps checking and answering probes,
readiness fails with the reason, and no notification is lost or doubled at the receiver.

PostgreSQL: the line to the database cut (a TCP proxy between the replica and the server) and
restored; connections killed with `pg_terminate_backend` under two replicas. SQLite: a file that
fails its integrity check at start, a database locked by another process at runtime, and a file
the process may not write (made writable again at runtime).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.e2e.harness import HttpPeer, Monitor, require_binary, wait_until
from tests.e2e.test_alert_flow import CONFIG as ALERT_CONFIG
from tests.e2e.test_alert_flow import HOOK_PATH, WEBHOOK_SECRET, _posts
from tests.e2e.test_replicas import CONFIG as REPLICA_CONFIG
from tests.postgres import SERVER
from tests.tcpproxy import TcpProxy


@pytest.fixture
def monitors() -> Iterator[list[Monitor]]:
    started: list[Monitor] = []
    try:
        yield started
    finally:
        for monitor in started:
            monitor.stop()


def _start(
    monitors: list[Monitor],
    path: Path,
    template: str,
    target: HttpPeer,
    receiver: HttpPeer,
    prefix: Sequence[str] = (),
    **kw: str,
) -> Monitor:
    path.write_text(template.format(target=target.url, receiver=receiver.url, hook=HOOK_PATH, **kw))
    monitor = Monitor(path, env={"E2E_WEBHOOK_SECRET": WEBHOOK_SECRET}, prefix=prefix)
    monitors.append(monitor)
    return monitor.start()


def _get(monitor: Monitor, path: str) -> httpx.Response:
    with httpx.Client(base_url=monitor.api, timeout=5.0) as api:
        return api.get(path)


def _ready(monitor: Monitor) -> tuple[int, list[str]]:
    answer = _get(monitor, "/api/health/ready")
    reasons: list[str] = answer.json().get("reasons", [])
    return answer.status_code, reasons


def _storage_reason(monitor: Monitor) -> str | None:
    status, reasons = _ready(monitor)
    found = [r for r in reasons if r.startswith("storage: ")]
    return found[0] if status == 503 and found else None


def _check_passes(monitor: Monitor) -> bool:
    return bool(_get(monitor, "/api/v1/checks/x").json().get("status") == "pass")


def _alerts(monitor: Monitor) -> list[Any]:
    alerts: list[Any] = _get(monitor, "/api/v1/alerts").json()["alerts"]
    return alerts


def _storage_errors(monitor: Monitor) -> float:
    with httpx.Client(timeout=5.0) as client:
        text = client.get(f"{monitor.metrics}/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("storage_errors_total{")
    )


def _query(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql.encode()).fetchall()


def _assert_once_each(database: str, receiver: HttpPeer) -> None:
    """Both notifications delivered, and the receiver got each exactly once."""
    wait_until(
        lambda: (
            _query(database, "SELECT state FROM notify_outbox ORDER BY id")
            == [("delivered",), ("delivered",)]
        ),
        "both notifications delivered",
    )
    assert len(_posts(receiver, "firing")) == 1
    assert len(_posts(receiver, "resolved")) == 1


def _alive(monitor: Monitor) -> bool:
    return monitor.proc is not None and monitor.proc.poll() is None


def test_a_postgresql_outage_is_ridden_out_late_never_lost_never_doubled(
    tmp_path: Path,
    database: str,
    target: HttpPeer,
    receiver: HttpPeer,
    monitors: list[Monitor],
) -> None:
    with TcpProxy("127.0.0.1", 5432) as proxy:
        url = database.replace(SERVER, f"postgresql://postgres@127.0.0.1:{proxy.port}")
        replica = _start(
            monitors, tmp_path / "r1.toml", REPLICA_CONFIG, target, receiver, url=url, replica="r1"
        )
        wait_until(lambda: _check_passes(replica), "check x to pass")
        wait_until(lambda: _ready(replica)[0] == 200, "readiness")
        proxy.cut()
        wait_until(lambda: _storage_reason(replica), "readiness to fail on storage")
        # The outage begins while PostgreSQL is away: checked, evaluated, not sendable yet.
        target.set_status(500)
        wait_until(lambda: _alerts(replica), "the alert to fire during the outage")
        wait_until(
            lambda: "cannot save alert state" in replica.log(), "the failed save to be logged"
        )
        assert _check_passes(replica) is False
        assert _get(replica, "/api/health/live").status_code == 200
        assert not _posts(receiver, "firing")
        proxy.restore()
        wait_until(lambda: _posts(receiver, "firing"), "the late firing POST", timeout=20)
        wait_until(lambda: _ready(replica)[0] == 200, "readiness once PostgreSQL is back")
        target.set_status(200)
        wait_until(lambda: _posts(receiver, "resolved"), "the resolved POST", timeout=20)
        _assert_once_each(database, receiver)
        assert _storage_errors(replica) > 0
        assert _alive(replica)
        assert "Traceback" not in replica.log()


def _terminate(database: str) -> int:
    name = database.rsplit("/", 1)[1]
    rows = _query(
        database,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        f" WHERE datname = '{name}' AND application_name LIKE 'blipee-monitor%'",
    )
    return len(rows)


def test_connections_killed_under_two_replicas_lose_and_double_nothing(
    tmp_path: Path,
    database: str,
    target: HttpPeer,
    receiver: HttpPeer,
    monitors: list[Monitor],
) -> None:
    running = [
        _start(
            monitors,
            tmp_path / f"{name}.toml",
            REPLICA_CONFIG,
            target,
            receiver,
            url=database,
            replica=name,
        )
        for name in ("r1", "r2")
    ]
    wait_until(lambda: all(_check_passes(m) for m in running), "check x to pass")
    assert _terminate(database) > 0
    target.set_status(500)
    wait_until(lambda: all(_alerts(m) for m in running), "every replica to fire")
    _terminate(database)
    wait_until(lambda: _posts(receiver, "firing"), "the firing POST", timeout=20)
    _terminate(database)
    target.set_status(200)
    wait_until(lambda: not any(_alerts(m) for m in running), "every replica to resolve")
    _terminate(database)
    wait_until(lambda: _posts(receiver, "resolved"), "the resolved POST", timeout=20)
    _assert_once_each(database, receiver)
    for monitor in running:
        assert _alive(monitor)
        assert "Traceback" not in monitor.log()


def _corrupt(path: Path) -> None:
    """Fill a table with pages of rows, then overwrite one of its inner pages with garbage."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("CREATE TABLE filler (id INTEGER PRIMARY KEY, body TEXT)")
        conn.executemany("INSERT INTO filler (body) VALUES (?)", [("x" * 500,) for _ in range(400)])
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
    finally:
        conn.close()
    with path.open("r+b") as raw:
        raw.seek(page_size * (pages - 20))
        raw.write(b"\xa5" * page_size)


def test_a_sqlite_file_failing_its_integrity_check_keeps_the_monitor_up_and_not_ready(
    tmp_path: Path, target: HttpPeer, receiver: HttpPeer, monitors: list[Monitor]
) -> None:
    db = tmp_path / "m.db"
    first = _start(monitors, tmp_path / "a.toml", ALERT_CONFIG, target, receiver, db=str(db))
    assert first.stop() == 0
    _corrupt(db)
    monitor = _start(monitors, tmp_path / "b.toml", ALERT_CONFIG, target, receiver, db=str(db))
    reason = wait_until(lambda: _storage_reason(monitor), "readiness to fail on storage")
    assert "integrity check failed" in reason
    wait_until(lambda: _check_passes(monitor), "check x to pass all the same")
    assert _get(monitor, "/api/health/live").status_code == 200
    assert "fails its integrity check" in monitor.log()
    assert "Traceback" not in monitor.log()


def test_a_locked_sqlite_database_fails_readiness_until_it_is_released(
    tmp_path: Path, target: HttpPeer, receiver: HttpPeer, monitors: list[Monitor]
) -> None:
    db = tmp_path / "m.db"
    monitor = _start(monitors, tmp_path / "m.toml", ALERT_CONFIG, target, receiver, db=str(db))
    wait_until(lambda: _ready(monitor)[0] == 200, "readiness")
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        reason = wait_until(
            lambda: _storage_reason(monitor), "readiness to fail on storage", timeout=30
        )
        assert "locked" in reason
        assert _get(monitor, "/api/health/live").status_code == 200
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    wait_until(lambda: _ready(monitor)[0] == 200, "readiness once released", timeout=30)
    assert _storage_errors(monitor) > 0
    assert "Traceback" not in monitor.log()


def _obeying_file_permissions() -> list[str]:
    """A command prefix under which the process is refused what file permissions refuse: as
    root (which ignores them), `setpriv` without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (an
    unprivileged user could not run the interpreter under /root); as anyone else, nothing."""
    if os.geteuid() != 0:
        return []
    drop = "-dac_override,-dac_read_search"
    return [require_binary("setpriv"), "--bounding-set", drop, "--inh-caps", drop]


def test_a_read_only_sqlite_file_keeps_notifications_in_memory_until_it_is_writable(
    tmp_path: Path, target: HttpPeer, receiver: HttpPeer, monitors: list[Monitor]
) -> None:
    db = tmp_path / "m.db"
    first = _start(monitors, tmp_path / "a.toml", ALERT_CONFIG, target, receiver, db=str(db))
    wait_until(lambda: _ready(first)[0] == 200, "readiness")
    assert first.stop() == 0
    files = sorted(tmp_path.glob("m.db*"))
    for file in files:
        file.chmod(0o444)
    monitor = _start(
        monitors,
        tmp_path / "b.toml",
        ALERT_CONFIG,
        target,
        receiver,
        prefix=_obeying_file_permissions(),
        db=str(db),
    )
    reason = wait_until(lambda: _storage_reason(monitor), "readiness to fail on storage")
    assert "readonly database" in reason
    wait_until(lambda: _check_passes(monitor), "check x to pass all the same")
    target.set_status(500)
    wait_until(lambda: _alerts(monitor), "the alert to fire on a read-only database")
    wait_until(
        lambda: "cannot queue notification" in monitor.log(), "the failed queueing to be logged"
    )
    assert not _posts(receiver, "firing")
    assert _storage_errors(monitor) > 0
    assert _get(monitor, "/api/health/live").status_code == 200
    for file in sorted(tmp_path.glob("m.db*")):
        file.chmod(0o644)
    wait_until(lambda: _posts(receiver, "firing"), "the kept notification, delivered", timeout=30)
    wait_until(lambda: _ready(monitor)[0] == 200, "readiness once writable", timeout=30)
    target.set_status(200)
    wait_until(lambda: _posts(receiver, "resolved"), "the resolved POST", timeout=30)
    assert len(_posts(receiver, "firing")) == 1
    assert "Traceback" not in monitor.log()

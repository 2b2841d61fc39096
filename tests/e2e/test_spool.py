"""The local spool under real processes on a real PostgreSQL: the line to PostgreSQL is cut (a
TCP proxy) while a checked target goes down. Replicas keep checking and answering probes, report
not ready with the reason, and spool the notifications they cannot queue; once PostgreSQL is
back, the receiver gets each notification exactly once, also when a replica was SIGKILLed during
the cut and its spool is all that remembers the outage.
"""

from __future__ import annotations

import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import HttpPeer, Monitor, cli, wait_until
from tests.e2e.test_alert_flow import HOOK_PATH, WEBHOOK_SECRET, _posts
from tests.e2e.test_replicas import CONFIG
from tests.e2e.test_storage_faults import (
    _alerts,
    _alive,
    _assert_once_each,
    _check_passes,
    _get,
    _ready,
    _storage_reason,
)
from tests.postgres import SERVER
from tests.tcpproxy import TcpProxy

ENV = {"E2E_WEBHOOK_SECRET": WEBHOOK_SECRET}


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    with TcpProxy("127.0.0.1", 5432) as line:
        yield line


@pytest.fixture
def monitors() -> Iterator[list[Monitor]]:
    started: list[Monitor] = []
    try:
        yield started
    finally:
        for monitor in started:
            monitor.stop()


def _config(tmp_path: Path, name: str, url: str, target: HttpPeer, receiver: HttpPeer) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(
        CONFIG.format(
            url=url, replica=name, target=target.url, receiver=receiver.url, hook=HOOK_PATH
        )
    )
    return path


def _spooled(monitor: Monitor) -> int:
    """How many notifications the process logged as spooled."""
    return sum(1 for entry in monitor.log_entries() if " spooled in " in str(entry.get("msg", "")))


def _spool_rows(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [str(row[0]) for row in conn.execute("SELECT payload FROM notify_spool ORDER BY id")]


def _metric(monitor: Monitor, prefix: str) -> float:
    with httpx.Client(timeout=5.0) as client:
        text = client.get(f"{monitor.metrics}/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix)
    )


def test_two_replicas_cut_from_postgresql_during_an_outage_page_once_when_it_is_back(
    tmp_path: Path,
    database: str,
    target: HttpPeer,
    receiver: HttpPeer,
    proxy: TcpProxy,
    monitors: list[Monitor],
) -> None:
    url = database.replace(SERVER, f"postgresql://postgres@127.0.0.1:{proxy.port}")
    for name in ("r1", "r2"):
        config = _config(tmp_path, name, url, target, receiver)
        monitors.append(Monitor(config, env=ENV).start())
    wait_until(lambda: all(_check_passes(m) for m in monitors), "check x to pass")
    wait_until(lambda: all(_ready(m)[0] == 200 for m in monitors), "readiness")
    proxy.cut()
    wait_until(lambda: all(_storage_reason(m) for m in monitors), "readiness to fail on storage")
    target.set_status(500)  # the outage begins while PostgreSQL is away
    wait_until(lambda: all(_alerts(m) for m in monitors), "every replica to fire")
    wait_until(lambda: all(_spooled(m) >= 1 for m in monitors), "each replica to spool")
    for monitor in monitors:
        assert _get(monitor, "/api/health/live").status_code == 200
        assert _check_passes(monitor) is False  # still checking
        assert _storage_reason(monitor) is not None
    assert [len(_spool_rows(tmp_path / f"spool-{n}.db")) for n in ("r1", "r2")] == [1, 1]
    assert not _posts(receiver, "firing")
    proxy.restore()
    wait_until(lambda: _posts(receiver, "firing"), "the late firing POST", timeout=20)
    wait_until(
        lambda: all(not _spool_rows(tmp_path / f"spool-{n}.db") for n in ("r1", "r2")),
        "both spools to drain",
    )
    wait_until(lambda: all(_ready(m)[0] == 200 for m in monitors), "readiness once back")
    target.set_status(200)
    wait_until(lambda: _posts(receiver, "resolved"), "the resolved POST", timeout=20)
    _assert_once_each(database, receiver)
    replayed = [_metric(m, 'notify_spool_replayed_total{result="queued"}') for m in monitors]
    covered = [_metric(m, 'notify_spool_replayed_total{result="covered"}') for m in monitors]
    assert sum(replayed) == 1  # one replica's spool queued it, the other found it covered
    assert sum(covered) == 1
    for monitor in monitors:
        assert _alive(monitor)
        assert "Traceback" not in monitor.log()


def test_a_replica_killed_during_the_cut_delivers_its_spool_once_after_its_restart(
    tmp_path: Path,
    database: str,
    target: HttpPeer,
    receiver: HttpPeer,
    proxy: TcpProxy,
    monitors: list[Monitor],
) -> None:
    url = database.replace(SERVER, f"postgresql://postgres@127.0.0.1:{proxy.port}")
    config = _config(tmp_path, "r1", url, target, receiver)
    replica = Monitor(config, env=ENV).start()
    monitors.append(replica)
    wait_until(lambda: _check_passes(replica), "check x to pass")
    proxy.cut()
    wait_until(lambda: _storage_reason(replica), "readiness to fail on storage")
    # A whole outage of the target within the cut: its firing and its resolution are spooled.
    target.set_status(500)
    wait_until(lambda: _spooled(replica) == 1, "the firing to be spooled")
    target.set_status(200)
    wait_until(lambda: _spooled(replica) == 2, "the resolution to be spooled")
    replica.signal(signal.SIGKILL)
    assert replica.wait(timeout=10) == -signal.SIGKILL
    spool = tmp_path / "spool-r1.db"
    rows = _spool_rows(spool)
    assert len(rows) == 2
    assert '"status":"firing"' in rows[0]
    assert '"status":"resolved"' in rows[1]
    # Restarted while PostgreSQL is still cut: it cannot start (it exits with the reason, and
    # its orchestrator starts it again); the spool is untouched.
    attempt = cli("run", "-c", str(config), cwd=tmp_path, env=ENV)
    assert attempt.returncode != 0
    assert "Traceback" not in attempt.stdout + attempt.stderr
    assert len(_spool_rows(spool)) == 2
    proxy.restore()
    # The alert state of the outage was never saved: only the spool remembers it.
    again = tmp_path / "r1-again.toml"  # the same configuration, a log of its own
    again.write_text(config.read_text())
    restarted = Monitor(again, env=ENV).start()
    monitors.append(restarted)
    wait_until(lambda: _posts(receiver, "resolved"), "the spooled resolution", timeout=20)
    wait_until(lambda: not _spool_rows(spool), "the spool to drain")
    _assert_once_each(database, receiver)
    [firing], [resolved] = _posts(receiver, "firing"), _posts(receiver, "resolved")
    assert firing.headers["idempotency-key"] != resolved.headers["idempotency-key"]
    assert _metric(restarted, 'notify_spool_replayed_total{result="queued"}') == 2
    assert "Traceback" not in restarted.log()

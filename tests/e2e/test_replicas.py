"""Two and three replicas on one PostgreSQL database, as real processes (redundant mode).

All run every check and rule: an outage all see reaches the webhook receiver as exactly one
firing and one resolved notification. A replica killed (SIGKILL) while the receiver holds its
request loses its claim when the lease ends (3 heartbeats), and the other replica delivers the
notification, with the same Idempotency-Key.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.e2e.harness import HttpPeer, Monitor, wait_until
from tests.e2e.test_alert_flow import CONFIG as ALERT_CONFIG
from tests.e2e.test_alert_flow import HOOK_PATH, WEBHOOK_SECRET, _posts

# The single-process alert flow's configuration, on PostgreSQL, as replica {replica} (its own
# spool file in the shared working directory). The channel's timeout is long: the receiver
# holds a request for as long as a test needs.
CONFIG = ALERT_CONFIG.replace(
    'path = "{db}"',
    'url = "{url}"\nspool_path = "spool-{replica}.db"\n\n'
    '[cluster]\nreplica = "{replica}"\nheartbeat = "300ms"',
).replace('timeout = "2s"', 'timeout = "30s"')


class Replicas:
    """Replica processes on one database; all stopped after the test."""

    def __init__(self, tmp_path: Path, url: str, target: HttpPeer, receiver: HttpPeer) -> None:
        self._tmp = tmp_path
        self._url = url
        self._target = target
        self._receiver = receiver
        self.running: dict[str, Monitor] = {}

    def start(self, name: str) -> Monitor:
        config = self._tmp / f"{name}.toml"
        config.write_text(
            CONFIG.format(
                url=self._url,
                replica=name,
                target=self._target.url,
                receiver=self._receiver.url,
                hook=HOOK_PATH,
            )
        )
        monitor = Monitor(config, env={"E2E_WEBHOOK_SECRET": WEBHOOK_SECRET}).start()
        self.running[name] = monitor
        return monitor

    def stop(self) -> None:
        for monitor in self.running.values():
            monitor.stop()


@pytest.fixture
def replicas(
    tmp_path: Path, database: str, target: HttpPeer, receiver: HttpPeer
) -> Iterator[Replicas]:
    group = Replicas(tmp_path, database, target, receiver)
    try:
        yield group
    finally:
        group.stop()


def _query(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql.encode()).fetchall()


def _check_state(monitor: Monitor) -> str:
    with httpx.Client(base_url=monitor.api, timeout=5.0) as api:
        return str(api.get("/api/v1/checks/x").json().get("status"))


def _wait_passing(*monitors: Monitor) -> None:
    wait_until(lambda: all(_check_state(m) == "pass" for m in monitors), "check x to pass")


def _alerts(monitor: Monitor) -> list[Any]:
    with httpx.Client(base_url=monitor.api, timeout=5.0) as api:
        alerts: list[Any] = api.get("/api/v1/alerts").json()["alerts"]
        return alerts


@pytest.mark.parametrize("count", [2, 3])
def test_an_outage_seen_by_every_replica_is_one_firing_and_one_resolved(
    count: int, replicas: Replicas, database: str, target: HttpPeer, receiver: HttpPeer
) -> None:
    running = [replicas.start(f"r{i}") for i in range(1, count + 1)]
    _wait_passing(*running)
    target.set_status(500)
    wait_until(lambda: all(_alerts(m) for m in running), "every replica to fire")
    wait_until(lambda: _posts(receiver, "firing"), "the firing POST", timeout=10)
    target.set_status(200)
    wait_until(lambda: not any(_alerts(m) for m in running), "every replica to resolve")
    wait_until(lambda: _posts(receiver, "resolved"), "the resolved POST", timeout=10)
    # Every notification ever decided is in the shared log's sequence and in the outbox.
    wait_until(
        lambda: (
            _query(database, "SELECT state FROM notify_outbox ORDER BY id")
            == [("delivered",), ("delivered",)]
        ),
        "both notifications delivered",
        timeout=30,  # marked after the POST's answer, by a replica that may be slow under load
    )
    assert _query(database, "SELECT seq FROM cluster_notify_log") == [(2,)]
    firing, resolved = _posts(receiver, "firing"), _posts(receiver, "resolved")
    assert len(firing) == 1, [r.headers.get("idempotency-key") for r in firing]
    assert len(resolved) == 1, [r.headers.get("idempotency-key") for r in resolved]
    for monitor in running:
        assert "Traceback" not in monitor.log()


def test_a_killed_claim_holder_is_taken_over_after_its_lease(
    replicas: Replicas, database: str, target: HttpPeer, receiver: HttpPeer
) -> None:
    replicas.start("r1")
    replicas.start("r2")
    _wait_passing(*replicas.running.values())
    receiver.hold()
    target.set_status(500)
    [first] = wait_until(lambda: _posts(receiver, "firing"), "the held firing POST", timeout=10)
    [(holder,)] = wait_until(
        lambda: _query(
            database, "SELECT claimed_by FROM notify_outbox WHERE claimed_by IS NOT NULL"
        ),
        "the delivery claim",
    )
    replicas.running[holder].signal(signal.SIGKILL)
    assert replicas.running[holder].wait(timeout=10) == -signal.SIGKILL
    receiver.release()
    survivor = "r2" if holder == "r1" else "r1"
    # The lease (3 x 300 ms) passes; the survivor claims the row and sends it again.
    wait_until(lambda: len(_posts(receiver, "firing")) >= 2, "the taken-over POST", timeout=15)
    wait_until(
        lambda: (
            _query(database, "SELECT state, claimed_by FROM notify_outbox") == [("delivered", None)]
        ),
        "the notification delivered",
        timeout=30,
    )
    posts = _posts(receiver, "firing")
    assert len(posts) == 2
    keys = {post.headers["idempotency-key"] for post in posts}
    assert keys == {first.headers["idempotency-key"]}
    assert "Traceback" not in replicas.running[survivor].log()


def _cluster(monitor: Monitor) -> dict[str, Any]:
    with httpx.Client(base_url=monitor.api, timeout=5.0) as api:
        document: dict[str, Any] = api.get("/api/v1/cluster").json()
        return document


def _replicas_live(monitor: Monitor) -> float | None:
    with httpx.Client(timeout=5.0) as client:
        text = client.get(f"{monitor.metrics}/metrics").text
    for line in text.splitlines():
        if line.startswith("cluster_replicas_live "):
            return float(line.split()[1])
    return None


def test_the_cluster_route_lists_the_live_replicas_and_drops_a_killed_one(
    replicas: Replicas,
) -> None:
    r1, r2 = replicas.start("r1"), replicas.start("r2")

    def names(monitor: Monitor) -> list[str]:
        return [replica["name"] for replica in _cluster(monitor)["replicas"]]

    wait_until(lambda: names(r1) == ["r1", "r2"] and names(r2) == ["r1", "r2"], "both listed")
    document = _cluster(r1)
    assert document["replica"] == "r1"
    assert document["mode"] == "redundant"
    assert document["live"] == 2
    wait_until(lambda: _replicas_live(r1) == 2.0, "cluster_replicas_live 2")
    r2.signal(signal.SIGKILL)
    assert r2.wait(timeout=10) == -signal.SIGKILL
    # Silent for 3 heartbeats (3 x 300 ms): dead at r1's next beat.
    wait_until(lambda: names(r1) == ["r1"], "the killed replica to drop out")
    wait_until(lambda: _replicas_live(r1) == 1.0, "cluster_replicas_live 1")

"""Sharded replicas on one PostgreSQL database, as real processes (`[cluster] mode = "sharded"`).

Each replica's checks send `X-Replica: <its name>` to the target, so the target's log tells which
replica ran each check. Three replicas split the checks (each runs on exactly one, the one
`GET /api/v1/cluster` names, which is the rendezvous owner); a replica SIGKILLed hands its checks
to the survivors once it has been silent for 3 heartbeats (the measured takeover time is printed
and recorded as the test's `takeover_seconds` property). An alert that fires while its check
moves (its owner killed, or a replica joining that wins the check) reaches the webhook receiver
as exactly one firing and, once the target recovers, exactly one resolved notification.
"""

from __future__ import annotations

import datetime as dt
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from actors.cluster.rendezvous import owner
from tests.e2e.harness import HttpPeer, Monitor, Recorded, wait_until
from tests.e2e.test_alert_flow import HOOK_PATH, WEBHOOK_SECRET, _posts

HEARTBEAT = 0.3

CONFIG = """\
[server]
listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:0"

[storage]
url = "{url}"

[cluster]
replica = "{replica}"
mode = "sharded"
heartbeat = "300ms"

[history]
flush_interval = "300ms"

[supervisor]
shutdown_timeout = "5s"

[log]
format = "json"

{checks}
[[rules]]
id = "x-down"
name = "X Down"
severity = "critical"
channels = ["hooks"]
summary = "x is down"
[rules.condition]
metric = "health_check_up"
labels = {{ check = "{alerting}" }}
aggregate = "last"
window = "1m"
operator = "=="
threshold = 0

[routing]
group_by = ["alertname"]
group_wait = "0s"
group_interval = "300ms"
repeat_interval = "1h"

[channels.hooks]
kind = "webhook"
url = "{receiver}{hook}"
secret = "${{E2E_WEBHOOK_SECRET}}"
timeout = "10s"
"""

CHECK = """\
[[checks]]
name = "{name}"
kind = "http"
url = "{target}/{name}"
interval = "200ms"
timeout = "200ms"
critical = false
headers = {{ X-Replica = "{replica}" }}

"""


class Sharded:
    """Sharded replica processes running `checks` on one database; all stopped after the test."""

    def __init__(
        self, tmp_path: Path, url: str, target: HttpPeer, receiver: HttpPeer, checks: Sequence[str]
    ) -> None:
        self._tmp = tmp_path
        self._url = url
        self._target = target
        self._receiver = receiver
        self.checks = list(checks)
        self.running: dict[str, Monitor] = {}

    def start(self, name: str) -> Monitor:
        self.write(name)
        monitor = Monitor(self._tmp / f"{name}.toml", env={"E2E_WEBHOOK_SECRET": WEBHOOK_SECRET})
        self.running[name] = monitor.start()
        return monitor

    def write(self, name: str) -> None:
        """Write replica `name`'s configuration file (with the current `checks`)."""
        checks = "".join(
            CHECK.format(name=check, target=self._target.url, replica=name) for check in self.checks
        )
        config = self._tmp / f"{name}.toml"
        config.write_text(
            CONFIG.format(
                url=self._url,
                replica=name,
                checks=checks,
                alerting=self.checks[0],
                receiver=self._receiver.url,
                hook=HOOK_PATH,
            )
        )

    def kill(self, name: str) -> float:
        """SIGKILL replica `name`; the monotonic time of the signal."""
        monitor = self.running.pop(name)
        at = time.monotonic()
        monitor.signal(signal.SIGKILL)
        assert monitor.wait(timeout=10) == -signal.SIGKILL
        return at

    def stop(self) -> None:
        for monitor in self.running.values():
            monitor.stop()


def _sharded(
    tmp_path: Path, database: str, target: HttpPeer, receiver: HttpPeer, checks: Sequence[str]
) -> Iterator[Sharded]:
    group = Sharded(tmp_path, database, target, receiver, checks)
    try:
        yield group
    finally:
        group.stop()
        for monitor in group.running.values():
            assert "Traceback" not in monitor.log(), monitor.log()[-4000:]


def _get(monitor: Monitor, path: str) -> Any:
    with httpx.Client(base_url=monitor.api, timeout=5.0) as api:
        return api.get(path).json()


def _shares(monitor: Monitor) -> dict[str, list[str]]:
    """Each live replica with the checks it runs, as `monitor` sees it."""
    document = _get(monitor, "/api/v1/cluster")
    return {r["name"]: r.get("checks", []) for r in document["replicas"]}


def _agreed(group: Sharded) -> dict[str, str] | None:
    """The owner of every check once every running replica lists all of them alike."""
    views = [_shares(m) for m in group.running.values()]
    if any(set(v) != set(group.running) for v in views) or any(v != views[0] for v in views):
        return None
    owners = {check: name for name, checks in views[0].items() for check in checks}
    return owners if sorted(owners) == sorted(group.checks) else None


def _settled(group: Sharded) -> dict[str, str]:
    """Wait for agreement, then for one more beat of every replica (so each has stopped the
    checks it gave up); the owners."""
    owners = wait_until(lambda: _agreed(group), "the replicas to agree on the shares")
    beats = {name: _own_beat(m, name) for name, m in group.running.items()}
    wait_until(
        lambda: all(_own_beat(m, name) > beats[name] for name, m in group.running.items()),
        "a beat of every replica after the agreement",
    )
    assert _agreed(group) == owners
    return owners


def _own_beat(monitor: Monitor, name: str) -> float:
    for replica in _get(monitor, "/api/v1/cluster")["replicas"]:
        if replica["name"] == name:
            return float(replica["last_heartbeat"])
    return 0.0


def _runs(target: HttpPeer, check: str, after: int) -> list[Recorded]:
    return [r for r in target.received()[after:] if r.path == f"/{check}"]


def _wait_runs(target: HttpPeer, checks: Sequence[str], after: int, count: int = 3) -> None:
    wait_until(
        lambda: all(len(_runs(target, check, after)) >= count for check in checks),
        f"{count} runs of every check",
    )


def _runners(target: HttpPeer, check: str, after: int) -> set[str]:
    return {r.headers.get("x-replica", "?") for r in _runs(target, check, after)}


@pytest.fixture
def sharded(
    tmp_path: Path, database: str, target: HttpPeer, receiver: HttpPeer
) -> Iterator[Sharded]:
    yield from _sharded(tmp_path, database, target, receiver, [f"c{i}" for i in range(9)])


def test_each_check_runs_on_one_replica_and_moves_within_three_heartbeats_of_a_kill(
    sharded: Sharded,
    target: HttpPeer,
    database: str,
    record_property: Callable[[str, object], None],
) -> None:
    for name in ("r1", "r2", "r3"):
        sharded.start(name)
    owners = _settled(sharded)
    # Each replica beats through a connection of its own, apart from its store's pool.
    names = {
        str(row[0])
        for row in _query(
            database,
            "SELECT application_name FROM pg_stat_activity WHERE datname = current_database()",
        )
    }
    assert {f"blipee-monitor {name} heartbeat" for name in ("r1", "r2", "r3")} <= names
    assert owners == {check: owner(check, ["r1", "r2", "r3"]) for check in sharded.checks}
    mark = len(target.received())
    _wait_runs(target, sharded.checks, mark)
    for check in sharded.checks:
        assert _runners(target, check, mark) == {owners[check]}, check
    counts = {
        name: _get(monitor, "/api/v1/cluster")["checks_owned"]
        for name, monitor in sharded.running.items()
    }
    assert sum(counts.values()) == len(sharded.checks)

    # The replica with the most checks is killed; each of its checks runs on a survivor soon.
    victim = max(counts, key=lambda name: counts[name])
    moved = [check for check, name in owners.items() if name == victim]
    killed_at = sharded.kill(victim)
    survivors = sorted(sharded.running)

    def taken_over() -> dict[str, float] | None:
        first: dict[str, float] = {}
        for check in moved:
            runs = [r for r in _runs(target, check, mark) if r.at > killed_at]
            runs = [r for r in runs if r.headers.get("x-replica") in survivors]
            if not runs:
                return None
            first[check] = runs[0].at - killed_at
        return first

    first = wait_until(taken_over, "the killed replica's checks to run elsewhere", timeout=15)
    takeover = max(first.values())
    record_property("takeover_seconds", round(takeover, 3))
    print(f"takeover of {len(moved)} checks after SIGKILL: {takeover:.3f} s (heartbeat 300 ms)")

    after = _settled(sharded)
    assert after == {check: owner(check, survivors) for check in sharded.checks}
    for check, name in owners.items():
        if name != victim:
            assert after[check] == name, "a check of a survivor moved"
    mark = len(target.received())
    _wait_runs(target, sharded.checks, mark)
    for check in sharded.checks:
        assert _runners(target, check, mark) == {after[check]}, check


def test_any_replica_reports_every_check_with_its_owner(sharded: Sharded, target: HttpPeer) -> None:
    for name in ("r1", "r2"):
        sharded.start(name)
    owners = _settled(sharded)
    for name, monitor in sharded.running.items():
        elsewhere = [check for check, runner in owners.items() if runner != name]

        def reported(monitor: Monitor = monitor, elsewhere: list[str] = elsewhere) -> bool:
            checks = _get(monitor, "/api/health")["checks"]
            return all(
                checks.get(check, {}).get("details", {}).get("replica") == owners[check]
                for check in elsewhere
            )

        wait_until(reported, f"{name} to report the checks run elsewhere")
        assert set(_get(monitor, "/api/health")["checks"]) == set(sharded.checks)
        # /metrics has the series of the checks this replica runs, and no other.
        mine = {check for check, runner in owners.items() if runner == name}

        def exported(monitor: Monitor = monitor, mine: set[str] = mine) -> bool:
            return _exported(monitor) == mine

        wait_until(exported, f"{name}'s health_check_up series")


def _uptime_runs(api: httpx.Client, check: str) -> int:
    """The runs of `check` over 24 h that a replica's status page counts (its uptime API)."""
    return int(api.get(f"/api/v1/checks/{check}/uptime?window=24h").json()["runs"])


def _overview_row(monitor: Monitor, check: str) -> str:
    with httpx.Client(base_url=monitor.api, timeout=5.0) as api:
        page = api.get("/").text
    return page.split(f'data-check="{check}"', 1)[1].split("</tr>", 1)[0]


def test_any_replica_shows_the_uptime_of_the_checks_another_runs(
    sharded: Sharded, target: HttpPeer, record_property: Callable[[str, object], None]
) -> None:
    """r1 runs every check for a while, then r2 joins and takes some: each page counts the runs
    the other replica goes on making of its checks (not only those stored when r2 started),
    within two flush intervals (300 ms each) and a read, and draws their uptime bars."""
    first = sharded.start("r1")
    _settled(sharded)
    with httpx.Client(base_url=first.api, timeout=5.0) as api:
        wait_until(
            lambda: all(_uptime_runs(api, check) >= 5 for check in sharded.checks),
            "r1 to count runs of every check",
        )
    second = sharded.start("r2")
    owners = _settled(sharded)
    assert set(owners.values()) == {"r1", "r2"}
    with (
        httpx.Client(base_url=first.api, timeout=5.0) as one,
        httpx.Client(base_url=second.api, timeout=5.0) as two,
    ):
        apis = {"r1": one, "r2": two}
        lags: dict[str, float] = {}
        for check, runner in owners.items():
            # What the owner's page counts now; the other page must catch up with it.
            expected = _uptime_runs(apis[runner], check)
            mark = time.monotonic()
            other = apis["r2" if runner == "r1" else "r1"]
            wait_until(
                lambda: _uptime_runs(other, check) >= expected,  # noqa: B023 (called here)
                f"the other page to count the runs of {check} made by {runner}",
                step=0.01,
            )
            lags[check] = time.monotonic() - mark
    lag = max(lags.values())
    record_property("remote_uptime_seconds", round(lag, 3))
    print(f"a page counts the runs another replica made within {lag:.3f} s (flush 300 ms)")
    for check, runner in owners.items():
        row = _overview_row(second if runner == "r1" else first, check)
        assert 'class="none" x="0" width="450"' not in row, row  # a slot of the bar has runs
        for window in ("24h", "90d"):
            assert f'title="uptime over {window}">{window} -<' not in row, row


def _exported(monitor: Monitor) -> set[str]:
    with httpx.Client(timeout=5.0) as client:
        text = client.get(f"{monitor.metrics}/metrics").text
    return {
        line.split('check="', 1)[1].split('"', 1)[0]
        for line in text.splitlines()
        if line.startswith("health_check_up{")
    }


def test_a_reload_starts_an_added_check_on_its_owner_only_and_stops_a_removed_one(
    sharded: Sharded, target: HttpPeer
) -> None:
    for name in ("r1", "r2"):
        sharded.start(name)
    _settled(sharded)
    removed = sharded.checks.pop(0)
    sharded.checks.append("added")
    for name, monitor in sharded.running.items():
        sharded.write(name)
        monitor.signal(signal.SIGHUP)
    owners = _settled(sharded)
    assert owners["added"] == owner("added", ["r1", "r2"])
    mark = len(target.received())
    _wait_runs(target, sharded.checks, mark)
    for check in sharded.checks:
        assert _runners(target, check, mark) == {owners[check]}, check
    assert _runs(target, removed, mark) == []


def _query(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql.encode()).fetchall()


def _firing(monitor: Monitor) -> list[dict[str, Any]]:
    alerts: list[dict[str, Any]] = _get(monitor, "/api/v1/alerts")["alerts"]
    return [a for a in alerts if a.get("state") == "firing"]


def _assert_adopted(
    adopted: dict[str, Any], alert: dict[str, Any], database: str, group: Sharded, moves: int
) -> None:
    """`adopted` goes on with `alert`'s episode: the same start. Unless the machine was so
    loaded that the replicas' views of each other flapped after the alert started (more than
    the `moves` hand-overs of the check the test made) and two replicas ran the check for a
    moment, each writing its own start: then the start is the one in the shared state."""
    check = dict(adopted["labels"])["check"]
    started = alert["activeSinceUnix"]
    seen = [
        (name, entry["msg"], entry["ts"])
        for name, monitor in group.running.items()
        for entry in monitor.log_entries()
        if str(entry.get("msg", "")).startswith("checks ")
        and check in _listed(entry.get("checks"))
        and _epoch(str(entry["ts"])) >= started - 0.01
    ]
    if len(seen) <= moves:
        assert adopted["activeSinceUnix"] == started, seen
        return
    fingerprint = adopted["fingerprint"]
    query = f"SELECT active_since FROM rules_alert_state WHERE fingerprint = '{fingerprint}'"
    wait_until(
        lambda: abs(adopted["activeSinceUnix"] - _query(database, query)[0][0]) < 1e-3,
        f"the shared state to hold the heir's start ({seen})",
        timeout=10,
    )


def _listed(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _epoch(ts: str) -> float:
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def _one_firing_then_one_resolved(receiver: HttpPeer, database: str, target: HttpPeer) -> None:
    target.set_status(200)
    wait_until(lambda: _posts(receiver, "resolved"), "the resolved POST", timeout=15)
    wait_until(
        lambda: (
            _query(database, "SELECT state FROM notify_outbox ORDER BY id")
            == [("delivered",), ("delivered",)]
        ),
        "both notifications delivered",
        timeout=30,
    )
    firing, resolved = _posts(receiver, "firing"), _posts(receiver, "resolved")
    assert len(firing) == 1, [r.headers.get("idempotency-key") for r in firing]
    assert len(resolved) == 1, [r.headers.get("idempotency-key") for r in resolved]
    assert _query(database, "SELECT seq FROM cluster_notify_log") == [(2,)]


@pytest.fixture
def alerting(
    tmp_path: Path, database: str, target: HttpPeer, receiver: HttpPeer
) -> Iterator[Sharded]:
    # "x" is the alerting check; r3, when it joins, wins it from whichever of r1, r2 had it.
    x = next(f"x{i}" for i in range(1000) if owner(f"x{i}", ["r1", "r2", "r3"]) == "r3")
    yield from _sharded(tmp_path, database, target, receiver, [x, "c1", "c2"])


def test_a_firing_check_whose_owner_is_killed_pages_once_and_resolves_once(
    alerting: Sharded, database: str, target: HttpPeer, receiver: HttpPeer
) -> None:
    for name in ("r1", "r2", "r3"):
        alerting.start(name)
    x = alerting.checks[0]
    holder = _settled(alerting)[x]
    assert holder == "r3"
    target.set_status(500)
    wait_until(lambda: _posts(receiver, "firing"), "the firing POST", timeout=15)
    [alert] = wait_until(lambda: _firing(alerting.running[holder]), "the owner's firing alert")
    for name, monitor in alerting.running.items():
        if name != holder:
            assert _firing(monitor) == [], f"{name} evaluates a check it does not run"

    alerting.kill(holder)
    heir = owner(x, sorted(alerting.running))
    assert heir is not None
    [adopted] = wait_until(lambda: _firing(alerting.running[heir]), "the heir's firing alert")
    # The same episode goes on: the same instance, from the shared alert state.
    assert adopted["fingerprint"] == alert["fingerprint"]
    _assert_adopted(adopted, alert, database, alerting, moves=1)
    mark = len(target.received())
    wait_until(lambda: _runners(target, x, mark) == {heir}, "the heir to run the check")
    _one_firing_then_one_resolved(receiver, database, target)


def test_a_firing_check_won_by_a_joining_replica_is_handed_over_without_a_page(
    alerting: Sharded, database: str, target: HttpPeer, receiver: HttpPeer
) -> None:
    for name in ("r1", "r2"):
        alerting.start(name)
    x = alerting.checks[0]
    holder = _settled(alerting)[x]
    target.set_status(500)
    wait_until(lambda: _posts(receiver, "firing"), "the firing POST", timeout=15)
    [alert] = wait_until(lambda: _firing(alerting.running[holder]), "the owner's firing alert")

    joined = alerting.start("r3")
    assert _settled(alerting)[x] == "r3"
    [adopted] = wait_until(lambda: _firing(joined), "the joining replica's firing alert")
    _assert_adopted(adopted, alert, database, alerting, moves=2)
    # The old owner let the alert go without resolving it.
    wait_until(lambda: _firing(alerting.running[holder]) == [], "the old owner to release it")
    assert _posts(receiver, "resolved") == []
    mark = len(target.received())
    wait_until(lambda: len(_runs(target, x, mark)) >= 3, "three runs after the hand-over")
    assert _runners(target, x, mark) == {"r3"}
    _one_firing_then_one_resolved(receiver, database, target)


def _bucket_runs(database: str, check: str, resolution: int) -> int:
    rows = _query(
        database,
        "SELECT COALESCE(SUM(b.count), 0) FROM history_buckets b JOIN history_checks c"
        f" ON c.id = b.check_id WHERE c.name = '{check}' AND b.res = {resolution}",
    )
    return int(rows[0][0])


@pytest.fixture
def handed(
    tmp_path: Path, database: str, target: HttpPeer, receiver: HttpPeer
) -> Iterator[Sharded]:
    # "h" runs on r1 while both run, so it moves to r2 (started long before) when r1 dies.
    h = next(f"h{i}" for i in range(1000) if owner(f"h{i}", ["r1", "r2"]) == "r1")
    yield from _sharded(tmp_path, database, target, receiver, [h])


def test_a_check_taken_over_continues_its_history_and_incident(
    handed: Sharded, database: str, target: HttpPeer
) -> None:
    for name in ("r1", "r2"):
        handed.start(name)
    h = handed.checks[0]
    assert _settled(handed)[h] == "r1"
    target.set_status(500)  # r1's runs fail: its incident opens
    mark = len(target.received())
    # r1 runs it for a while after r2 loaded the history at its start.
    wait_until(lambda: len(_runs(target, h, mark)) >= 30, "30 runs on r1", timeout=30)
    handed.kill("r1")
    after = len(target.received())
    wait_until(lambda: len(_runs(target, h, after)) >= 5, "5 runs on r2", timeout=15)
    assert _runners(target, h, after) == {"r2"}

    # The buckets count r1's runs and r2's: a few of r1's last runs (not written before its
    # kill) and r2's newest (not written yet) aside.
    def counted() -> bool:
        runs = len(_runs(target, h, 0)) - 10
        return _bucket_runs(database, h, 60) >= runs and _bucket_runs(database, h, 3600) >= runs

    wait_until(counted, "the minute and hour buckets to count every run", timeout=10)
    target.set_status(200)  # r2's first pass closes r1's incident, carried on
    incidents = (
        "SELECT i.ended FROM history_incidents i JOIN history_checks c ON c.id = i.check_id"
        f" WHERE c.name = '{h}'"
    )
    wait_until(
        lambda: (rows := _query(database, incidents)) != [] and rows[0][0] is not None,
        "the incident to be closed",
        timeout=15,
    )
    assert len(_query(database, incidents)) == 1, "one incident, carried on by r2"

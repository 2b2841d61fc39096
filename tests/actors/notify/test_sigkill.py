"""The whole process killed with SIGKILL while the webhook receiver is down: after a restart each
notification (the trigger and its resolution) arrives exactly once, and a further restart sends
nothing again."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import trio

from tests.actors.notify.servers import Answer, ScriptedReceiver, free_port, serve_receiver

pytestmark = pytest.mark.slow

CONFIG = """
[server]
listen = "127.0.0.1:{web}"
metrics_listen = "127.0.0.1:{metrics}"

[storage]
path = "{db}"

[[checks]]
name = "target"
kind = "tcp"
host = "127.0.0.1"
port = {target}
interval = "200ms"
timeout = "200ms"

[[rules]]
id = "target-down"
name = "Target Down"
severity = "critical"
channels = ["hooks"]
summary = "the target does not accept connections"
[rules.condition]
metric = "health_check_up"
labels = {{ check = "target" }}
aggregate = "last"
window = "1m"
operator = "=="
threshold = 0

[routing]
group_by = ["alertname"]
group_wait = "0s"
group_interval = "500ms"
repeat_interval = "1h"

[channels.hooks]
kind = "webhook"
url = "http://127.0.0.1:{receiver}/hook"
secret = "sigkill-secret"
timeout = "5s"  # the receiver is served by this test, slow to answer on a loaded machine
"""


def _rows(db: Path) -> list[tuple[str, str]]:
    """(alert status, outbox state) of the hooks channel's outbox rows, oldest first."""
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return [
            (str(status), str(state))
            for status, state in conn.execute(
                "SELECT status, state FROM notify_outbox WHERE channel = 'hooks' ORDER BY id"
            )
        ]
    except sqlite3.OperationalError:  # tables not created yet
        return []
    finally:
        conn.close()


async def _until(predicate: Callable[[], bool], what: str, timeout: float = 20) -> None:
    with trio.move_on_after(timeout):
        while not predicate():
            await trio.sleep(0.05)
        return
    pytest.fail(f"timed out waiting for {what}")


# A process start is mostly imports: 7-12 s of them were measured with the machine's load average
# at 10-12 (the rest of each step takes a second at most). Waits that include a start get this.
STARTUP = 60.0


async def _api_answers(
    web_port: int, proc: subprocess.Popen[bytes], log: Path, path: str, wanted: str | None
) -> None:
    """Wait (up to STARTUP) until the process serves its API at `path`, with `status` equal to
    `wanted` in the answer when that is given."""
    url = f"http://127.0.0.1:{web_port}{path}"
    async with httpx.AsyncClient(timeout=5) as client:
        with trio.move_on_after(STARTUP):
            while proc.poll() is None:
                try:
                    response = await client.get(url)
                    if wanted is None or response.json().get("status") == wanted:
                        return
                except httpx.TransportError:  # not listening yet
                    pass
                await trio.sleep(0.05)
    pytest.fail(f"the process never answered {path} as wanted:\n{log.read_text()[-3000:]}")


async def _started(web_port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until the process has started (it serves its API)."""
    await _api_answers(web_port, proc, log, "/api/health/live", None)


async def _check_passes(web_port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until the process serves its API and reports the target check passing."""
    await _api_answers(web_port, proc, log, "/api/v1/checks/target", "pass")


ROOT = Path(__file__).resolve().parents[3]


def _start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    # Run the code under test (this checkout), whatever is installed.
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "supervisor", "run", "-c", str(config)],
            cwd=config.parent,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def test_sigkill_while_receiver_down_delivers_each_notification_once(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    db = tmp_path / "monitor.db"
    log = tmp_path / "monitor.log"
    receiver_port = free_port()
    target_port = free_port()
    web_port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(
        CONFIG.format(
            web=web_port,
            metrics=free_port(),
            db=db,
            target=target_port,
            receiver=receiver_port,
        )
    )
    procs: list[subprocess.Popen[bytes]] = []
    target = socket.socket()
    try:
        # 1. The target is down and so is the receiver: the alert fires, its delivery fails.
        procs.append(_start(config, log))
        await _started(web_port, procs[0], log)
        await _until(lambda: _rows(db)[:1] == [("firing", "pending")], "the firing row")
        # 2. The target comes back: the resolution is queued behind the trigger.
        target.bind(("127.0.0.1", target_port))
        target.listen(16)
        await _until(
            lambda: _rows(db) == [("firing", "pending"), ("resolved", "pending")],
            "the resolution row",
        )
        # 3. kill -9: nothing was delivered, nothing was marked.
        os.kill(procs[0].pid, signal.SIGKILL)
        procs[0].wait(timeout=10)
        assert procs[0].returncode == -signal.SIGKILL

        # 4. The receiver comes up, the process restarts and delivers what was pending.
        receiver = ScriptedReceiver(default=Answer(200, b""))
        await serve_receiver(nursery, receiver, receiver_port)
        procs.append(_start(config, log))
        await _started(web_port, procs[1], log)
        await _until(
            lambda: _rows(db) == [("firing", "delivered"), ("resolved", "delivered")],
            "both deliveries",
        )
        _stop(procs[1])
        assert procs[1].returncode == 0

        # 5. Another restart sends nothing again. Its notify pipeline is proven live by a new
        #    outage: that trigger is queued behind anything the restart could have re-sent, so
        #    once it is delivered any duplicate would have reached the receiver already.
        procs.append(_start(config, log))
        await _check_passes(web_port, procs[2], log)
        assert len(receiver.received) == 2, log.read_text()[-3000:]
        target.close()
        await _until(
            lambda: (
                _rows(db)
                == [("firing", "delivered"), ("resolved", "delivered"), ("firing", "delivered")]
            ),
            "the new trigger's delivery",
        )
        _stop(procs[2])
        assert procs[2].returncode == 0

        bodies = [json.loads(r.body) for r in receiver.received]
        keys = [r.headers["idempotency-key"] for r in receiver.received]
        statuses = [b["status"] for b in bodies]
        assert statuses == ["firing", "resolved", "firing"], log.read_text()[-3000:]
        assert Counter(keys) == Counter(set(keys)), keys  # every key exactly once
        assert all(b["alerts"][0]["labels"]["alertname"] == "Target Down" for b in bodies)
        assert bodies[1]["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"
        assert all(r.headers["x-signature"].startswith("t=") for r in receiver.received)
        assert "sigkill-secret" not in log.read_text()
    finally:
        target.close()
        for proc in procs:
            _stop(proc, signal.SIGKILL)

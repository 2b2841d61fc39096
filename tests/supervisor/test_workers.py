"""The parent of `run --workers`: worker processes supervised, signals passed on, the API address
reserved. Workers here are small Python processes that behave as a worker does (stop on SIGTERM
or when stdin closes); the real ones are driven in tests/e2e/test_workers.py."""

from __future__ import annotations

import os
import signal
import socket
import sys
from pathlib import Path

import pytest
import trio

from supervisor.app.workers import (
    WorkerExited,
    WorkerProcess,
    describe_status,
    reserve_address,
    supervise,
    worker_argv,
)
from supervisor.config import SupervisorConfig
from supervisor.runtime import RestartIntensityExceeded

# argv[1]: a file that gets a line per SIGHUP; argv[2]: the status to exit with when asked to
# stop (its stdin closes) or on SIGTERM; argv[3:5]: the parent's `--worker-ready-fd N`, on which
# it says it handles SIGHUP.
WORKER = """
import os, signal, sys
signal.signal(signal.SIGHUP, lambda *_: open(sys.argv[1], "a").write("hup\\n"))
signal.signal(signal.SIGTERM, lambda *_: sys.exit(int(sys.argv[2])))
open(sys.argv[1], "a").write("up\\n")
os.write(int(sys.argv[4]), b"1")
sys.stdin.read()  # until the parent's end of the pipe closes
sys.exit(int(sys.argv[2]))
"""
# Starts slowly: SIGHUP keeps its default action (ending the process) until the file argv[2]
# exists; then as WORKER (argv[3:5]: `--worker-ready-fd N`).
SLOW = """
import os, signal, sys, time
open(sys.argv[1], "a").write("begin\\n")
give_up = time.monotonic() + 60  # left behind by a test run that was killed
while not os.path.exists(sys.argv[2]):
    if time.monotonic() > give_up:
        sys.exit(1)
    time.sleep(0.01)
signal.signal(signal.SIGHUP, lambda *_: open(sys.argv[1], "a").write("hup\\n"))
open(sys.argv[1], "a").write("up\\n")
os.write(int(sys.argv[4]), b"1")
sys.stdin.read()
"""
# Ignores both ways of being asked to stop (argv[1]: a file it writes once it does).
DEAF = """
import signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
open(sys.argv[1], "a").write("up\\n")
time.sleep(3600)
"""


def _settings(**keys: object) -> SupervisorConfig:
    values = {"shutdown_timeout": "100ms", "backoff_initial": "10ms", **keys}
    return SupervisorConfig.model_validate(values)


def _worker(index: int, tmp_path: Path, on_term: int = 0) -> WorkerProcess:
    marker = tmp_path / f"w{index}"
    return WorkerProcess(index, [sys.executable, "-c", WORKER, str(marker), str(on_term)])


async def _wait(condition: object, what: str) -> None:
    assert callable(condition)
    with trio.fail_after(20):
        while not condition():
            await trio.sleep(0.02)


def _lines(tmp_path: Path, index: int) -> list[str]:
    try:
        return (tmp_path / f"w{index}").read_text().split()
    except FileNotFoundError:
        return []


async def test_workers_reload_restart_and_stop_with_status_0(tmp_path: Path) -> None:
    workers = [_worker(0, tmp_path), _worker(1, tmp_path)]
    status: list[int] = []
    async with trio.open_nursery() as nursery:

        async def main(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            status.append(await supervise(workers, _settings(), task_status=task_status))

        await nursery.start(main)
        await _wait(lambda: _lines(tmp_path, 0) and _lines(tmp_path, 1), "both up")
        os.kill(os.getpid(), signal.SIGHUP)
        await _wait(lambda: all("hup" in _lines(tmp_path, i) for i in (0, 1)), "both reloaded")
        first = workers[1].process
        assert first is not None
        first.kill()
        await _wait(lambda: workers[1].process is not first, "worker 1 started again")
        await _wait(lambda: _lines(tmp_path, 1).count("up") == 2, "worker 1 up again")
        os.kill(os.getpid(), signal.SIGTERM)
    assert status == [0]
    assert [w.stopped for w in workers] == [[0], [0]]


async def test_a_reload_waits_for_a_worker_that_is_still_starting(tmp_path: Path) -> None:
    go = tmp_path / "go"
    worker = WorkerProcess(0, [sys.executable, "-c", SLOW, str(tmp_path / "w0"), str(go)])
    status: list[int] = []
    async with trio.open_nursery() as nursery:

        async def main(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            status.append(await supervise([worker], _settings(), task_status=task_status))

        await nursery.start(main)
        await _wait(lambda: _lines(tmp_path, 0) == ["begin"], "the worker runs")
        first = worker.process
        os.kill(os.getpid(), signal.SIGHUP)
        os.kill(os.getpid(), signal.SIGHUP)
        await _wait(lambda: worker._held_hup, "the reload is held")
        go.touch()
        await _wait(lambda: _lines(tmp_path, 0) == ["begin", "up", "hup"], "reloaded once up")
        # Not ended by the SIGHUP, nor started again.
        assert worker.process is first
        os.kill(os.getpid(), signal.SIGHUP)
        await _wait(lambda: _lines(tmp_path, 0).count("hup") == 2, "an up worker reloads")
        os.kill(os.getpid(), signal.SIGTERM)
    assert status == [0]
    assert worker.stopped == [0]


async def test_a_worker_that_stops_badly_makes_the_status_1(tmp_path: Path) -> None:
    workers = [_worker(0, tmp_path), _worker(1, tmp_path, on_term=4)]
    status: list[int] = []
    async with trio.open_nursery() as nursery:

        async def main(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            status.append(await supervise(workers, _settings(), task_status=task_status))

        await nursery.start(main)
        await _wait(lambda: _lines(tmp_path, 0) and _lines(tmp_path, 1), "both up")
        os.kill(os.getpid(), signal.SIGTERM)
    assert status == [1]
    assert [w.stopped for w in workers] == [[0], [4]]


async def test_a_second_signal_stops_the_workers_now_with_status_130(tmp_path: Path) -> None:
    workers = [WorkerProcess(0, [sys.executable, "-c", DEAF, str(tmp_path / "w0")])]
    status: list[int] = []
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:

            async def main(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
                status.append(await supervise(workers, _settings(), task_status=task_status))

            await nursery.start(main)
            await _wait(lambda: _lines(tmp_path, 0), "the worker up")
            os.kill(os.getpid(), signal.SIGTERM)
            await trio.sleep(0.2)  # not a wait for a result: the first signal is still pending
            assert status == []
            os.kill(os.getpid(), signal.SIGINT)
    assert status == [130]
    process = workers[0].process
    assert process is not None
    assert process.returncode == -signal.SIGKILL  # it ignored both: killed after a second


async def test_workers_that_keep_exiting_stop_the_parent(tmp_path: Path) -> None:
    workers = [WorkerProcess(0, [sys.executable, "-c", "raise SystemExit(3)"])]
    with trio.fail_after(30), pytest.RaisesGroup(RestartIntensityExceeded, flatten_subgroups=True):
        await supervise(workers, _settings(intensity=1))


async def test_an_unrequested_exit_is_a_crash_with_its_status(tmp_path: Path) -> None:
    worker = WorkerProcess(3, [sys.executable, "-c", "raise SystemExit(3)"])
    from supervisor.runtime import ChildSpec, Restart, Supervisor

    tree = Supervisor([ChildSpec("w3", worker.run, restart=Restart.TEMPORARY)], name="t")
    async with trio.open_nursery() as nursery:
        await nursery.start(tree.run)
        await _wait(lambda: tree.which_children()[0].failures == 1, "the exit")
        process = worker.process
        assert process is not None
        assert tree.which_children()[0].last_error == (
            f"WorkerExited: worker 3 (pid {process.pid}) exited with status 3"
        )
        await tree.stop()


def test_exit_statuses_read_as_people_say_them() -> None:
    assert describe_status(0) == "exited with status 0"
    assert describe_status(2) == "exited with status 2"
    assert describe_status(-9) == "was killed by SIGKILL"
    assert describe_status(-200) == "was killed by signal 200"
    assert str(WorkerExited(1, 42, -15)) == "worker 1 (pid 42) was killed by SIGTERM"


def test_worker_command_line() -> None:
    assert worker_argv(Path("c.toml"), 1, "0.0.0.0:3000", python="py") == [
        "py",
        "-m",
        "supervisor",
        "run",
        "-c",
        "c.toml",
        "--worker",
        "1",
        "--worker-listen",
        "0.0.0.0:3000",
    ]
    assert worker_argv(Path("c.toml"), 1, "0.0.0.0:3000", count=2, python="py")[-2:] == [
        "--worker-count",
        "2",
    ]


def test_the_reserved_address_is_shared_with_reuse_port_and_takes_no_connection() -> None:
    reserved, listen = reserve_address("127.0.0.1:0")
    try:
        port = int(listen.rpartition(":")[2])
        assert port != 0
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        with socket.socket() as worker:  # what a worker's listener does
            worker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            worker.bind(("127.0.0.1", port))
            worker.listen()
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        with socket.socket() as plain, pytest.raises(OSError):
            plain.bind(("127.0.0.1", port))
    finally:
        reserved.close()


def test_an_address_in_use_cannot_be_reserved() -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        with pytest.raises(OSError):
            reserve_address(f"127.0.0.1:{other.getsockname()[1]}")


def test_the_parent_names_the_restart_limit_not_the_group_around_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """trio's nurseries wrap what ended them in exception groups: the one line an operator
    reads when the workers keep crashing names the restart limit and the child."""
    from supervisor.app import workers as module
    from supervisor.config import parse_config

    async def crashing(*_: object) -> int:
        raise ExceptionGroup("nursery", [RestartIntensityExceeded("workers", "worker-0", 3, 5)])

    monkeypatch.setattr(module, "supervise", crashing)
    config = parse_config(
        '[server]\nlisten = "127.0.0.1:0"\n[storage]\nurl = "postgresql://m@db:5432/m"\n',
        env={},
    )
    with caplog.at_level("ERROR"):
        status = module.run_workers(config, 2, path=tmp_path / "c.toml")
    assert status == 1
    text = caplog.text
    assert "worker-0" in text, text
    assert "ExceptionGroup" not in text, text

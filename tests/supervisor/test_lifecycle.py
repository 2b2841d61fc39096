"""Signals in-process: graceful stop (0), a second signal stops at once (130), SIGHUP reloads."""

from __future__ import annotations

import gc
import os
import signal
from pathlib import Path

import pytest
import trio
import trio.testing

from supervisor.app import App
from supervisor.app.lifecycle import serve
from supervisor.app.reload import ReloadReport
from supervisor.config import (
    EMPTY_FILE,
    Config,
    ConfigError,
    ConfigIssue,
    load_config,
    parse_config,
)
from supervisor.runtime import ChildSpec, current_child
from tests.supervisor.passes import Passes

CONFIG = """
[storage]
path = "{db}"
[supervisor]
shutdown_timeout = "30s"
[[checks]]
name = "tree"
kind = "self"
interval = "1s"
timeout = "1s"
critical = true
"""


def _app(tmp_path: Path) -> App:
    path = tmp_path / "c.toml"
    path.write_text(CONFIG.format(db=tmp_path / "m.db"))
    config = parse_config(path.read_text(), env={})
    return App(config, path=path, env={}, serve_http=False)


async def _slow_to_stop(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    context = current_child()
    task_status.started()
    await context.wait_stop_requested()
    await trio.sleep_forever()  # ignores the request: only cancellation stops it


async def test_sigterm_stops_gracefully_with_status_0(tmp_path: Path) -> None:
    app = _app(tmp_path)
    async with trio.open_nursery() as nursery:
        status: list[int] = []

        async def main(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            status.append(await serve(app, task_status=task_status))

        await nursery.start(main)
        os.kill(os.getpid(), signal.SIGTERM)
    assert status == [0]
    assert app.health.draining
    assert not app.root.running


async def test_second_signal_stops_at_once_with_status_130(tmp_path: Path) -> None:
    app = _app(tmp_path)
    status: list[int] = []
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:

            async def main(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
                status.append(await serve(app, task_status=task_status))

            await nursery.start(main)
            await app.root.start_child(ChildSpec("slow", _slow_to_stop, shutdown=60.0))
            os.kill(os.getpid(), signal.SIGTERM)
            while not app.health.draining:  # the first signal was handled
                await trio.sleep(0.01)
            assert status == []  # still waiting for the slow actor
            os.kill(os.getpid(), signal.SIGINT)
    assert status == [130]


async def test_a_stop_signal_cancels_the_checks_in_the_pass_after_it_is_handled(
    tmp_path: Path,
) -> None:
    # Counted, not timed: on a loop busy with thousands of checks each pass is long. The signal
    # is handled in the pass after it arrived, and the checks are cancelled in that call (not
    # after a receiving task, the graceful stop's task and the root's task have each run).
    app = _app(tmp_path)
    passes = Passes()
    cancelled_at = passes.cancelled_at
    check = passes.sleeper

    status: list[int] = []
    try:
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:

                async def main(
                    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
                ) -> None:
                    status.append(await serve(app, task_status=task_status))

                await nursery.start(main)
                specs = [ChildSpec(f"check:c{i}", check) for i in range(50)]
                assert await app.checks.supervisor.start_children(specs) == {}
                await trio.testing.wait_all_tasks_blocked()
                trio.lowlevel.add_instrument(passes)
                sent = passes.count
                os.kill(os.getpid(), signal.SIGTERM)
    finally:
        trio.lowlevel.remove_instrument(passes)
    assert status == [0]
    assert len(cancelled_at) == 50
    assert max(cancelled_at) <= sent + 2  # the handler's pass, then the checks' own


async def test_a_stop_signal_during_the_start_stops_once_started(tmp_path: Path) -> None:
    """A stop signal that comes while the tree starts is acted on once it has started (the start
    is not taken for a failure), with status 0."""
    app = _app(tmp_path)
    status: list[int] = []
    with trio.fail_after(10):
        status.append(await serve(app, signals_ready=lambda: os.kill(os.getpid(), signal.SIGTERM)))
    assert status == [0]
    assert app.health.draining
    assert not app.root.running
    assert app.root.statistics().failures_total == 0


@pytest.mark.parametrize("freeze_gc", [True, False])
async def test_the_process_collects_no_garbage_once_it_stops(
    tmp_path: Path, freeze_gc: bool
) -> None:
    """The process (`freeze_gc`) ends after the stop without freeing anything; collecting the
    garbage of thousands of unwinding tasks slowed the stop down. A host's collector is left
    alone."""
    app = _app(tmp_path)
    status: list[int] = []
    try:
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:

                async def main(
                    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
                ) -> None:
                    status.append(await serve(app, freeze_gc=freeze_gc, task_status=task_status))

                await nursery.start(main)
                assert gc.isenabled()
                os.kill(os.getpid(), signal.SIGTERM)
        assert status == [0]
        assert gc.isenabled() is not freeze_gc
    finally:
        gc.enable()
        gc.unfreeze()


async def test_sighup_reloads_the_file(tmp_path: Path) -> None:
    app = _app(tmp_path)
    assert app.path is not None
    async with trio.open_nursery() as nursery:
        status: list[int] = []

        async def main(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            status.append(await serve(app, task_status=task_status))

        await nursery.start(main)
        app.path.write_text(app.path.read_text().replace('interval = "1s"', 'interval = "2s"'))
        os.kill(os.getpid(), signal.SIGHUP)

        def starts() -> dict[str, int]:
            return {c.id: c.starts for c in app.checks.supervisor.which_children()}

        # The new config is in place before the changed check has restarted: wait for both.
        with trio.fail_after(5):
            while app.config.checks[0].interval != 2.0 or starts() == {"check:tree": 1}:
                await trio.sleep(0.01)
        assert starts() == {"check:tree": 2}
        os.kill(os.getpid(), signal.SIGTERM)
    assert status == [0]


async def test_stop_when_stops_gracefully_with_status_0(tmp_path: Path) -> None:
    """A worker of `run --workers` stops so when its parent is gone."""
    app = _app(tmp_path)
    gone = trio.Event()
    async with trio.open_nursery() as nursery:
        status: list[int] = []

        async def main(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            status.append(await serve(app, stop_when=gone.wait, task_status=task_status))

        await nursery.start(main)
        gone.set()
    assert status == [0]
    assert app.health.draining


async def test_a_reload_applies_the_adjustment_and_rejects_what_it_rejects(
    tmp_path: Path,
) -> None:
    """`App(adjust=...)`: each reloaded file goes through it (a worker's overrides)."""
    path = tmp_path / "c.toml"
    path.write_text(CONFIG.format(db=tmp_path / "m.db"))

    def adjust(config: Config) -> Config:
        if config.checks[0].interval == 5.0:
            raise ConfigError([ConfigIssue(str(path), "not for a worker", ("checks",))])
        return config.model_copy(update={"log": config.log.model_copy(update={"level": "debug"})})

    app = App(adjust(parse_config(path.read_text(), env={})), path=path, env={}, adjust=adjust)
    path.write_text(path.read_text().replace('interval = "1s"', 'interval = "2s"'))
    report = await app.reload()
    assert report is not None
    assert (app.config.checks[0].interval, app.config.log.level) == (2.0, "debug")
    path.write_text(path.read_text().replace('interval = "2s"', 'interval = "5s"'))
    assert await app.reload() is None
    assert app.last_reload_errors == (f"{path}: checks: not for a worker",)
    assert app.config.checks[0].interval == 2.0


async def test_a_reload_refuses_an_empty_file_and_keeps_every_check(tmp_path: Path) -> None:
    """A file read while being rewritten in place is empty: valid TOML of defaults, which would
    stop every check. A reload refuses it; the start-up accepts it (nothing runs yet)."""
    app = _app(tmp_path)
    for empty in ("", "\n  \n"):
        app.path.write_text(empty)  # type: ignore[union-attr]
        assert await app.reload() is None
        assert app.last_reload_errors == (f"{app.path}: {EMPTY_FILE}",)
        assert [check.name for check in app.config.checks] == ["tree"]
    assert not load_config(tmp_path / "c.toml").checks


async def test_reloads_run_one_at_a_time_from_read_to_apply(tmp_path: Path) -> None:
    """Two reloads at once: the second reads the file only after the first applied, so the file
    applied last is the newest one (never an older read applied after a newer one)."""
    app = _app(tmp_path)
    path = app.path
    assert path is not None
    reads: list[str] = []
    applying = trio.Event()
    release = trio.Event()
    apply = app.apply

    async def slow_apply(new: Config) -> ReloadReport:
        reads.append(new.checks[0].interval.__repr__())
        applying.set()
        await release.wait()
        return await apply(new)

    app.apply = slow_apply  # type: ignore[method-assign]
    path.write_text(path.read_text().replace('interval = "1s"', 'interval = "2s"'))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(app.reload)
        await applying.wait()
        nursery.start_soon(app.reload)
        await trio.testing.wait_all_tasks_blocked()
        path.write_text(path.read_text().replace('interval = "2s"', 'interval = "3s"'))
        assert reads == ["2.0"]  # the second reload has not read the file yet
        release.set()
    assert reads == ["2.0", "3.0"]
    assert app.config.checks[0].interval == 3.0

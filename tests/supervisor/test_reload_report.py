"""A reload's report lists each check once: a check that cannot start again after a change is
in `errors` only, not also in `restarted` (one process, and a sharded replica)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from actors.checks.config import CheckBase
from supervisor.app import App
from supervisor.config import parse_config
from supervisor.runtime import ChildSpec
from tests.postgres import temporary_database

CHECK = """
[[checks]]
name = "{name}"
kind = "tcp"
host = "127.0.0.1"
port = 9
interval = "{interval}"
"""


def _text(storage: str, cluster: str, interval: str) -> str:
    head = f'[server]\nlisten = "127.0.0.1:0"\nmetrics_listen = "127.0.0.1:0"\n{storage}{cluster}'
    checks = "".join(
        CHECK.format(name=name, interval=interval if name != "same" else "30s")
        for name in ("good", "broken", "same")
    )
    return head + checks


async def _reload_with_a_check_that_cannot_start(
    storage: str, cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = App(parse_config(_text(storage, cluster, "30s"), env={}), serve_http=False, env={})
    async with trio.open_nursery() as nursery:
        await nursery.start(app.run)
        with trio.fail_after(30):  # sharded: the first beat assigns every check here
            while len(app.checks.supervisor.which_children()) < 3:
                await trio.sleep(0.05)
        build = app.checks._spec

        def spec(check: CheckBase) -> ChildSpec:
            if check.name == "broken":
                raise ValueError("cannot build broken")
            return build(check)

        monkeypatch.setattr(app.checks, "_spec", spec)
        report = await app.apply(parse_config(_text(storage, cluster, "20s"), env={}))
        assert report.restarted == ("check:good",)
        assert report.errors == ("check broken: cannot build broken",)
        await app.stop()


async def test_one_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = f'[storage]\npath = "{tmp_path / "m.db"}"\n'
    await _reload_with_a_check_that_cannot_start(storage, "", monkeypatch)


async def test_a_sharded_replica(monkeypatch: pytest.MonkeyPatch) -> None:
    with temporary_database() as url:
        storage = f'[storage]\nurl = "{url}"\n'
        cluster = '[cluster]\nmode = "sharded"\nreplica = "r1"\nheartbeat = "1s"\n'
        await _reload_with_a_check_that_cannot_start(storage, cluster, monkeypatch)

"""Thousands of checks in one process: start-up and stop take a few scheduler passes, not one
per check."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio

import supervisor._config.crosskeys
import supervisor._config.loader
from supervisor.app import App
from supervisor.config import parse_config

CHECKS = 2000

HEAD = """
[server]
listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:0"

[storage]
path = "{db}"
"""

CHECK = """
[[checks]]
name = "m{i}"
kind = "metric"
interval = "30s"
critical = true
condition = {{ metric = "api_errors_total", aggregate = "increase", window = "1m", threshold = 5 }}
"""


# A long interval: the test is about the start (every check runs once within its first second),
# not about the pace one loop keeps on a loaded machine.


class _Passes(trio.abc.Instrument):
    """Counts the scheduler's passes (each pass ends in one wait for I/O)."""

    def __init__(self) -> None:
        self.count = 0

    def before_io_wait(self, timeout: float) -> None:
        self.count += 1


def _counted(calls: list[str], name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        return function(*args, **kwargs)

    return counted


async def test_thousands_of_critical_checks_start_and_stop_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = HEAD.format(db=tmp_path / "m.db") + "".join(CHECK.format(i=i) for i in range(CHECKS))
    # A valid file is neither position-indexed nor walked for secrets key by key (each walk
    # looks every key's type up from the root: seconds for thousands of checks); those serve
    # the messages of an invalid file only.
    calls: list[str] = []
    for module, name in [
        (supervisor._config.loader, "index_positions"),
        (supervisor._config.loader, "secret_values"),
        (supervisor._config.crosskeys, "secret_values"),
    ]:
        monkeypatch.setattr(module, name, _counted(calls, name, getattr(module, name)))
    config = parse_config(text, env={})
    assert calls == []
    app = App(config, serve_http=False, env={})
    passes = _Passes()
    trio.lowlevel.add_instrument(passes)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(app.run)
            # Started one after the other, each check would cost at least one pass.
            assert passes.count < CHECKS / 10
            assert len(app.checks.supervisor.which_children()) == CHECKS
            with trio.fail_after(60):
                while not app.health.snapshot.readiness().ready:
                    await trio.sleep(0.05)
            assert not app.health.snapshot.pending
            before_stop = passes.count
            await app.stop()
            assert passes.count - before_stop < CHECKS / 10
    finally:
        trio.lowlevel.remove_instrument(passes)

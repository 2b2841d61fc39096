"""Loaded by the monitor that `bench/stall.py` starts (this directory is put first on its
PYTHONPATH): records every step of a trio task that held the event loop for more than 1 ms of
CPU, as `wall_end_time cpu_ms wall_ms task` lines in the file named by STALL_STEPS_FILE. The
CPU time of a step is what the loop was held for, whatever the machine's load."""

from __future__ import annotations

import os
import time
from typing import Any

import trio
import trio.abc

_FILE = os.environ.get("STALL_STEPS_FILE", "")


class _Steps(trio.abc.Instrument):
    def __init__(self, path: str) -> None:
        self._out = open(path, "a", buffering=1)  # noqa: SIM115 (open for the process's life)
        self._cpu = 0.0
        self._wall = 0.0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self._cpu = time.thread_time()
        self._wall = time.perf_counter()

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        cpu = time.thread_time() - self._cpu
        if cpu > 0.001:
            wall = time.perf_counter() - self._wall
            self._out.write(f"{time.time():.4f} {cpu * 1000:.2f} {wall * 1000:.2f} {task.name}\n")


if _FILE:
    _run = trio.run

    def _instrumented(*args: Any, **kwargs: Any) -> Any:
        kwargs["instruments"] = [*kwargs.get("instruments", ()), _Steps(_FILE)]
        return _run(*args, **kwargs)

    trio.run = _instrumented  # type: ignore[assignment]

"""Where a running monitor's CPU goes, by task: the whole job of `health_stack.py` in this process.

Runs `blipee-monitor run` (the CLI's own code path) on the configuration `health_stack.py`
generates (CHECKS http checks at 1 s against a local nginx, the rule on health_check_up, SQLite),
with a trio instrument that times every task step. After an 8 s warm-up it measures SECONDS and
prints: the process' CPU (user + system) per minute, epoll waits a second, garbage collections
and their CPU, RSS, then per task (checks grouped) steps a second and CPU a step. CHECKS = 0 gives
the idle monitor's fixed cost (its periodic wake-ups). The instrument adds a few percent.

    .venv/bin/python bench/wakeups.py CHECKS SECONDS
    PYTHONPATH=<another tree> .venv/bin/python bench/wakeups.py 200 30   # compare a tree

Not a peer comparison: `health_stack.py` is the benchmark; this says where its CPU goes.
"""

from __future__ import annotations

import collections
import gc
import os
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.checks_support import free_port, start_nginx, stop

WARMUP = 8.0


class StepTimer(trio.abc.Instrument):
    """Counts steps and thread CPU per task name (checks grouped) while `on`."""

    def __init__(self) -> None:
        self.steps: collections.Counter[str] = collections.Counter()
        self.cpu: dict[str, float] = collections.defaultdict(float)
        self.waits = 0
        self.on = False
        self._started = 0.0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self._started = time.thread_time()

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        if self.on:
            name = ".".join(task.name.rsplit(".", 2)[-2:]).split(":")[0]
            self.steps[name] += 1
            self.cpu[name] += time.thread_time() - self._started

    def before_io_wait(self, timeout: float) -> None:
        if self.on:
            self.waits += 1


def _config(tmp: Path, checks: int, port: int) -> Path:
    api, metrics = free_port(), free_port()
    lines = [
        f'[server]\nlisten = "127.0.0.1:{api}"\nmetrics_listen = "127.0.0.1:{metrics}"\n',
        f'[storage]\npath = "{tmp / "monitor.db"}"\n',
        '[log]\nlevel = "warning"\n',
    ]
    for i in range(checks):
        lines.append(
            f'[[checks]]\nname = "url{i}"\nkind = "http"\n'
            f'url = "http://127.0.0.1:{port}/u{i}"\ninterval = "1s"\ntimeout = "1s"\n'
        )
    lines.append(
        '[[rules]]\nid = "url-down"\nname = "URL Down"\nseverity = "critical"\n'
        'channels = ["console"]\n[rules.condition]\nmetric = "health_check_up"\n'
        'aggregate = "last"\nwindow = "1m"\noperator = "=="\nthreshold = 0\n'
        '[channels.console]\nkind = "console"\n'
    )
    path = tmp / "monitor.toml"
    path.write_text("\n".join(lines))
    return path


def _report(timer: StepTimer, gcs: dict[str, float], cpu: float, seconds: float) -> None:
    rss = int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    print(f"CPU {cpu:.2f} s in {seconds:.0f} s ({cpu / seconds * 60:.2f} s a minute)")
    print(f"epoll waits {timer.waits / seconds:.1f}/s; RSS {rss / 1e6:.1f} MB")
    print(f"GC: {dict(gcs)}")
    print(f"task steps: {sum(timer.cpu.values()):.3f} s of CPU")
    for name, spent in sorted(timer.cpu.items(), key=lambda item: -item[1])[:15]:
        steps = timer.steps[name]
        print(
            f"  {name:40s} {steps / seconds:8.1f} steps/s {spent:7.3f} s "
            f"{spent / steps * 1e6:6.0f} us/step"
        )


def main() -> None:
    checks, seconds = int(sys.argv[1]), float(sys.argv[2])
    timer = StepTimer()
    gcs: dict[str, float] = collections.defaultdict(float)
    gc_started = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if not timer.on:
            return
        if phase == "start":
            gc_started[0] = time.thread_time()
        else:
            gcs[f"gen{info['generation']}"] += 1
            gcs["cpu"] += round(time.thread_time() - gc_started[0], 6)

    gc.callbacks.append(on_gc)
    real_run = trio.run

    def run(fn: Callable[..., Awaitable[object]], *args: object, **_: object) -> object:
        async def measured() -> object:
            async def measure() -> None:
                await trio.sleep(WARMUP)
                timer.on = True
                before = os.times()
                await trio.sleep(seconds)
                timer.on = False
                after = os.times()
                cpu = after.user - before.user + after.system - before.system
                _report(timer, gcs, cpu, seconds)
                os.kill(os.getpid(), signal.SIGTERM)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(measure)
                return await fn(*args)

        return real_run(measured, instruments=[timer])

    vars(trio)["run"] = run  # what `blipee-monitor run` calls (supervisor.app.lifecycle)
    from supervisor.cli import main as cli

    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        port = free_port()
        nginx = start_nginx(tmp, port) if checks else None
        try:
            cli(["run", "-c", str(_config(tmp, checks, port))])
        finally:
            vars(trio)["run"] = real_run
            if nginx is not None:
                stop(nginx)


if __name__ == "__main__":
    main()

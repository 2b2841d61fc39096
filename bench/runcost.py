"""The per-run cost of a check, in process: CPU time per run of N http checks at 1 s.

The checks subsystem's per-run path without the rest of the monitor (no web, no rules, no
supervisor): N `CheckActor`s built as the composition root builds them (`build_check_actor`,
one `CheckContext`, the `Lateness` schedule, first runs spread by `first_round_for`) publish into
a `HealthState` recording into a `MetricStore`, whose result listener is a `HistoryRecorder`
writing to a SQLite file every 5 s, and the tracer is the monitor's when tracing is off (a
`NoOpTracer`). The target is a local nginx (one worker; its CPU is not
counted), one path per check. After `WARMUP` seconds, the CPU time of this process (user +
system) over `DURATION` seconds is divided by the runs the actors made meanwhile.

Less sensitive to the machine's load than `bench/scale.py` (CPU time of the work alone, no other
process of ours), as long as the process keeps up: the lateness of the runs is printed with it
(p99 and worst), and a loaded machine that makes the process late shows there.

The checks wait on one `CheckTimer` as in the monitor; `--no-timer` makes each wait with a
deadline of its own (as before the timer).

Run from a copy of another revision's tree (`git archive`), with `--no-timer` when it has no
timer, it measures that revision: the before and after of a change, one after the other.

`--null` replaces the probe by one that answers at once (no network): the cost of a run beyond
the probe (scheduling, the actor, the health state, the metrics, the history). Like the http
probe, it keeps its timeout on the timer where the actor has one (no cancel scope per run).

    .venv/bin/python bench/runcost.py [--null] [--no-timer] [N ...]

Profile a point with py-spy, e.g.:

    .venv/bin/py-spy record -r 200 -f raw -o /tmp/runs.txt -- .venv/bin/python bench/runcost.py 1000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import trio
from opentelemetry.trace import NoOpTracer

from actors.checks.actor import CheckActor
from actors.checks.cadence import first_round_for
from actors.checks.factory import build_check_actor
from actors.checks.http import HttpCheckConfig
from actors.checks.logic import Observation
from actors.checks.probe import CheckContext
from actors.checks.schedule import Lateness
from actors.clock import SystemClock
from actors.history import HistoryRecorder, HistoryRepository
from actors.history.config import HistoryConfig
from actors.state import HealthState
from actors.store import Database
from actors.telemetry.store import MetricStore
from bench.checks_support import free_port, machine, start_nginx, stop

WARMUP = 5.0
DURATION = 10.0


class _NullProbe:
    """A probe that passes at once (no network). As the http probe, it keeps its timeout itself
    when the actor has a timer (`probe_within`, a `TimedProbe`): no cancel scope per run."""

    async def probe(self) -> Observation:
        await trio.lowlevel.checkpoint()
        return Observation.ok("ok")

    async def probe_within(self, deadline: float, timer: object) -> Observation | None:
        await trio.lowlevel.checkpoint()
        return Observation.ok("ok")

    async def aclose(self) -> None:
        pass


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


async def _point(
    url: str, n: int, tmp: Path, null: bool, timed: bool
) -> tuple[float, int, float, float]:
    """(CPU seconds per run, runs, p99 lateness, worst lateness) of `n` checks."""
    clock = SystemClock()
    store = MetricStore(clock=clock)
    health = HealthState(checks={f"url{i}": True for i in range(n)}, recorder=store, clock=clock)
    lateness_seen: list[float] = []
    lateness = Lateness(recorder=store, on_change=health.set_overload)
    database = Database(tmp / f"history-{n}.db", synchronous="NORMAL")
    repository = HistoryRepository(database)
    repository.migrate()
    history = HistoryRecorder(repository=repository, config=HistoryConfig(), clock=clock)
    health.add_result_listener(history.observe)
    context = CheckContext(clock=clock, store=store)
    first_round = first_round_for(n)
    timer = None
    if timed:
        from actors.checks.timer import CheckTimer  # not in trees before it (--no-timer there)

        timer = CheckTimer()
    extra: dict[str, Any] = {} if timer is None else {"timer": timer}
    actors: list[CheckActor] = []
    for i in range(n):
        config = HttpCheckConfig.model_validate(
            {
                "name": f"url{i}",
                "kind": "http",
                "url": f"{url}/u{i}",
                "interval": "1s",
                "timeout": "1s",
                "critical": True,
            }
        )
        actor = build_check_actor(
            config,
            context,
            health=health,
            tracer=NoOpTracer(),  # as the monitor's, tracing off
            schedule=lateness,
            first_round=first_round,
            **extra,
        )
        if null:
            actor.probe = _NullProbe()
        actor._on_lateness = lateness_seen.append
        actors.append(actor)
    async with trio.open_nursery() as nursery:
        await nursery.start(history.run)
        if timer is not None:
            await nursery.start(timer.run)
        for actor in actors:
            nursery.start_soon(actor.run)
        await trio.sleep(WARMUP + first_round)
        runs = sum(a.statistics().runs for a in actors)
        lateness_seen.clear()
        cpu = _cpu()
        await trio.sleep(DURATION)
        spent = _cpu() - cpu
        runs = sum(a.statistics().runs for a in actors) - runs
        nursery.cancel_scope.cancel()
    database.close()
    seen = sorted(lateness_seen) or [0.0]
    return spent / max(1, runs), runs, seen[int(len(seen) * 0.99)], seen[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--null", action="store_true", help="a probe without network")
    parser.add_argument(
        "--no-timer", action="store_true", help="each check waits with a deadline of its own"
    )
    parser.add_argument("checks", nargs="*", type=int, default=[1000, 2000])
    args = parser.parse_args()
    print(f"machine: {machine()}")
    what = "null probe" if args.null else "http probe against nginx"
    what += ", a deadline per check" if args.no_timer else ", one CheckTimer"
    print(f"in process: N checks at 1 s, {what}; window {DURATION:g} s after {WARMUP:g} s")
    print("checks  runs/s  CPU/run(us)  lateness p99 / max (ms)  load")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        port = free_port()
        nginx = None if args.null else start_nginx(tmp, port)
        try:
            for n in args.checks:
                per_run, runs, p99, worst = trio.run(
                    _point, f"http://127.0.0.1:{port}", n, tmp, args.null, not args.no_timer
                )
                print(
                    f"{n:6d}  {runs / DURATION:6.0f}  {per_run * 1e6:11.0f}  "
                    f"{p99 * 1e3:12.1f} / {worst * 1e3:6.1f}      {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
        finally:
            if nginx is not None:
                stop(nginx)


if __name__ == "__main__":
    main()

"""Benchmark of supervisor.runtime: restart latency and Mailbox throughput, trio and asyncio.

Run: ``.venv/bin/python bench/runtime.py`` (bounded: well under 60 s).

- Restart latency: a PERMANENT child crashes; the time from its ``raise`` to the supervisor
  reporting it running again (the CHILD_STARTED event, emitted after ``task_status.started()``
  was called by the new incarnation), zero backoff. p50/p99 in microseconds. Measured with the
  ``supervisor.runtime`` logger disabled (the runtime itself) and with crash records formatted
  to a null stream (what logging a traceback adds).
- Mailbox throughput: one producer task sends N ints, one consumer receives them, capacity 128;
  messages per second of process CPU time (robust against other processes on the machine).
  The peer is the raw memory channel of the same backend measured in the same run:
  ``trio.open_memory_channel`` on trio, ``anyio.create_memory_object_stream`` on asyncio (both
  also shown for the other backend, plus ``asyncio.Queue`` for reference). Best of several
  interleaved rounds
(order rotated, after a warm-up round).

Targets: restart p50 <= 200 us; Mailbox >= 0.8x the raw channel.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.abc
import trio

from supervisor.runtime import (
    Backoff,
    ChildSpec,
    EventKind,
    Mailbox,
    Overflow,
    Supervisor,
    SupervisorEvent,
)

RESTARTS = 2000
MESSAGES = 30_000
CAPACITY = 128
ROUNDS = 7

__all__ = ["main"]


class _Crash(Exception):
    pass


async def restart_latencies(n: int) -> list[float]:
    """Seconds from a child's crash to the supervisor seeing its next incarnation running."""
    perf = time.perf_counter
    latencies: list[float] = []
    crashed_at = 0.0
    go = anyio.Event()

    def listener(event: SupervisorEvent) -> None:
        if event.kind is EventKind.CHILD_STARTED:
            if crashed_at:
                latencies.append(perf() - crashed_at)
            go.set()

    async def child(*, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        nonlocal crashed_at, go
        task_status.started()
        await go.wait()  # the supervisor has recorded us as running
        go = anyio.Event()
        if len(latencies) >= n:
            await anyio.sleep_forever()
        crashed_at = perf()
        raise _Crash

    sup = Supervisor(
        [ChildSpec("crasher", child)],
        intensity=n + 10,
        period=3600.0,
        backoff=Backoff.none(),
        listener=listener,
    )
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        while len(latencies) < n:
            await anyio.sleep(0.01)
        await sup.stop()
    return latencies


async def _pump(
    send: Callable[[int], Awaitable[Any]], receive: Callable[[], Awaitable[Any]]
) -> float:
    async def produce() -> None:
        for i in range(MESSAGES):
            await send(i)

    # CPU time of this process, not wall time: this machine is shared, and other processes'
    # load would otherwise distort the ratios by +-25 % from one run to the next.
    start = time.process_time()
    async with anyio.create_task_group() as tg:
        tg.start_soon(produce)
        for _ in range(MESSAGES):
            await receive()
    return MESSAGES / (time.process_time() - start)


async def mailbox_rate(overflow: Overflow = Overflow.BLOCK) -> float:
    key = (lambda v: v) if overflow is Overflow.COALESCE else None
    box: Mailbox[int] = Mailbox("bench", CAPACITY, overflow=overflow, key=key)
    return await _pump(box.send, box.receive)


async def anyio_stream_rate() -> float:
    send, receive = anyio.create_memory_object_stream[int](CAPACITY)
    async with send, receive:
        return await _pump(send.send, receive.receive)


async def trio_channel_rate() -> float:
    send, receive = trio.open_memory_channel[int](CAPACITY)
    async with send, receive:
        return await _pump(send.send, receive.receive)


async def asyncio_queue_rate() -> float:
    queue: asyncio.Queue[int] = asyncio.Queue(CAPACITY)
    return await _pump(queue.put, queue.get)


def run_on(backend: str, fn: Callable[[], Awaitable[Any]]) -> Any:
    return anyio.run(fn, backend=backend)


def best_rates(
    backend: str, contenders: dict[str, Callable[[], Awaitable[float]]]
) -> dict[str, float]:
    """Best rate of each contender over ROUNDS rounds, after one warm-up round.

    The rounds interleave the contenders and rotate their order, so that load from other
    processes and warm-up effects hit every contender alike.
    """
    names = list(contenders)
    for name in names:
        run_on(backend, contenders[name])
    rates: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(ROUNDS):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            rates[name].append(run_on(backend, contenders[name]))
    return {name: max(values) for name, values in rates.items()}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def machine() -> str:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} CPUs; Python {platform.python_version()}; "
        f"trio {trio.__version__}; anyio {_anyio_version()}"
    )


def _anyio_version() -> str:
    from importlib.metadata import version

    return version("anyio")


def main() -> int:
    started = time.perf_counter()
    logger = logging.getLogger("supervisor.runtime")
    print(f"machine: {machine()}")
    print()
    print("Restart latency (crash -> running again, zero backoff), microseconds")
    print(f"{'backend':<8} {'logging':<22} {'n':>6} {'p50':>8} {'p99':>8}")
    results: dict[str, float] = {}
    for backend in ("trio", "asyncio"):
        for mode in ("off", "traceback to null"):
            if mode == "off":
                logger.disabled = True
            else:
                logger.disabled = False
                logger.propagate = False
                handler = logging.StreamHandler(io.StringIO())
                logger.addHandler(handler)
            try:
                run_on(backend, lambda: restart_latencies(200))  # warm-up
                values = run_on(backend, lambda: restart_latencies(RESTARTS))
            finally:
                if mode != "off":
                    logger.removeHandler(handler)
                    logger.propagate = True
                logger.disabled = False
            p50, p99 = pct(values, 0.5) * 1e6, pct(values, 0.99) * 1e6
            results[f"{backend}/{mode}"] = p50
            print(f"{backend:<8} {mode:<22} {len(values):>6} {p50:>8.1f} {p99:>8.1f}")

    print()
    print(
        f"Mailbox throughput, {MESSAGES} messages, capacity {CAPACITY}, "
        f"messages per CPU-second, best of {ROUNDS}"
    )
    print(f"{'backend':<8} {'channel':<32} {'msg/s':>12} {'vs raw':>8}")
    ratios: dict[str, float] = {}
    for backend, raw_name in (
        ("trio", "trio.open_memory_channel"),
        ("asyncio", "anyio memory object stream"),
    ):
        contenders: dict[str, Callable[[], Awaitable[float]]] = {
            "Mailbox BLOCK": mailbox_rate,
            "Mailbox DROP_OLDEST": lambda: mailbox_rate(Overflow.DROP_OLDEST),
            "Mailbox COALESCE": lambda: mailbox_rate(Overflow.COALESCE),
            "anyio memory object stream": anyio_stream_rate,
        }
        if backend == "trio":
            contenders["trio.open_memory_channel"] = trio_channel_rate
        else:
            contenders["asyncio.Queue"] = asyncio_queue_rate
        rates = best_rates(backend, contenders)
        raw = rates[raw_name]
        for name, rate in rates.items():
            print(f"{backend:<8} {name:<32} {rate:>12,.0f} {rate / raw:>7.2f}x")
        ratios[backend] = rates["Mailbox BLOCK"] / raw

    print()
    ok = True
    for backend in ("trio", "asyncio"):
        p50 = results[f"{backend}/off"]
        good = p50 <= 200 and ratios[backend] >= 0.8
        ok &= good
        print(
            f"{backend}: restart p50 {p50:.0f} us (target <= 200), Mailbox/raw "
            f"{ratios[backend]:.2f}x (target >= 0.80): {'OK' if good else 'MISSED'}"
        )
    print(f"total {time.perf_counter() - started:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

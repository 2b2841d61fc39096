"""/metrics renders off the event loop, shares a render in flight and reuses it for a while."""

from __future__ import annotations

import gc
import gzip
import threading
from collections.abc import Callable, Iterator

import pytest
import trio
import trio.lowlevel
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from actors.clock import FixedClock
from actors.telemetry.exposition import FREEZE_CHUNK, freeze, render
from actors.telemetry.store import MetricStore
from actors.web.metrics import MetricsRenderer


class _Held(list[Sample]):
    """Samples the encoder can only read once the test releases them."""

    def __init__(self, samples: list[Sample], entered: threading.Event, release: threading.Event):
        super().__init__(samples)
        self._entered, self._release = entered, release

    def __iter__(self) -> Iterator[Sample]:
        self._entered.set()
        assert self._release.wait(60), "never released"
        return super().__iter__()


class _Collector(Collector):
    def __init__(self, entered: threading.Event, release: threading.Event) -> None:
        self.collects = 0
        self._entered, self._release = entered, release

    def collect(self) -> Iterator[Metric]:
        self.collects += 1
        family = GaugeMetricFamily("held", "Held until released.", labels=())
        family.add_metric([], 1.0)
        family.samples = _Held(family.samples, self._entered, self._release)
        yield family


def _renderer(reuse_for: float = 0.0) -> tuple[MetricsRenderer, _Collector, threading.Event]:
    entered, release = threading.Event(), threading.Event()
    collector = _Collector(entered, release)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    store = MetricStore(clock=FixedClock(1_700_000_000.0))
    store.declare("jobs_total", "counter", "Jobs.", ("worker",))
    store.record("jobs_total", 2.0, {"worker": "a"})
    renderer = MetricsRenderer(registry=registry, store=store, reuse_for=reuse_for)
    return renderer, collector, release


async def _wait(condition: threading.Event) -> None:
    with trio.fail_after(30):
        while not condition.is_set():
            await trio.sleep(0.01)


async def test_the_render_runs_in_a_thread_while_the_loop_goes_on() -> None:
    renderer, collector, release = _renderer()
    entered = collector._entered
    bodies: list[bytes] = []

    async def scrape() -> None:
        bodies.append(await renderer.body(openmetrics=True, compress=True))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(scrape)
        nursery.start_soon(scrape)
        # The encoder is stuck inside the render, and this task still runs: the loop is free.
        await _wait(entered)
        ticks = 0
        for _ in range(10):
            await trio.sleep(0)
            ticks += 1
        assert ticks == 10
        assert not bodies
        release.set()
    text = gzip.decompress(bodies[0]).decode()
    assert 'jobs_total{worker="a"} 2.0' in text
    assert "held 1.0" in text
    assert text.endswith("# EOF\n")
    assert text.count("# EOF") == 1
    # The second scrape arrived while the first rendered: it got the same body.
    assert bodies == [bodies[0], bodies[0]]
    assert collector.collects == 1


@pytest.mark.parametrize("reuse_for", [0.0, 5.0])
async def test_a_render_is_reused_for_reuse_for_seconds(
    autojump_clock: object, reuse_for: float
) -> None:
    renderer, collector, release = _renderer(reuse_for)
    release.set()
    first = await renderer.body(openmetrics=False, compress=False)
    await trio.sleep(1.0)
    assert await renderer.body(openmetrics=False, compress=False) == first
    assert collector.collects == (1 if reuse_for else 2)
    await trio.sleep(reuse_for)
    await renderer.body(openmetrics=False, compress=False)
    assert collector.collects == (2 if reuse_for else 3)
    # Each format has its own render.
    await renderer.body(openmetrics=True, compress=False)
    assert collector.collects == (3 if reuse_for else 4)


class _Noting(Collector):
    """Notes `now()` when the registry is collected (right after the store's snapshot)."""

    def __init__(self, now: Callable[[], int]) -> None:
        self._now = now
        self.seen: list[int] = []

    def collect(self) -> Iterator[Metric]:
        self.seen.append(self._now())
        return iter(())


async def test_the_snapshot_of_many_series_lets_the_loop_run_between_steps() -> None:
    """40,000 series took ~80 ms of the loop in one piece; now the loop runs every
    `FREEZE_CHUNK` series, and the frames are those of `freeze`."""
    store = MetricStore(clock=FixedClock(1_700_000_000.0))
    store.declare("connections", "gauge", "Connections.", ("organization",))
    for i in range(5 * FREEZE_CHUNK):
        store.record("connections", float(i), {"organization": f"org-{i}"})
    ticks = 0
    collector = _Noting(lambda: ticks)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    renderer = MetricsRenderer(registry=registry, store=store)

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        await trio.lowlevel.checkpoint()
        before = ticks
        body = await renderer.body(openmetrics=False, compress=False)
        nursery.cancel_scope.cancel()
    assert collector.seen[0] - before >= 5  # the ticker ran while the store was read
    assert body.decode().startswith(render(freeze(store)))
    assert body.count(b"\nconnections{") == 5 * FREEZE_CHUNK


async def test_the_snapshot_is_freed_before_the_garbage_collector_sees_it() -> None:
    """The snapshot's objects, alive through the steps, used to be promoted generation after
    generation and to set off a full collection (~60 ms of the loop at 40,000 series)."""
    series = 20_000
    store = MetricStore(clock=FixedClock(1_700_000_000.0), max_series=series)
    store.declare("connections", "gauge", "Connections.", ("organization",))
    for i in range(series):
        store.record("connections", float(i), {"organization": f"org-{i}"})
    renderer = MetricsRenderer(registry=CollectorRegistry(auto_describe=False), store=store)
    assert gc.isenabled()
    threshold = gc.get_threshold()[0]
    before = gc.get_stats()[0]["collections"]
    body = await renderer.body(openmetrics=False, compress=False)
    collections = gc.get_stats()[0]["collections"] - before
    assert gc.isenabled()
    assert body.count(b"\nconnections{") == series
    assert collections < series // threshold // 4, collections

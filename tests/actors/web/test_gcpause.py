"""The garbage collector paused during /metrics renders: overlapping renders never keep it
disabled beyond the bound, and it is enabled again once they have all ended."""

from __future__ import annotations

import gc
import itertools
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import trio
import trio.lowlevel
from prometheus_client import CollectorRegistry

from actors.clock import FixedClock
from actors.telemetry.exposition import FREEZE_CHUNK
from actors.telemetry.store import MetricStore
from actors.web.gcpause import CollectorPause
from actors.web.metrics import MetricsRenderer


@pytest.fixture(autouse=True)
def _collector_restored() -> Iterator[None]:
    assert gc.isenabled()
    try:
        yield
    finally:
        gc.enable()


class _Noting(CollectorPause):
    """Notes each section: how many others were open when it began, when it began and ended."""

    def __init__(self, *, longest: float, clock: _Clock) -> None:
        super().__init__(longest=longest, clock=clock)
        self._now = clock
        self.began: list[tuple[int, float]] = []
        self.ended: list[float] = []

    @contextmanager
    def paused(self) -> Iterator[None]:
        self.began.append((self.statistics().sections, self._now()))
        try:
            with super().paused():
                yield
        finally:
            self.ended.append(self._now())


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_overlapping_sections_keep_the_collector_disabled_at_most_the_bound() -> None:
    """A chain of sections, each starting before the previous one ends (back-to-back scrapes):
    the collector used to stay disabled from the first start to the last end."""
    clock = _Clock()
    pause = CollectorPause(longest=5.0, clock=clock)
    sections = [pause.paused() for _ in range(8)]
    sections[0].__enter__()
    assert not gc.isenabled()
    for t in range(1, 8):  # section t starts at t, section t - 1 ends at t + 0.5
        clock.now = float(t)
        sections[t].__enter__()
        pause.check()
        assert gc.isenabled() == (t >= 5), t
        clock.now = t + 0.5
        sections[t - 1].__exit__(None, None, None)
        assert gc.isenabled() == (t >= 5), t
    assert pause.statistics().sections == 1
    sections[7].__exit__(None, None, None)
    assert gc.isenabled()
    assert (pause.statistics().pauses, pause.statistics().cut_short) == (1, 1)
    # Once every section has ended, the next one pauses again.
    clock.now = 20.0
    with pause.paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    assert pause.statistics().pauses == 2


def test_the_collector_is_enabled_when_the_last_section_ends() -> None:
    clock = _Clock()
    pause = CollectorPause(longest=5.0, clock=clock)
    with pause.paused():
        with pause.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), pause.paused():
        raise RuntimeError("a render failed")
    assert gc.isenabled()
    assert pause.statistics().holding is False


def test_a_collector_disabled_by_something_else_is_left_disabled() -> None:
    clock = _Clock()
    pause = CollectorPause(longest=5.0, clock=clock)
    gc.disable()
    with pause.paused():
        clock.now = 10.0
        pause.check()
        assert not gc.isenabled()
    assert not gc.isenabled()
    assert pause.statistics().pauses == 0


async def test_back_to_back_scrapes_of_many_series_leave_the_collector_on_within_the_bound() -> (
    None
):
    """Scrapes started one after the other, each halfway through the previous one's render
    (its snapshot still exists), for longer than the bound; each scrape on a renderer of its
    own (in the four formats), so that no scrape joins a render in flight.
    Time is virtual: one unit per turn of the loop."""
    store = MetricStore(clock=FixedClock(1_700_000_000.0), max_series=8 * FREEZE_CHUNK)
    store.declare("connections", "gauge", "Connections.", ("organization",))
    for i in range(8 * FREEZE_CHUNK):
        store.record("connections", float(i), {"organization": f"org-{i}"})
    clock = _Clock()
    longest = 30
    pause = _Noting(longest=longest, clock=clock)

    def renderers() -> Iterator[MetricsRenderer]:
        # A renderer of its own per scrape: a scrape of a format in flight on the same
        # renderer would join that render (no section of its own), and how many renders are in
        # flight at once depends on how fast the worker thread encodes, not on the test.
        while True:
            registry = CollectorRegistry(auto_describe=False)
            yield MetricsRenderer(registry=registry, store=store, pause=pause)

    scrapes = zip(renderers(), itertools.cycle(itertools.product((False, True), (False, True))))
    disabled = longest_disabled = 0

    async def turns() -> None:
        nonlocal disabled, longest_disabled
        while True:
            clock.now += 1
            disabled = 0 if gc.isenabled() else disabled + 1
            longest_disabled = max(longest_disabled, disabled)
            await trio.lowlevel.checkpoint()

    async def scrape(renderer: MetricsRenderer, form: tuple[bool, bool]) -> None:
        openmetrics, compress = form
        assert await renderer.body(openmetrics=openmetrics, compress=compress)

    async def until(time: float) -> None:
        while clock.now < time:
            await trio.lowlevel.checkpoint()

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(turns)
            await scrape(*next(scrapes))  # alone: how long a render holds its snapshot
            length = int(pause.ended[0] - pause.began[0][1])
            assert length >= 8, length  # a step per 250 series, at least
            async with trio.open_nursery() as chain:
                for i in range(1, 3 * longest // (length // 2) + 3):
                    chain.start_soon(scrape, *next(scrapes))
                    while len(pause.began) <= i:
                        await trio.lowlevel.checkpoint()
                    await until(pause.began[i][1] + length // 2)
            nursery.cancel_scope.cancel()
    assert gc.isenabled()
    began = [sections for sections, _ in pause.began[2:]]
    assert all(began), began  # each scrape began while another's snapshot existed
    assert pause.ended[-1] - pause.began[1][1] > 3 * longest  # the chain outlasted the bound
    assert pause.statistics().cut_short >= 1
    assert longest_disabled <= longest + 1, longest_disabled

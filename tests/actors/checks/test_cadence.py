"""Cadence: each check runs on a grid of its own phase, so many checks spread over their interval.

No test here times anything: the pure `Cadence` is asked for due times, and the actors run under
the autojump clock (virtual time).
"""

from __future__ import annotations

from collections import Counter

import pytest
import trio
import trio.testing

from actors.checks.actor import CheckActor
from actors.checks.cadence import FIRST_ROUND, Cadence, first_round_for
from actors.checks.logic import Observation
from actors.clock import VirtualClock
from actors.state import HealthState

from .conftest import make_config


def test_the_phase_is_the_checks_own_and_within_the_interval() -> None:
    one = Cadence.of("api", 10.0)
    assert one == Cadence.of("api", 10.0)  # the same in every process and run
    assert 0.0 <= one.phase < 10.0
    assert Cadence.of("db", 10.0).phase != one.phase


@pytest.mark.parametrize("interval", [1.0, 10.0, 60.0])
def test_two_thousand_checks_spread_over_their_interval(interval: float) -> None:
    """2,000 checks of one interval: every tenth of the interval holds about a tenth of them."""
    buckets = Counter(
        int(Cadence.of(f"url{i}", interval).phase / interval * 10) for i in range(2000)
    )
    assert sorted(buckets) == list(range(10))
    assert max(buckets.values()) <= 260  # 200 each when even; a burst would put 2,000 in one
    assert min(buckets.values()) >= 140


def test_first_run_comes_within_the_first_round_then_on_the_grid() -> None:
    cadence = Cadence(interval=30.0, phase=12.0)
    first = cadence.first(100.0)
    assert 100.0 <= first < 100.0 + FIRST_ROUND
    second, missed = cadence.following(first, first + 0.1)
    assert (second, missed) == (132.0, 0)  # the first grid point half an interval later
    assert cadence.following(second, second + 0.1) == (162.0, 0)


def test_a_short_interval_starts_on_its_grid() -> None:
    cadence = Cadence(interval=0.5, phase=0.25)
    assert cadence.first(10.0) == 10.25
    assert cadence.following(10.25, 10.3) == (10.75, 0)


def test_an_overrun_skips_the_slots_that_passed() -> None:
    cadence = Cadence(interval=2.0, phase=0.5)
    assert cadence.following(4.5, 11.0) == (12.5, 3)  # 6.5, 8.5 and 10.5 passed
    assert cadence.following(4.5, 6.5) == (6.5, 0)  # ended on its successor's slot: no skip


class _Recorder:
    """A probe that records when it ran."""

    def __init__(self, times: list[float]) -> None:
        self.times = times

    async def probe(self) -> Observation:
        self.times.append(trio.current_time())
        return Observation.ok("ok")

    async def aclose(self) -> None:
        pass


async def test_checks_started_together_do_not_run_in_one_burst(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """400 checks every 10 s started at once: after the first round (within a second), every
    second of an interval holds a tenth of the runs, not all of them."""
    health = HealthState(clock=VirtualClock())
    times: list[float] = []
    actors = [
        CheckActor(
            config=make_config(name=f"c{i}", kind="self", interval="10s", timeout="1s"),
            probe=_Recorder(times),
            health=health,
            clock=VirtualClock(),
        )
        for i in range(400)
    ]
    async with trio.open_nursery() as nursery:
        for actor in actors:
            await nursery.start(actor.run)
        await trio.sleep(40)
        nursery.cancel_scope.cancel()
    assert all(t < FIRST_ROUND for t in times[:400])  # the first round: prompt
    later = [t for t in times if 20.0 <= t < 40.0]
    assert len(later) == 800  # two runs each in two intervals, none lost or doubled
    per_second = Counter(int(t) % 10 for t in later)
    assert sorted(per_second) == list(range(10))
    assert max(per_second.values()) <= 120  # 80 each when even


def test_thousands_of_first_runs_are_spread_over_seconds() -> None:
    assert first_round_for(10) == FIRST_ROUND
    assert first_round_for(5000) == 10.0
    cadence = Cadence(interval=30.0, phase=15.0)
    assert cadence.first(0.0, first_round_for(5000)) == 5.0  # half of the 10 s first round
    assert Cadence(interval=4.0, phase=2.0).first(0.0, 10.0) == 2.0  # at most the interval

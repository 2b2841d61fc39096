"""The pure roll-up: buckets, percentiles, incidents, strips, windows (no event loop)."""

from __future__ import annotations

import pytest

from actors.history.errors import WindowError
from actors.history.rollup import (
    HOUR,
    MAX_SAMPLES,
    MINUTE,
    SLOTS,
    WINDOWS,
    Accumulator,
    Bucket,
    Strip,
    parse_window,
    percentile,
    track_incident,
    uptime_ratio,
)


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([], 0.95, 0),
        ([7], 0.95, 7),
        (list(range(1, 101)), 0.95, 95),
        (list(range(1, 101)), 0.5, 50),
        (list(range(1, 21)), 0.95, 19),
    ],
)
def test_percentile_nearest_rank(values: list[int], q: float, expected: int) -> None:
    assert percentile(values, q) == expected


def test_accumulator_counts_runs_and_latencies() -> None:
    acc = Accumulator(600, MINUTE)
    for i, latency in enumerate([30, 10, 20, 1000]):
        acc.add(i == 3, latency)
    assert acc.bucket() == Bucket(600, MINUTE, 4, 1, 10, 1060, 1000, 1000)
    assert acc.bucket().lat_avg == 265
    assert acc.bucket().up == 3


def test_accumulator_samples_stay_bounded() -> None:
    acc = Accumulator(0, HOUR)
    for i in range(3 * MAX_SAMPLES):
        acc.add(False, i)
    assert len(acc.samples) <= MAX_SAMPLES
    assert acc.count == 3 * MAX_SAMPLES
    p95 = acc.bucket().lat_p95
    assert abs(p95 - 0.95 * 3 * MAX_SAMPLES) / (3 * MAX_SAMPLES) < 0.01


def test_runs_added_at_once_are_those_added_one_by_one() -> None:
    """`add_runs` of a fold's runs leaves an accumulator as `add` of each: counts, min, max,
    sums and the kept samples, through the halving of the samples and from a restored one."""
    latencies = [(i * 7919) % 5000 for i in range(3 * MAX_SAMPLES)]
    for first in (None, Bucket(0, HOUR, 10, 2, 3, 500, 90, 6000)):
        one = Accumulator(0, HOUR) if first is None else Accumulator.restore(first)
        many = Accumulator(0, HOUR) if first is None else Accumulator.restore(first)
        for i, latency in enumerate(latencies):
            one.add(i % 5 == 0, latency)
        at = 0
        for size in (1, 5, 300, MAX_SAMPLES, 0, 7, 3 * MAX_SAMPLES):
            part = latencies[at : at + size]
            many.add_runs(sum(1 for i in range(at, at + len(part)) if i % 5 == 0), part)
            at += len(part)
        assert at == len(latencies)
        assert many.bucket() == one.bucket()
        assert (many.samples, many.stride, many.count) == (one.samples, one.stride, one.count)


def test_p95_read_again_and_again_is_that_of_all_samples() -> None:
    """`bucket()` called between runs (as every flush does) keeps its sorted copy up to date:
    its p95 is always the nearest rank of all the samples kept, through the halvings."""
    acc = Accumulator(0, HOUR)
    for i in range(3 * MAX_SAMPLES):
        acc.add(False, (i * 7919) % 100_003)
        if i % 5 == 0 or i % 1000 > 930:
            expected = percentile(sorted(acc.samples), 0.95)
            assert acc.bucket().lat_p95 == min(expected, acc.lat_max), i
    assert acc.stride > 1


def test_restored_accumulator_continues_and_keeps_its_p95_as_a_floor() -> None:
    stored = Bucket(3600, HOUR, 10, 2, 5, 500, 90, 100)
    acc = Accumulator.restore(stored)
    acc.add(True, 3)
    bucket = acc.bucket()
    assert (bucket.count, bucket.failures, bucket.lat_min, bucket.lat_sum) == (11, 3, 3, 503)
    assert (bucket.lat_p95, bucket.lat_max) == (90, 100)


def test_incident_state_machine() -> None:
    steps = [
        (False, 1.0, None),
        (True, 2.0, ("opened", 2.0, None, "down 1")),
        (True, 3.0, None),
        (False, 4.0, ("closed", 2.0, 4.0, "down 1")),
        (False, 5.0, None),
        (True, 6.0, ("opened", 6.0, None, "down 3")),
    ]
    current = None
    n = 0
    for failed, at, expected in steps:
        n += failed
        current, changed = track_incident(
            current, check="api", failed=failed, at=at, message=f"down {n}"
        )
        if expected is None:
            assert changed is None
        else:
            assert changed is not None
            assert (changed.started, changed.ended, changed.message) == expected[1:]
            assert changed.active is (expected[0] == "opened")
    assert current is not None
    assert current.duration(10.0) == 4.0


def test_strip_is_a_ring_of_slots() -> None:
    strip = Strip(60)
    strip.add(0, 1, 0, 10, 10)
    strip.add(30, 1, 1, 30, 30)
    strip.add(60 * 5, 2, 0, 40, 25)
    slots = strip.slots(60 * 5 + 1)
    assert len(slots) == SLOTS
    assert slots[-1].start == 300
    assert slots[-1].count == 2
    assert slots[-1].lat_max == 25
    assert slots[-6].count == 2
    assert slots[-6].failures == 1
    assert slots[-6].ratio == 0.5
    assert slots[-6].lat_avg == 20
    assert [s.count for s in slots[-5:-1]] == [0, 0, 0, 0]
    assert uptime_ratio(slots) == 0.75
    # A slot SLOTS widths later takes the same place; the old one is gone.
    strip.add(60 * SLOTS, 1, 1, 5, 5)
    later = strip.slots(60 * SLOTS)
    assert later[-1].count == 1
    assert later[-1].failures == 1
    assert later[0].start == 60
    assert later[0].count == 0
    # Older than the ring: dropped.
    strip.add(0, 9, 9, 0, 0)
    assert strip.slots(60 * SLOTS)[-1].count == 1
    assert uptime_ratio([]) is None


def test_windows() -> None:
    assert [w.slot for w in WINDOWS.values()] == [960, 6720, 28800, 86400]
    assert parse_window(None).name == "24h"
    assert parse_window("30d").resolution == HOUR
    with pytest.raises(WindowError, match=r"unknown window '1y'; use one of 24h, 7d, 30d, 90d"):
        parse_window("1y")

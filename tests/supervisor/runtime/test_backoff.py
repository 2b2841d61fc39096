"""Pure policy arithmetic, tested without an event loop (Hypothesis for the sliding window)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.runtime import Backoff, RestartWindow


def naive_exceeded(times: list[float], intensity: int, period: float) -> list[bool]:
    """Reference model: restart i exceeds if more than `intensity` restarts (itself included)
    happened within the `period` that ends at it."""
    return [
        sum(1 for t in times[: i + 1] if now - t < period) > intensity
        for i, now in enumerate(times)
    ]


@given(
    gaps=st.lists(st.floats(min_value=0, max_value=20, allow_nan=False), max_size=60),
    intensity=st.integers(min_value=0, max_value=6),
    period=st.floats(min_value=0.01, max_value=50, allow_nan=False),
)
def test_restart_window_matches_the_reference_model(
    gaps: list[float], intensity: int, period: float
) -> None:
    times: list[float] = []
    now = 0.0
    for gap in gaps:
        now += gap
        times.append(now)
    window = RestartWindow(intensity, period)
    assert [not window.add(t) for t in times] == naive_exceeded(times, intensity, period)


@given(
    intensity=st.integers(min_value=0, max_value=10),
    period=st.floats(min_value=0.01, max_value=50, allow_nan=False),
)
def test_restarts_spaced_by_a_period_never_exceed_when_intensity_positive(
    intensity: int, period: float
) -> None:
    window = RestartWindow(intensity, period)
    results = [window.add(i * period * 1.001) for i in range(20)]
    assert all(results) == (intensity >= 1)


def test_restart_window_count_and_reset() -> None:
    window = RestartWindow(2, 10.0)
    assert window.add(0.0)
    assert window.add(1.0)
    assert window.count(5.0) == 2
    assert window.count(10.5) == 1
    assert window.add(10.5)  # 1.0 and 10.5 in the window: allowed
    assert not window.add(10.6)  # 1.0, 10.5, 10.6: exceeded
    window.reset()
    assert window.count(10.6) == 0
    with pytest.raises(ValueError):
        RestartWindow(-1, 1.0)
    with pytest.raises(ValueError):
        RestartWindow(1, 0.0)


def test_backoff_sequence_without_jitter() -> None:
    backoff = Backoff(initial=0.5, base=1.0, factor=3.0, maximum=20.0, jitter=0.0)
    rng = random.Random(0)
    assert [backoff.delay(n, rng) for n in range(6)] == [0.5, 1.0, 3.0, 9.0, 20.0, 20.0]
    assert backoff.delay(10_000, rng) == 20.0  # no overflow
    assert Backoff.none().delay(50, rng) == 0.0


@given(
    attempt=st.integers(min_value=0, max_value=2000),
    jitter=st.floats(min_value=0, max_value=1),
    seed=st.integers(),
)
def test_backoff_jitter_stays_within_bounds_and_is_reproducible(
    attempt: int, jitter: float, seed: int
) -> None:
    backoff = Backoff(initial=0.2, base=0.5, factor=2.0, maximum=30.0, jitter=jitter)
    plain = Backoff(initial=0.2, base=0.5, factor=2.0, maximum=30.0, jitter=0.0)
    nominal = plain.delay(attempt, random.Random(seed))
    delay = backoff.delay(attempt, random.Random(seed))
    assert delay == backoff.delay(attempt, random.Random(seed))
    assert nominal * (1 - jitter) - 1e-9 <= delay <= min(30.0, nominal * (1 + jitter)) + 1e-9


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial": -1.0},
        {"base": float("inf")},
        {"factor": 0.5},
        {"jitter": 1.5},
        {"initial": 10.0, "maximum": 5.0},
        {"reset_after": -1.0},
    ],
)
def test_backoff_validation(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)


def test_backoff_negative_attempt() -> None:
    with pytest.raises(ValueError):
        Backoff().delay(-1, random.Random())

"""The ring of one series: its budget accounting and its one eviction path (no event loop)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from actors.telemetry.ring import Budget, GaugeSlot, HistogramSlot, Ring, is_folded

_WEIGHT = {2: 1, 7: 2, 8: 3}


def _weight(*rings: Ring) -> int:
    return sum(_WEIGHT[len(p)] for ring in rings for p in ring.points)


def _gauge_slot(t: float) -> GaugeSlot:
    return (t, 2.0, 1.0, 1.0, 2.0, 3.0, 2)


def _histogram_slot(t: float) -> HistogramSlot:
    return (t, 2.0, 1.0, 1.0, 2.0, 3.0, 2, [1, 1])


def test_append_charges_one_point_and_the_cap_drops_the_oldest() -> None:
    budget = Budget(max_series=10, max_points=100)
    ring = Ring(3, budget)
    for t in range(5):
        ring.append((float(t), 1.0))
    assert list(ring.points) == [(2.0, 1.0), (3.0, 1.0), (4.0, 1.0)]
    assert budget.points == 3
    assert budget.evicted == 0  # the series' cap is not the store's budget


def test_folding_charges_the_slot_weight_and_evicting_it_gives_it_back() -> None:
    budget = Budget(max_series=10, max_points=100)
    gauge, histogram = Ring(10, budget), Ring(10, budget)
    gauge.append((1.0, 1.0))
    gauge.promote(_gauge_slot(1.5))
    histogram.append((1.0, 1.0))
    histogram.promote(_histogram_slot(1.5))
    histogram.fold(_histogram_slot(1.7))  # already folded: no further charge
    assert (gauge.folded, histogram.folded) == (1, 1)
    assert budget.points == 2 + 3 == _weight(gauge, histogram)
    assert is_folded(gauge.evict_oldest())
    assert is_folded(histogram.evict_oldest())
    assert (gauge.folded, histogram.folded, budget.points) == (0, 0, 0)


def test_a_full_store_replaces_the_oldest_and_never_the_newest() -> None:
    budget = Budget(max_series=10, max_points=3)
    ring = Ring(10, budget)
    for t in range(3):
        ring.append((float(t), 1.0))
    ring.append((3.0, 1.0))
    assert [p[0] for p in ring.points] == [1.0, 2.0, 3.0]
    assert (budget.points, budget.evicted) == (3, 1)
    ring.promote(_histogram_slot(3.5))  # weighs 3: the two older points go
    assert [p[0] for p in ring.points] == [3.5]
    assert (budget.points, budget.evicted) == (3, 3)


_op = st.one_of(
    st.tuples(st.just("append"), st.integers(0, 2)),
    st.tuples(st.just("fold"), st.integers(0, 2)),
    st.tuples(st.just("evict"), st.integers(0, 2)),
)


@given(
    ops=st.lists(_op, max_size=120),
    cap=st.integers(1, 8),
    max_points=st.integers(1, 20),
)
def test_the_budget_always_weighs_what_the_rings_hold(
    ops: list[tuple[str, int]], cap: int, max_points: int
) -> None:
    budget = Budget(max_series=10, max_points=max_points)
    rings = [Ring(cap, budget) for _ in range(3)]
    t = 0.0
    for op, which in ops:
        ring = rings[which]
        t += 1.0
        if op == "append":
            ring.append((t, 1.0))
            assert ring.points[-1] == (t, 1.0)  # the newest is never what makes room
        elif op == "fold" and ring.points:
            slot: GaugeSlot | HistogramSlot = _gauge_slot(t) if which == 0 else _histogram_slot(t)
            if is_folded(ring.points[-1]):
                ring.fold(slot)
            else:
                ring.promote(slot)
            assert ring.points[-1][0] == t
        elif op == "evict" and ring.points:
            ring.evict_oldest()
        assert budget.points == _weight(*rings)
        assert all(r.folded == sum(1 for p in r.points if is_folded(p)) for r in rings)
        assert all(len(r.points) <= cap for r in rings)

"""A series' ring of time-slot points, and the store-wide point budget it is charged against.

A ring holds at most one point per time slot, oldest first (the store decides the slots, see
`store`). A point is a tuple of one of three fixed shapes (typed below; `windows` reads them
by position, and a tuple is the cheapest immutable object to build once per sample):

- `RawPoint` `(t, v)`: a slot holding one sample (a gauge value, a histogram observation), or a
  counter's slot (its summed increments: a counter's slots never become anything else);
- `GaugeSlot` `(t, last, first, min, max, sum, count)`: a gauge's slot once a second sample fell
  into it;
- `HistogramSlot` `(t, last, first, min, max, sum, count, buckets)`: a histogram's, with the
  slot's count per bucket (+Inf last, not cumulative; the list belongs to the ring and is
  updated in place as the slot folds more observations).

`t` is the time of the slot's newest sample. A folded slot weighs 2 (gauge) or 3 (histogram)
points against the store-wide `Budget`, about its memory next to a raw point's; a raw point
weighs 1.

`Ring` keeps the budget's `points` equal to the weight of every ring charged against it:
`append` (a sample in a new slot), `fold` (one more sample in the newest slot, same shape),
`promote` (the newest raw point's slot takes a second sample) and `evict_oldest`, the one path
by which a point leaves (the series cap, a full store, retention). Pure: no I/O, no clock; one
thread (the store's). A method call per structural change is the cost of the class on the
recording path, so the slot arithmetic stays with the store, which knows the metric's kind.
"""

from __future__ import annotations

from collections import deque

__all__ = ["Budget", "GaugeSlot", "HistogramSlot", "Point", "RawPoint", "Ring", "is_folded"]

RawPoint = tuple[float, float]
"""`(t, v)`: a slot holding one sample, or a counter's slot (the sum of its increments)."""

GaugeSlot = tuple[float, float, float, float, float, float, int]
"""`(t, last, first, min, max, sum, count)`: a gauge's slot of two samples or more."""

HistogramSlot = tuple[float, float, float, float, float, float, int, list[int]]
"""`(t, last, first, min, max, sum, count, buckets)`: a histogram's slot of two or more."""

Point = RawPoint | GaugeSlot | HistogramSlot
"""One point of a ring; its length tells its shape."""

# What a point weighs against the store-wide budget, by its length: about its memory next to
# a raw point's.
_WEIGHT = (0, 0, 1, 0, 0, 0, 0, 2, 3)


def is_folded(point: Point) -> bool:
    """Whether `point` is a folded slot (a gauge's or histogram's slot of several samples)."""
    return len(point) > 2


class Budget:
    """The store-wide point and series counts every ring and handle of one store updates.

    `points` is the weight of every point held (see the module docstring), `max_points` the
    level at which rings stop growing; `series`/`max_series` the same for series; `dropped`
    counts samples of new series refused, `evicted` points given up early because the store
    reached `max_points`.
    """

    __slots__ = ("dropped", "evicted", "max_points", "max_series", "points", "series")

    def __init__(self, max_series: int, max_points: int) -> None:
        self.max_series = max_series
        self.max_points = max_points
        self.series = 0
        self.points = 0
        self.dropped = 0
        self.evicted = 0


class Ring:
    """The points of one series in time order, at most `capacity`, charged to `budget`.

    `points` is the deque itself, for readers (binary search, slices from the nearer end);
    only the ring's methods change it. `folded` counts the folded slots held (0: every point
    is raw, readers can take values as they are).
    """

    __slots__ = ("budget", "folded", "points")

    def __init__(self, capacity: int, budget: Budget) -> None:
        self.points: deque[Point] = deque(maxlen=capacity)
        self.folded = 0
        self.budget = budget

    def append(self, point: RawPoint) -> None:
        """Add `point` as the newest, in a slot of its own.

        At capacity the oldest point goes first; when the store-wide budget is full the oldest
        goes too (counted in `Budget.evicted`), so a ring no longer grows and keeps its
        newest points.
        """
        points = self.points
        budget = self.budget
        if len(points) == points.maxlen:
            self.evict_oldest()
        elif budget.points >= budget.max_points and points:
            self.evict_oldest()
            budget.evicted += 1
        budget.points += 1
        points.append(point)

    def fold(self, point: Point) -> None:
        """Replace the newest point by `point`: its slot took one more sample, same shape.

        A counter's raw point stays raw; a folded slot stays folded (`promote` is for a raw
        point becoming a slot). Nothing is charged. The ring must not be empty.
        """
        self.points[-1] = point

    def promote(self, slot: GaugeSlot | HistogramSlot) -> None:
        """Replace the newest point, a raw one, by `slot`: the slot's second sample arrived.

        The slot is charged its extra weight; over the store-wide budget the oldest points then
        go (counted in `Budget.evicted`), never the newest. The ring must not be empty.
        """
        points = self.points
        points[-1] = slot
        self.folded += 1
        budget = self.budget
        budget.points += _WEIGHT[len(slot)] - 1
        while budget.points > budget.max_points and len(points) > 1:
            self.evict_oldest()
            budget.evicted += 1

    def evict_oldest(self) -> Point:
        """Remove and return the oldest point, giving its weight back to the budget.

        Raises:
            IndexError: the ring is empty.
        """
        point = self.points.popleft()
        if len(point) == 2:
            self.budget.points -= 1
        else:
            self.folded -= 1
            self.budget.points -= _WEIGHT[len(point)]
        return point

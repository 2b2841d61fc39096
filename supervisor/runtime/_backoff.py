"""Pure restart policy arithmetic: backoff delays and the restart-intensity window.

No event loop here; both are plain values and functions over timestamps, so they are tested
without one (property tests in tests/supervisor/runtime/test_backoff.py).
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass

__all__ = ["Backoff", "RestartWindow"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter between consecutive restarts of the same child.

    The n-th consecutive restart (n = 0 for the first restart after a good run) waits::

        n == 0: initial
        n >= 1: min(maximum, base * factor ** (n - 1))

    then multiplied by a uniform factor in ``[1 - jitter, 1 + jitter]`` (and capped at
    `maximum`). The count goes back to 0 when a child had been running for at least
    `reset_after` seconds before it crashed. With the defaults the first restart is immediate
    (as in OTP) and a crash loop settles at one restart every ~30 s, so it costs no CPU.

    Raises:
        ValueError: a negative delay, ``factor < 1``, ``jitter`` outside ``[0, 1]``,
            ``maximum < initial`` or a negative ``reset_after``.
    """

    initial: float = 0.0
    base: float = 0.1
    factor: float = 2.0
    maximum: float = 30.0
    jitter: float = 0.1
    reset_after: float = 30.0

    def __post_init__(self) -> None:
        for name in ("initial", "base", "maximum", "reset_after"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"Backoff.{name} must be a finite number >= 0, got {value!r}")
        if not self.factor >= 1:
            raise ValueError(f"Backoff.factor must be >= 1, got {self.factor!r}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"Backoff.jitter must be within [0, 1], got {self.jitter!r}")
        if self.maximum < self.initial:
            raise ValueError(
                f"Backoff.maximum ({self.maximum!r}) must be >= initial ({self.initial!r})"
            )

    @classmethod
    def none(cls) -> Backoff:
        """No delay at all: every restart is immediate (plain OTP behaviour)."""
        return cls(initial=0.0, base=0.0, factor=1.0, maximum=0.0, jitter=0.0)

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before the `attempt`-th consecutive restart (0-based).

        `rng` supplies the jitter; pass a seeded `random.Random` for deterministic delays.

        Raises:
            ValueError: `attempt` is negative.
        """
        if attempt < 0:
            raise ValueError(f"attempt must be >= 0, got {attempt!r}")
        if attempt == 0:
            delay = self.initial
        else:
            try:
                delay = min(self.maximum, self.base * self.factor ** (attempt - 1))
            except OverflowError:
                delay = self.maximum
        if self.jitter and delay:
            delay = min(self.maximum, delay * rng.uniform(1.0 - self.jitter, 1.0 + self.jitter))
        return delay


class RestartWindow:
    """Restart intensity: at most `intensity` restarts within any `period` seconds.

    `add(now)` records one restart at time `now` (timestamps must not decrease) and says whether
    it is still allowed: the restarts that count are those with ``now - t < period``, and more
    than `intensity` of them means the intensity is exceeded (OTP semantics). Memory is bounded
    by ``intensity + 1`` timestamps.

    Raises:
        ValueError: ``intensity < 0`` or ``period <= 0``.
    """

    __slots__ = ("_intensity", "_period", "_times")

    def __init__(self, intensity: int, period: float) -> None:
        if intensity < 0:
            raise ValueError(f"intensity must be >= 0, got {intensity!r}")
        if not period > 0:
            raise ValueError(f"period must be > 0, got {period!r}")
        self._intensity = intensity
        self._period = period
        self._times: deque[float] = deque(maxlen=intensity + 1)

    @property
    def intensity(self) -> int:
        """The maximum number of restarts allowed within `period`."""
        return self._intensity

    @property
    def period(self) -> float:
        """The length of the sliding window in seconds."""
        return self._period

    def _expire(self, now: float) -> None:
        times = self._times
        while times and now - times[0] >= self._period:
            times.popleft()

    def add(self, now: float) -> bool:
        """Record a restart at `now`; return False if this exceeds the intensity."""
        self._expire(now)
        self._times.append(now)
        return len(self._times) <= self._intensity

    def count(self, now: float) -> int:
        """How many recorded restarts are within the window ending at `now` (at most
        ``intensity + 1``)."""
        self._expire(now)
        return len(self._times)

    def reset(self) -> None:
        """Forget every recorded restart."""
        self._times.clear()

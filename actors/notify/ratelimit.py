"""Per-channel rate limit: a token bucket (pure; times are passed in, monotonic seconds)."""

from __future__ import annotations

__all__ = ["TokenBucket"]


class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up; one token per delivery attempt."""

    def __init__(self, *, rate: float, burst: int, now: float = 0.0) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("need rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._updated = now

    def take(self, now: float) -> float:
        """Take a token if one is available and return 0; else return seconds until one is.

        Nothing is taken when the answer is positive: wait that long and call again.
        """
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        self._updated = max(self._updated, now)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate

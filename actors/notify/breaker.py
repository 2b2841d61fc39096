"""Per-channel circuit breaker: a pure state machine (times are passed in, monotonic seconds).

    CLOSED --(failure_threshold consecutive retryable failures)--> OPEN
    OPEN --(reset_timeout elapsed; allow() lets one probe through)--> HALF_OPEN
    HALF_OPEN --success--> CLOSED        HALF_OPEN --failure--> OPEN (timer restarts)

While OPEN the delivery actor sends nothing and sleeps until `retry_at()`: a dead receiver is
probed once per reset_timeout instead of with every pending notification. Only retryable
failures count; a permanent refusal is about one payload, not the channel's health.
"""

from __future__ import annotations

import enum

__all__ = ["BreakerState", "CircuitBreaker"]


class BreakerState(enum.StrEnum):
    """The three states of a circuit breaker."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Counts consecutive failures of one channel and opens after `failure_threshold`."""

    def __init__(self, *, failure_threshold: int = 5, reset_timeout: float = 30.0) -> None:
        if failure_threshold < 1 or reset_timeout <= 0:
            raise ValueError("need failure_threshold >= 1 and reset_timeout > 0")
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0

    @property
    def state(self) -> BreakerState:
        """The current state (OPEN is reported until allow() moves it to HALF_OPEN)."""
        return self._state

    @property
    def failures(self) -> int:
        """Consecutive failures counted so far."""
        return self._failures

    def allow(self, now: float) -> bool:
        """Whether an attempt may be made at `now`; moves OPEN to HALF_OPEN when due."""
        if self._state is BreakerState.OPEN:
            if now < self._opened_at + self.reset_timeout:
                return False
            self._state = BreakerState.HALF_OPEN
        return True

    def retry_at(self) -> float:
        """When an OPEN breaker lets the next probe through."""
        return self._opened_at + self.reset_timeout

    def record_success(self) -> None:
        """An attempt succeeded: close."""
        self._state = BreakerState.CLOSED
        self._failures = 0

    def record_failure(self, now: float) -> None:
        """A retryable attempt failed at `now`."""
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN or self._failures >= self.failure_threshold:
            self._state = BreakerState.OPEN
            self._opened_at = now

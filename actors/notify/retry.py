"""Retry stage: when to try a failed delivery again (exponential backoff with jitter).

Pure: the random source and the times are passed in. A receiver's `Retry-After` wins over the
computed backoff (capped at `max_retry_after`); a notification still failing `give_up_after`
seconds after it was enqueued goes to the dead-letter list.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from actors.notify.outcome import Retry

__all__ = ["RetryPolicy", "backoff_delay", "next_attempt_at"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff parameters: delay(n) = min(maximum, initial * multiplier**(n-1)) +- jitter."""

    initial: float = 1.0
    maximum: float = 300.0
    multiplier: float = 2.0
    jitter: float = 0.2
    give_up_after: float = 86400.0
    max_retry_after: float = 3600.0

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.maximum < self.initial or self.multiplier < 1:
            raise ValueError("need 0 < initial <= maximum and multiplier >= 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")


def backoff_delay(policy: RetryPolicy, attempt: int, rng: random.Random) -> float:
    """Delay before retry number `attempt` (1 = after the first failure), jittered.

    The jitter spreads retries of many notifications (and many processes) so a receiver that
    comes back is not hit by a synchronised burst.
    """
    exponent = max(0, attempt - 1)
    # Cap the exponent so huge attempt counts cannot overflow.
    base = min(policy.maximum, policy.initial * policy.multiplier ** min(exponent, 64))
    spread = base * policy.jitter
    return max(0.0, base + rng.uniform(-spread, spread))


def next_attempt_at(
    policy: RetryPolicy,
    outcome: Retry,
    *,
    attempts: int,
    created_at: float,
    now: float,
    rng: random.Random,
) -> float | None:
    """Wall time of the next attempt after a retryable failure, or None to give up.

    `attempts` counts attempts made so far, including the one that just failed.
    """
    if outcome.retry_after is not None:
        delay = min(outcome.retry_after, policy.max_retry_after)
    else:
        delay = backoff_delay(policy, attempts, rng)
    at = now + delay
    if at - created_at > policy.give_up_after:
        return None
    return at

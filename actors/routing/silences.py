"""Silences, Alertmanager style: matchers + [starts, ends), created_by, comment.

States: pending (before `starts_at`), active, expired (at or after `ends_at`). Deleting a silence
expires it now (it stays listed as expired). At least one matcher must not match the empty
string, so a silence can never mute every alert by accident.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from actors.routing.exceptions import InvalidSilence
from actors.routing.matchers import Matcher, matches_all, parse_matchers

__all__ = ["Silence", "SilenceState", "active_silences", "expire", "make_silence", "silenced_by"]


class SilenceState(enum.StrEnum):
    """Where a silence is in its life."""

    PENDING = "pending"
    ACTIVE = "active"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Silence:
    """One silence; times are Unix seconds."""

    id: str
    matchers: tuple[str, ...]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    updated_at: float
    parsed: tuple[Matcher, ...] = ()

    def state(self, now: float) -> SilenceState:
        """The state at `now`."""
        if now >= self.ends_at:
            return SilenceState.EXPIRED
        if now < self.starts_at:
            return SilenceState.PENDING
        return SilenceState.ACTIVE

    def mutes(self, labels: Mapping[str, str], now: float) -> bool:
        """Whether this silence mutes an alert with `labels` at `now`."""
        return self.state(now) is SilenceState.ACTIVE and matches_all(self.parsed, labels)


def _representable(ts: float) -> bool:
    """Whether `ts` is a finite time that RFC 3339 (and so the API's answer) can show."""
    try:
        dt.datetime.fromtimestamp(ts, tz=dt.UTC)
    except (OverflowError, OSError, ValueError):
        return False
    return True


def make_silence(
    *,
    matchers: Sequence[str],
    starts_at: float | None,
    ends_at: float,
    created_by: str,
    comment: str,
    now: float,
    silence_id: str | None = None,
) -> Silence:
    """Validate and build a silence; `starts_at` None means now. The id is derived if not given.

    Raises:
        InvalidSilence: no matcher, only matchers that match the empty string, a time that is
            not finite or outside the years 1..9999, or ends <= starts.
        InvalidMatcher: a matcher string is invalid.
    """
    if not matchers:
        raise InvalidSilence("at least one matcher is required")
    parsed = parse_matchers(matchers)
    if all(m.matches_value("") for m in parsed):
        raise InvalidSilence("at least one matcher must not match the empty string")
    start = now if starts_at is None else starts_at
    for what, when in (("starts", start), ("ends", ends_at)):
        if not _representable(when):
            raise InvalidSilence(f"{what} is not a time between the years 1 and 9999")
    if ends_at <= start:
        raise InvalidSilence("ends must be after starts")
    if silence_id is None:
        digest = hashlib.sha256(
            "\x00".join([*matchers, repr(start), repr(ends_at), created_by, comment]).encode()
        )
        silence_id = digest.hexdigest()[:16]
    return Silence(
        id=silence_id,
        matchers=tuple(matchers),
        starts_at=start,
        ends_at=ends_at,
        created_by=created_by,
        comment=comment,
        updated_at=now,
        parsed=parsed,
    )


def expire(silence: Silence, now: float) -> Silence:
    """The silence expired at `now` (unchanged if it already ended; a pending one ends at once)."""
    if silence.state(now) is SilenceState.EXPIRED:
        return silence
    return replace(silence, ends_at=now, starts_at=min(silence.starts_at, now), updated_at=now)


def active_silences(silences: Iterable[Silence], now: float) -> list[Silence]:
    """The silences active at `now`."""
    return [s for s in silences if s.state(now) is SilenceState.ACTIVE]


def silenced_by(
    silences: Iterable[Silence], labels: Mapping[str, str], now: float
) -> tuple[str, ...]:
    """Ids of the silences muting `labels` at `now`."""
    return tuple(s.id for s in silences if s.mutes(labels, now))

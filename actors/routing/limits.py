"""What a client of the alerting API may send: the bounds that keep one request cheap.

Pure checks over plain data, each raising `LimitExceeded` (or `InvalidSilence` for a time) with
a message that names the limit. The API (`actors.routing.api`) answers them with 400; the
limits are documented in docs/security.md.

- `MAX_FILTERS` filters of at most `MAX_FILTER_LENGTH` characters on `GET /api/v1/alerts` and
  `GET /api/v2/silences` (with RE2 a regex runs in linear time; these bound that time).
- A silence has at most `MAX_MATCHERS` matchers of at most `MAX_MATCHER_LENGTH` characters
  (`actors.routing.matchers`, which refuses longer ones wherever they come from), a
  comment of at most `MAX_COMMENT` and a `createdBy` of at most `MAX_CREATED_BY` characters,
  lasts at most `MAX_SILENCE_DURATION` from its start (or from now, when it started already),
  and starts no more than that before or after now.
- At most `MAX_LIVE_SILENCES` silences are pending or active at once (`Silences.max_live`).
- A JSON body nests at most `MAX_JSON_DEPTH` levels.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from actors.routing.exceptions import InvalidSilence, LimitExceeded
from actors.routing.matchers import MAX_MATCHER_LENGTH

__all__ = [
    "MAX_COMMENT",
    "MAX_CREATED_BY",
    "MAX_FILTERS",
    "MAX_FILTER_LENGTH",
    "MAX_JSON_DEPTH",
    "MAX_LIVE_SILENCES",
    "MAX_MATCHERS",
    "MAX_SILENCE_DURATION",
    "check_filters",
    "check_silence_times",
    "json_too_deep",
    "timestamp_of",
]

MAX_FILTERS = 32
MAX_FILTER_LENGTH = MAX_MATCHER_LENGTH
MAX_MATCHERS = 32
MAX_COMMENT = 2000
MAX_CREATED_BY = 200
MAX_SILENCE_DURATION = 1827 * 86400.0  # five years: longer is a rule to delete, not a silence
MAX_LIVE_SILENCES = 1000
MAX_JSON_DEPTH = 32


def check_filters(texts: Sequence[str]) -> None:
    """Raises LimitExceeded: more than `MAX_FILTERS` filters, or one longer than
    `MAX_FILTER_LENGTH` characters."""
    if len(texts) > MAX_FILTERS:
        raise LimitExceeded(f"at most {MAX_FILTERS} filters are accepted, got {len(texts)}")
    for text in texts:
        if len(text) > MAX_FILTER_LENGTH:
            raise LimitExceeded(
                f"a filter is at most {MAX_FILTER_LENGTH} characters, got one of {len(text)}"
            )


def timestamp_of(when: dt.datetime, what: str) -> float:
    """Unix seconds of an aware datetime.

    Raises:
        InvalidSilence: it is not a representable time (e.g. year 1 with a positive offset).
    """
    try:
        return when.timestamp()
    except (OverflowError, OSError, ValueError):
        raise InvalidSilence(f"{what} is not a representable time") from None


def _days(seconds: float) -> str:
    return f"{seconds / 86400.0:g} days"


def check_silence_times(starts: float | None, ends: float, now: float) -> None:
    """A silence from `starts` (None: now) to `ends` is within the bounds of the module docstring.

    Raises:
        InvalidSilence: startsAt more than `MAX_SILENCE_DURATION` before or after now, or the
            silence lasting longer than that from max(starts, now).
    """
    limit = MAX_SILENCE_DURATION
    if starts is not None and not now - limit <= starts <= now + limit:
        raise InvalidSilence(
            f"startsAt must be within {_days(limit)} of now (a silence that starts earlier"
            " starts now; one that starts later can be created nearer the time)"
        )
    begin = now if starts is None else max(starts, now)
    if not ends - begin <= limit:  # also false for NaN
        raise InvalidSilence(
            f"a silence may not be longer than {_days(limit)}; create a new one when it ends"
        )


def json_too_deep(data: object, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether decoded JSON `data` nests deeper than `limit` arrays and objects (iterative: never
    recurses, so any depth is safe to ask about)."""
    stack: list[tuple[object, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > limit:
                return True
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return False

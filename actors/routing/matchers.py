"""Label matchers, Alertmanager style: `=`, `!=`, `=~` and `!~` (regexes fully anchored)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from actors.routing.config import split_matcher
from actors.routing.exceptions import InvalidMatcher

__all__ = ["Matcher", "matches_all", "parse_matcher", "parse_matchers"]


@dataclass(frozen=True, slots=True)
class Matcher:
    """One label condition; a missing label matches as the empty string (as in Alertmanager)."""

    name: str
    op: str
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.op in ("=~", "!~") and self._regex is None:
            try:
                pattern = re.compile(f"(?:{self.value})")
            except re.error as exc:
                raise InvalidMatcher(str(self), str(exc)) from exc
            object.__setattr__(self, "_regex", pattern)
        elif self.op not in ("=", "!=", "=~", "!~"):
            raise InvalidMatcher(str(self), f"unknown operator {self.op!r}")

    def matches_value(self, value: str) -> bool:
        """Whether a label value satisfies this matcher."""
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        assert self._regex is not None
        found = self._regex.fullmatch(value) is not None
        return found if self.op == "=~" else not found

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether `labels` satisfy this matcher (absent label = empty string)."""
        return self.matches_value(labels.get(self.name, ""))

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{self.value}"'


def parse_matcher(text: str) -> Matcher:
    """Parse `name=value`, `name!=value`, `name=~re`, `name!~re` (value may be quoted).

    Raises:
        InvalidMatcher: the text is not a matcher or its regex does not compile.
    """
    try:
        name, op, value = split_matcher(text)
    except ValueError as exc:
        raise InvalidMatcher(text, str(exc)) from exc
    return Matcher(name, op, value)


def parse_matchers(texts: Iterable[str]) -> tuple[Matcher, ...]:
    """Parse every matcher string.

    Raises:
        InvalidMatcher: any of them is invalid.
    """
    return tuple(parse_matcher(t) for t in texts)


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    """Whether `labels` satisfy every matcher (an empty set matches everything)."""
    return all(m.matches(labels) for m in matchers)

"""Label matchers, Alertmanager style: `=`, `!=`, `=~` and `!~` (regexes fully anchored).

This module is the one place a matcher is parsed and its regex compiled: the config models
(`actors.routing.config.MatcherText`, read by check-config) validate a matcher by building a
`Matcher` here, and routes, inhibit rules, silences (config and API), maintenance windows and API
filters build the same object at run time. So whatever check-config accepts also runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from actors.routing.exceptions import InvalidMatcher

__all__ = [
    "Matcher",
    "compile_matcher_regex",
    "matches_all",
    "parse_matcher",
    "parse_matchers",
    "split_matcher",
]

_MATCHER = re.compile(r"^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")
# A leading inline flag group such as `(?i)`, `(?is)` or `(?i-s)`.
_LEADING_FLAGS = re.compile(r"\(\?([A-Za-z]*)(?:-([A-Za-z]*))?\)")
# The flags RE2 (Alertmanager's engine) knows that Python's `re` has with the same meaning; RE2's
# `U` (ungreedy) has no Python equivalent.
_SUPPORTED_FLAGS = frozenset("ims")


def compile_matcher_regex(pattern: str) -> re.Pattern[str]:
    """Compile the regex of a `=~`/`!~` matcher; match it with `fullmatch` (anchored).

    Alertmanager anchors a matcher's regex as `^(?:pattern)$`. RE2 accepts an inline flag
    group such as `(?i)` inside that group, where Python rejects global flags that are not at
    the very start; so leading flag groups (`(?i)`, `(?is)`, `(?i-s)`, several in a row) become
    one scoped group around the rest, `(?i:rest)`, which means the same. Only the flags `i`, `m`
    and `s` are accepted there.

    Raises:
        ValueError: the pattern does not compile or uses an unsupported leading flag; the
            message says why.
    """
    flags: dict[str, bool] = {}
    rest = pattern
    while (found := _LEADING_FLAGS.match(rest)) is not None:
        on, off = found.group(1), found.group(2) or ""
        if not on and not off:
            break  # `(?)` or `(?-)`: left to the compiler, which rejects it
        unsupported = sorted(set(on + off) - _SUPPORTED_FLAGS)
        if unsupported:
            raise ValueError(
                f"unsupported inline flag {''.join(unsupported)!r} in {pattern!r} "
                "(supported: i, m, s)"
            )
        flags.update(dict.fromkeys(on, True))
        flags.update(dict.fromkeys(off, False))
        rest = rest[found.end() :]
    if flags:
        on = "".join(sorted(f for f, v in flags.items() if v))
        off = "".join(sorted(f for f, v in flags.items() if not v))
        rest = f"(?{on}{'-' + off if off else ''}:{rest})"
    try:
        return re.compile(rest)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from exc


def split_matcher(text: str) -> tuple[str, str, str]:
    """Split a matcher string into (label, operator, value); the value may be double-quoted.

    Only the syntax is checked here; `parse_matcher` also compiles a regex.

    Raises:
        ValueError: not `label OP value`.
    """
    match = _MATCHER.match(text)
    if match is None:
        raise ValueError(
            f"invalid matcher {text!r}; expected label=value, label!=value, label=~regex "
            "or label!~regex"
        )
    name, op, value = match.groups()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return name, op, value


@dataclass(frozen=True, slots=True)
class Matcher:
    """One label condition; a missing label matches as the empty string (as in Alertmanager).

    Raises:
        InvalidMatcher: unknown operator, or the regex does not compile
            (see `compile_matcher_regex`).
    """

    name: str
    op: str
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.op in ("=~", "!~") and self._regex is None:
            try:
                pattern = compile_matcher_regex(self.value)
            except ValueError as exc:
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

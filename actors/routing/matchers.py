"""Label matchers in Alertmanager's grammar: `=`, `!=`, `=~` and `!~`, regexes in RE2.

This module is the one place a matcher is parsed and its regex compiled: the config models
(`actors.routing.config.MatcherText`, read by check-config) validate matchers by building
`Matcher` objects here, and routes, inhibit rules, silences (config and API), maintenance windows
and API filters build the same objects at run time. So whatever check-config accepts also runs.

The grammar is Alertmanager's (`pkg/labels/parse.go`):
- one matcher is `name OP value`, whitespace around each token ignored; `name` is a Prometheus
  label name (`[a-zA-Z_:][a-zA-Z0-9_:]*`); the value may be double-quoted, and in it `\\"` is a
  double quote, `\\\\` a backslash and `\\n` a line feed; any other backslash is literal
  (`path=~"a\\.b"` is the regex `a\\.b`); an unescaped `"` inside the value is an error;
- a matcher list (the `matchers` of a route, an inhibit rule or a maintenance window) may hold
  several matchers in one string, separated by commas outside quotes, optionally in braces:
  `{a="b", c=~"d"}`, `a=b,c=d`; a trailing comma is allowed.

A regex is matched as Alertmanager matches it: compiled with RE2 as `^(?:regex)$`, so it is
anchored, `\\d` and `[[:alpha:]]` are ASCII classes, inline flags (`(?i)`, `(?s)`, `(?U)`) may
appear anywhere, and look-arounds and back-references are errors.

A matcher is at most `MAX_MATCHER_LENGTH` characters (a list string too), so a config or an API
request cannot make us compile an unbounded regex; RE2 itself bounds a regex's memory. RE2 (the
`re2` module, ~2.5 MB of memory) is imported by the first regex compiled, so a process whose
routes, rules and silences use only `=` and `!=` never loads it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from actors.routing.exceptions import InvalidMatcher

if TYPE_CHECKING:
    import re2

__all__ = [
    "MAX_MATCHER_LENGTH",
    "OPERATORS",
    "Matcher",
    "compile_matcher_regex",
    "format_matcher",
    "matches_all",
    "parse_matcher",
    "parse_matcher_list",
    "parse_matcher_lists",
    "parse_matchers",
    "split_matcher",
    "split_matcher_list",
]

MAX_MATCHER_LENGTH = 4096
"""The longest matcher (or matcher list) string accepted, in characters."""

OPERATORS = ("=", "!=", "=~", "!~")

# Alertmanager's matcher regex. Go's `\s` is [\t\n\f\r ]; `\Z` because Python's `$` would also
# match before a final line feed.
_WS = "[\t\n\f\r ]"
_MATCHER = re.compile(
    rf"^{_WS}*([a-zA-Z_:][a-zA-Z0-9_:]*){_WS}*(=~|=|!=|!~){_WS}*(.*?){_WS}*\Z", re.DOTALL
)


def _re2_options() -> re2.Options:
    import re2  # here, not at the top: only a regex matcher needs RE2 (~2.5 MB of memory)

    options = re2.Options()
    options.log_errors = False  # errors are raised (and reported) by us, not printed by RE2
    return options


def _refuse_beyond_go(pattern: str) -> None:
    """Refuse the two things RE2 (C++) takes that Alertmanager's Go regexp refuses: `\\C` (one
    byte) and `(?<name>...)` groups (Go takes `(?P<name>...)`).

    Raises:
        ValueError: either is used (outside `\\Q...\\E`; `(?<` also outside a class).
    """
    i, end, in_class = 0, len(pattern), False
    while i < end:
        if pattern[i] == "\\" and i + 1 < end:
            if pattern[i + 1] == "Q":  # quoted up to \E (or the end): nothing special inside
                close = pattern.find("\\E", i + 2)
                i = end if close < 0 else close + 2
                continue
            if pattern[i + 1] == "C":
                raise ValueError(f"invalid regular expression {pattern!r}: \\C is not supported")
            i += 2
            continue
        if in_class:
            if pattern.startswith("[:", i) and (close := pattern.find(":]", i + 2)) >= 0:
                i = close + 2  # [:alpha:]
                continue
            in_class = pattern[i] != "]"
        elif pattern[i] == "[":
            in_class = True
            i += 1
            i += pattern.startswith("^", i)
            i += pattern.startswith("]", i)  # a leading ] is a literal member
            continue
        elif pattern.startswith("(?<", i) and not pattern.startswith(("(?<=", "(?<!"), i):
            raise ValueError(
                f"invalid regular expression {pattern!r}: named groups are written (?P<name>...)"
            )
        i += 1


def compile_matcher_regex(pattern: str) -> re2._Regexp[str]:
    """Compile the regex of a `=~`/`!~` matcher as Alertmanager does: RE2, `^(?:pattern)$`.

    Match the result with `search` (it is anchored already). What Go's regexp (Alertmanager's
    RE2) refuses is refused, though RE2 in C++ takes it: `\\C` and `(?<name>...)`.

    Raises:
        ValueError: the pattern does not compile (RE2 syntax, or too large); the message says why.
    """
    import re2  # see _re2_options

    _refuse_beyond_go(pattern)
    try:
        return re2.compile(f"^(?:{pattern})$", _re2_options())
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(f"invalid regular expression {pattern!r}: {reason}") from None


def _unescape(raw: str, text: str) -> str:
    """Alertmanager's value unescaping (see the module docstring).

    Raises:
        ValueError: an unescaped double quote inside the value, or an unterminated quote.
    """
    quoted = raw.startswith('"')
    if quoted:
        raw = raw[1:]
    out: list[str] = []
    escaped = False
    last = len(raw) - 1
    for i, char in enumerate(raw):
        if escaped:
            escaped = False
            if char == "n":
                out.append("\n")
            elif char in '"\\':
                out.append(char)
            else:  # a spurious escape: the backslash is literal
                out.append("\\" + char)
            continue
        if char == "\\":
            if i < last:
                escaped = True
            else:
                out.append("\\")
        elif char == '"':
            if not quoted or i < last:
                raise ValueError(f"invalid matcher {text!r}: unescaped double quote in the value")
            quoted = False
        else:
            out.append(char)
    if quoted:
        raise ValueError(f"invalid matcher {text!r}: unescaped double quote in the value")
    return "".join(out)


def _check_length(text: str) -> None:
    if len(text) > MAX_MATCHER_LENGTH:
        raise ValueError(f"longer than {MAX_MATCHER_LENGTH} characters")


def split_matcher(text: str) -> tuple[str, str, str]:
    """Split one matcher into (label, operator, value), the value unquoted and unescaped.

    Only the syntax is checked here; `parse_matcher` also compiles a regex.

    Raises:
        ValueError: not `label OP value`, a misplaced double quote, or too long.
    """
    _check_length(text)
    match = _MATCHER.match(text)
    if match is None:
        raise ValueError(
            f"invalid matcher {text!r}; expected label=value, label!=value, label=~regex "
            "or label!~regex"
        )
    name, op, raw = match.groups()
    return name, op, _unescape(raw, text)


def split_matcher_list(text: str) -> list[str]:
    """Split a matcher list (`{a="b", c=~"d"}`, `a=b,c=d`) into its matcher strings.

    One leading `{` and one trailing `}` are dropped; commas inside double quotes do not
    separate; a trailing comma is allowed; an empty list (`""`, `{}`) is no matcher.

    Raises:
        ValueError: the string is too long.
    """
    _check_length(text)
    body = text.removeprefix("{").removesuffix("}")
    tokens: list[str] = []
    token: list[str] = []
    inside = escaped = False
    for char in body:
        if char == ",":
            if not inside:
                tokens.append("".join(token))
                token = []
                continue
        elif char == '"':
            if not escaped:
                inside = not inside
            else:
                escaped = False
        elif char == "\\":
            escaped = not escaped
        else:
            escaped = False
        token.append(char)
    last = "".join(token).strip()
    if last:
        tokens.append(last)
    return tokens


def format_matcher(name: str, op: str, value: str) -> str:
    """The matcher as text that `parse_matcher` reads back to the same matcher: the value
    double-quoted with `\\`, `"` and line feeds escaped (Alertmanager's `String()`)."""
    escaped = value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return f'{name}{op}"{escaped}"'


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
    _regex: re2._Regexp[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.op not in OPERATORS:
            raise InvalidMatcher(str(self), f"unknown operator {self.op!r}")
        if self.op in ("=~", "!~") and self._regex is None:
            try:
                pattern = compile_matcher_regex(self.value)
            except ValueError as exc:
                raise InvalidMatcher(str(self), str(exc)) from None
            object.__setattr__(self, "_regex", pattern)

    def matches_value(self, value: str) -> bool:
        """Whether a label value satisfies this matcher."""
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        assert self._regex is not None
        found = self._regex.search(value) is not None
        return found if self.op == "=~" else not found

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether `labels` satisfy this matcher (absent label = empty string)."""
        return self.matches_value(labels.get(self.name, ""))

    def __str__(self) -> str:
        return format_matcher(self.name, self.op, self.value)


def parse_matcher(text: str) -> Matcher:
    """Parse exactly one matcher: `name=value`, `name!=value`, `name=~re`, `name!~re`.

    Raises:
        InvalidMatcher: the text is not a matcher, is too long, or its regex does not compile.
    """
    try:
        name, op, value = split_matcher(text)
    except ValueError as exc:
        raise InvalidMatcher(text, str(exc)) from None
    return Matcher(name, op, value)


def parse_matchers(texts: Iterable[str]) -> tuple[Matcher, ...]:
    """Parse one matcher per string (silences, API filters).

    Raises:
        InvalidMatcher: any of them is invalid.
    """
    return tuple(parse_matcher(t) for t in texts)


def parse_matcher_list(text: str) -> tuple[Matcher, ...]:
    """Parse a matcher list string (`{a="b",c=~"d"}`, `a=b, c=d`, or one matcher).

    Raises:
        InvalidMatcher: the list or one of its matchers is invalid.
    """
    try:
        tokens = split_matcher_list(text)
    except ValueError as exc:
        raise InvalidMatcher(text, str(exc)) from None
    return tuple(parse_matcher(token) for token in tokens)


def parse_matcher_lists(texts: Iterable[str]) -> tuple[Matcher, ...]:
    """Parse the `matchers` of a route, inhibit rule or maintenance window: each string is a
    matcher list and the result is all their matchers (Alertmanager's config `matchers`).

    Raises:
        InvalidMatcher: any of them is invalid.
    """
    return tuple(m for text in texts for m in parse_matcher_list(text))


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    """Whether `labels` satisfy every matcher (an empty set matches everything)."""
    return all(m.matches(labels) for m in matchers)

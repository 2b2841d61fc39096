"""Where each key of a TOML document is written: a position index for error messages.

`tomllib` parses without positions, so this module scans the (already valid) source once more and
records the line and column of every key, table header, array-of-tables element and array item,
keyed by the same path that `tomllib`'s result uses: `("checks", 1, "timeout")`.

The scanner trusts its input to be valid TOML (it runs only after `tomllib` accepted the text);
on anything it does not understand it stops scanning and keeps what it has found, so a lookup
falls back to the nearest enclosing key (`PositionIndex.find`).
"""

from __future__ import annotations

import contextlib
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["KeyPath", "Position", "PositionIndex", "index_positions"]

KeyPath = tuple[str | int, ...]
"""A path into a TOML document: table keys (str) and array indexes (int)."""


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """A 1-based line and column in a source text."""

    line: int
    column: int


class PositionIndex:
    """Positions of the keys of one TOML document (see `index_positions`)."""

    def __init__(self, positions: dict[KeyPath, Position]) -> None:
        self._positions = positions

    def get(self, path: Sequence[str | int]) -> Position | None:
        """The position of exactly `path`, or None when it is not written in the source."""
        return self._positions.get(tuple(path))

    def find(self, path: Sequence[str | int]) -> Position | None:
        """The position of `path`, else of its nearest enclosing key written in the source."""
        key = tuple(path)
        while key:
            found = self._positions.get(key)
            if found is not None:
                return found
            key = key[:-1]
        return None

    def __len__(self) -> int:
        return len(self._positions)


class _Stop(Exception):
    """The scanner met something it does not understand; keep what was found so far."""


_BARE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_SCALAR_END = frozenset(",]}#\n\r")


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.line_start = 0
        self.positions: dict[KeyPath, Position] = {}
        # Array-of-tables: the current index of each `[[path]]`, by resolved path.
        self.aot_index: dict[KeyPath, int] = {}

    # -- low level --------------------------------------------------------------------------
    def here(self) -> Position:
        return Position(self.line, self.pos - self.line_start + 1)

    def peek(self, offset: int = 0) -> str:
        index = self.pos + offset
        return self.text[index] if index < len(self.text) else ""

    def advance(self, count: int = 1) -> None:
        for _ in range(count):
            if self.pos >= len(self.text):
                return
            if self.text[self.pos] == "\n":
                self.line += 1
                self.line_start = self.pos + 1
            self.pos += 1

    def skip_blank(self, *, newlines: bool) -> None:
        """Skip spaces and tabs (and newlines and comments when `newlines`)."""
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char in " \t" or (newlines and char in "\r\n"):
                self.advance()
            elif char == "#" and newlines:
                self.skip_comment()
            else:
                return

    def skip_comment(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] != "\n":
            self.advance()

    def record(self, path: KeyPath, where: Position) -> None:
        self.positions.setdefault(path, where)

    # -- keys ----------------------------------------------------------------------------------
    def key_part(self) -> str:
        char = self.peek()
        if char == '"':
            return self.basic_string()
        if char == "'":
            return self.literal_string()
        start = self.pos
        while self.peek() and self.peek() in _BARE:
            self.advance()
        if self.pos == start:
            raise _Stop
        return self.text[start : self.pos]

    def dotted_key(self) -> list[str]:
        parts = [self.key_part()]
        while True:
            self.skip_blank(newlines=False)
            if self.peek() != ".":
                return parts
            self.advance()
            self.skip_blank(newlines=False)
            parts.append(self.key_part())

    # -- strings -------------------------------------------------------------------------------
    def basic_string(self) -> str:
        if self.text.startswith('"""', self.pos):
            self.advance(3)
            end = self.text.find('"""', self.pos)
            while end != -1 and _escaped(self.text, end):
                end = self.text.find('"""', end + 1)
            if end == -1:
                raise _Stop
            # A multi-line string may end with up to two extra quotes ("""a"""").
            while self.text.startswith('"', end + 3):
                end += 1
            value = self.text[self.pos : end]
            self.advance(end + 3 - self.pos)
            return value
        start = self.pos
        self.advance()
        while True:
            char = self.peek()
            if char in ("", "\n"):
                raise _Stop
            if char == "\\":
                self.advance(2)
                continue
            self.advance()
            if char == '"':
                raw = self.text[start : self.pos]
                if "\\" not in raw:
                    return raw[1:-1]
                # Escapes in a quoted key are rare: let tomllib decode them.
                decoded = tomllib.loads(f"k = {raw}")["k"]
                return decoded if isinstance(decoded, str) else raw[1:-1]

    def literal_string(self) -> str:
        if self.text.startswith("'''", self.pos):
            self.advance(3)
            end = self.text.find("'''", self.pos)
            if end == -1:
                raise _Stop
            while self.text.startswith("'", end + 3):
                end += 1
            value = self.text[self.pos : end]
            self.advance(end + 3 - self.pos)
            return value
        self.advance()
        end = self.text.find("'", self.pos)
        if end == -1:
            raise _Stop
        value = self.text[self.pos : end]
        self.advance(end + 1 - self.pos)
        return value

    # -- values --------------------------------------------------------------------------------
    def value(self, path: KeyPath) -> None:
        char = self.peek()
        if char == '"':
            self.basic_string()
        elif char == "'":
            self.literal_string()
        elif char == "[":
            self.array(path)
        elif char == "{":
            self.inline_table(path)
        else:
            start = self.pos
            while self.peek() and self.peek() not in _SCALAR_END:
                # A datetime may hold one space ("1979-05-27 07:32:00"); a value never ends in one.
                self.advance()
            if self.pos == start:
                raise _Stop

    def array(self, path: KeyPath) -> None:
        self.advance()  # [
        index = 0
        while True:
            self.skip_blank(newlines=True)
            if self.peek() == "]":
                self.advance()
                return
            if not self.peek():
                raise _Stop
            item = (*path, index)
            self.record(item, self.here())
            self.value(item)
            index += 1
            self.skip_blank(newlines=True)
            if self.peek() == ",":
                self.advance()
            elif self.peek() != "]":
                raise _Stop

    def inline_table(self, path: KeyPath) -> None:
        self.advance()  # {
        while True:
            self.skip_blank(newlines=True)
            if self.peek() == "}":
                self.advance()
                return
            self.key_value(path)
            self.skip_blank(newlines=True)
            if self.peek() == ",":
                self.advance()
            elif self.peek() != "}":
                raise _Stop

    def key_value(self, table: KeyPath) -> None:
        where = self.here()
        keys = self.dotted_key()
        for depth in range(1, len(keys) + 1):
            self.record((*table, *keys[:depth]), where)
        self.skip_blank(newlines=False)
        if self.peek() != "=":
            raise _Stop
        self.advance()
        self.skip_blank(newlines=False)
        self.value((*table, *keys))

    # -- document ------------------------------------------------------------------------------
    def resolve(self, keys: Sequence[str]) -> KeyPath:
        """Map a header's dotted key to a path, entering the current element of every
        array of tables met on the way (`[rules.condition]` after `[[rules]]`)."""
        path: KeyPath = ()
        for key in keys:
            path = (*path, key)
            if path in self.aot_index:
                path = (*path, self.aot_index[path])
        return path

    def header(self) -> KeyPath:
        where = self.here()
        is_array = self.text.startswith("[[", self.pos)
        self.advance(2 if is_array else 1)
        self.skip_blank(newlines=False)
        keys = self.dotted_key()
        self.skip_blank(newlines=False)
        closing = "]]" if is_array else "]"
        if not self.text.startswith(closing, self.pos):
            raise _Stop
        self.advance(len(closing))
        parent = self.resolve(keys[:-1])
        for depth in range(1, len(keys)):
            self.record(self.resolve(keys[:depth]), where)
        table = (*parent, keys[-1])
        self.record(table, where)
        if not is_array:
            return table
        index = self.aot_index.get(table, -1) + 1
        self.aot_index[table] = index
        element = (*table, index)
        self.record(element, where)
        return element

    def document(self) -> None:
        table: KeyPath = ()
        while True:
            self.skip_blank(newlines=True)
            if not self.peek():
                return
            table = self.header() if self.peek() == "[" else self._key_value_line(table)

    def _key_value_line(self, table: KeyPath) -> KeyPath:
        self.key_value(table)
        return table


def _escaped(text: str, index: int) -> bool:
    """Whether the character at `index` is escaped by an odd number of backslashes."""
    count = 0
    while index - count - 1 >= 0 and text[index - count - 1] == "\\":
        count += 1
    return count % 2 == 1


def index_positions(text: str) -> PositionIndex:
    """Index the positions of every key of the TOML `text` (best effort, never raises)."""
    scanner = _Scanner(text)
    with contextlib.suppress(_Stop, tomllib.TOMLDecodeError):
        scanner.document()
    return PositionIndex(scanner.positions)

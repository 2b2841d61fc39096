"""Configuration problems and the exception that carries all of them.

Exception tree (the only exceptions of the configuration package):

    ConfigError                 the file cannot be used; `.issues` holds every problem found
      (no subclasses: syntax, interpolation, validation and reference problems are all issues)

Each `ConfigIssue` renders as `PATH:LINE:COL: KEY.PATH: message` (line and column when known,
the key path when the problem belongs to a key). Messages never contain a secret's value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from supervisor._config.positions import KeyPath, Position

__all__ = ["ConfigError", "ConfigIssue", "format_key_path"]

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def format_key_path(path: Sequence[str | int]) -> str:
    """Render a key path the way users write it: `checks[1].timeout`, `channels."a.b".url`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        text = part if _BARE_KEY.match(part) else '"' + part.replace('"', '\\"') + '"'
        out += f".{text}" if out else text
    return out


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in one configuration file."""

    file: str
    message: str
    key_path: KeyPath = ()
    position: Position | None = None

    def sort_key(self) -> tuple[int, int, str, str]:
        line, column = (self.position.line, self.position.column) if self.position else (0, 0)
        return (line, column, format_key_path(self.key_path), self.message)

    def __str__(self) -> str:
        where = self.file
        if self.position is not None:
            where += f":{self.position.line}:{self.position.column}"
        if self.key_path:
            return f"{where}: {format_key_path(self.key_path)}: {self.message}"
        return f"{where}: {self.message}"


class ConfigError(Exception):
    """A configuration file cannot be used. `issues` lists every problem, sorted by position.

    `str(error)` is one issue per line, ready to print.
    """

    def __init__(self, issues: Iterable[ConfigIssue]) -> None:
        ordered = tuple(sorted(issues, key=ConfigIssue.sort_key))
        super().__init__("\n".join(str(issue) for issue in ordered))
        self.issues = ordered

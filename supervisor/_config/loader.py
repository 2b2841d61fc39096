"""TOML text -> validated, frozen model, with every problem located in the source.

Steps: `tomllib` parse (a syntax error is one issue at its line and column) -> `${VAR}`
interpolation of every string -> pydantic validation (and, for a table with an invalid key, its
model-level checks over the keys that are valid: `crosskeys`) and the caller's reference checks
(these read the raw tree, so they run even when validation fails). Every problem of the last
three steps is collected; they are raised together as one `ConfigError`.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from supervisor._config.crosskeys import cross_key_problems
from supervisor._config.interpolate import interpolate
from supervisor._config.issues import ConfigError, ConfigIssue
from supervisor._config.positions import KeyPath, Position, PositionIndex, index_positions
from supervisor._config.validation import Problem, secret_values, validate

__all__ = ["Document", "load_model", "parse_toml"]

M = TypeVar("M", bound=BaseModel)

_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_AT_END = re.compile(r"\s*\(at end of document\)$")


def _end_position(text: str) -> Position:
    lines = text.split("\n")
    return Position(len(lines), len(lines[-1]) + 1)


def parse_toml(text: str, file: str) -> dict[str, Any]:
    """Parse TOML text.

    Raises:
        ConfigError: one issue `FILE:LINE:COL: message` for the syntax error.
    """
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc.args[0] if exc.args else exc)
        position: Position | None = None
        match = _AT.search(message)
        if match:
            position = Position(int(match.group(1)), int(match.group(2)))
            message = message[: match.start()]
        elif _AT_END.search(message):
            position = _end_position(text)
            message = _AT_END.sub("", message)
        message = message[:1].lower() + message[1:] if message else "invalid TOML"
        raise ConfigError([ConfigIssue(file, f"TOML syntax: {message}", (), position)]) from None


class Document:
    """A parsed (and interpolated) TOML document with the position of each of its keys.

    The positions are indexed on first use (`positions`): a valid file never needs them, and
    indexing a file of thousands of checks costs more than parsing it.
    """

    def __init__(
        self, file: str, text: str, raw: dict[str, Any], positions: PositionIndex | None = None
    ):
        self.file = file
        self.text = text
        self.raw = raw
        self._positions = positions

    @property
    def positions(self) -> PositionIndex:
        """The position of each key of the text (indexed once, on first use)."""
        if self._positions is None:
            self._positions = index_positions(self.text)
        return self._positions

    def issue(self, path: Sequence[str | int], message: str) -> ConfigIssue:
        """An issue at `path`, located at that key or its nearest enclosing one."""
        key: KeyPath = tuple(path)
        return ConfigIssue(self.file, message, key, self.positions.find(key))


Checker = Callable[[Document], Sequence[Problem]]
"""A check between parts of a document (references, unique names). It reads `document.raw`,
which may be invalid elsewhere: it must check only the keys that are well-typed, and never
raise for the others (the model's validation reports those)."""


def load_model(
    model: type[M],
    text: str,
    *,
    file: str,
    env: Mapping[str, str],
    checks: Sequence[Checker] = (),
    key_hints: Mapping[str, tuple[str, ...]] | None = None,
) -> tuple[M, Document]:
    """Parse, interpolate and validate `text` into `model`, and run `checks` on the document.

    The checks run whether or not the model validated, so a file with a schema error and a
    reference error reports both. `key_hints` places model-level errors at the key they are
    about (see `validation.subject_key`).

    Raises:
        ConfigError: with every syntax, interpolation, validation and reference problem found,
            sorted by position. No message holds a secret's value.
    """
    parsed = parse_toml(text, file)
    raw, unresolved = interpolate(parsed, env)
    document = Document(file, text, raw)
    issues = [document.issue(problem.path, problem.message) for problem in unresolved]
    broken = {problem.path for problem in unresolved}
    instance, problems = validate(model, raw, key_hints=key_hints)
    # A table with an invalid key still has its keys checked against each other.
    problems += cross_key_problems(model, raw, problems, key_hints=key_hints)
    # An unresolved ${VAR} became "": its own error says why, not the model's or a check's.
    for problem in problems:
        if problem.path not in broken:
            issues.append(document.issue(problem.path, problem.message))
    secrets: set[str] | None = None  # walked only when a check reports a problem
    for check in checks:
        for problem in check(document):
            if problem.path in broken:
                continue
            message = problem.message
            if secrets is None:
                secrets = secret_values(model, raw)
            for value in secrets:
                if len(value) >= 3:
                    message = message.replace(value, "<redacted>")
            issues.append(document.issue(problem.path, message))
    if issues:
        raise ConfigError(issues)
    assert instance is not None
    return instance, document

"""The docs checks of the registries of kinds: docs/configuration.md documents every kind and
key, and the extension guides quote the real files."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["DOCS", "assert_kinds_documented", "fenced_blocks"]

DOCS = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def _rows(table: str) -> list[list[str]]:
    """The body rows of a markdown table, cells stripped (header and rule left out)."""
    lines = [line for line in table.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def _tables(heading: str) -> list[list[list[str]]]:
    text = DOCS.read_text(encoding="utf-8")
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    tables = re.findall(r"(?:^\|.*\n)+", section, flags=re.MULTILINE)
    return [_rows(table) for table in tables]


def _code(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def assert_kinds_documented(heading: str, kinds: Sequence[Any]) -> None:
    """The section `heading` of docs/configuration.md follows the registry `kinds` (records with
    `name`, `description`, `keys()` and the class attribute `common`, the model of the keys every
    kind has).

    The section's first three tables must be: the keys every kind takes (its `kind` row listing
    the kinds in registry order), the kinds with their descriptions word for word, and each
    kind's own keys as written in TOML (an alias, e.g. `from`, not `from_`) in the model's order.

    Raises:
        AssertionError: a table does not follow the registry.
    """
    common, listed, keys = _tables(heading)[:3]
    assert {_code(row[0])[0] for row in common} == set(kinds[0].common.model_fields)
    [kind_row] = [row for row in common if row[0] == "`kind`"]
    assert _code(kind_row[2]) == [kind.name for kind in kinds]
    assert [(_code(row[0])[0], row[1]) for row in listed] == [
        (kind.name, kind.description) for kind in kinds
    ]
    documented: dict[str, list[str]] = {}
    current = ""
    for row in keys:
        current = _code(row[0])[0] if row[0] else current
        documented.setdefault(current, []).extend(_code(row[1]))
    assert documented == {kind.name: list(kind.keys()) for kind in kinds}


def fenced_blocks(text: str, language: str) -> list[str]:
    """The fenced code blocks of the markdown `text` whose info string is `language`."""
    blocks: list[tuple[str, list[str]]] = []
    current: list[str] | None = None
    for line in text.splitlines(keepends=True):
        if line.startswith("```") and current is None:
            current = []
            blocks.append((line[3:].strip(), current))
        elif line.startswith("```"):
            current = None
        elif current is not None:
            current.append(line)
    return ["".join(lines) for info, lines in blocks if info == language]

"""`${VAR}` and `${VAR:-default}` in every string value of a raw TOML tree.

- `${VAR}` is the value of VAR; VAR unset is an error (it has no default).
- `${VAR:-default}` is VAR's value when VAR is set and not empty, else `default` (shell rules).
- `$${` writes a literal `${`.
- A `${` that does not form one of the above is an error, so a typo never passes silently.

Keys are never interpolated; only string values (in tables, arrays and inline tables).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from supervisor._config.positions import KeyPath

__all__ = ["InterpolationProblem", "interpolate"]

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_TOKEN = re.compile(r"\$\$\{|\$\{(?P<name>" + _NAME + r")(?::-(?P<default>[^}]*))?\}|\$\{")


@dataclass(frozen=True, slots=True)
class InterpolationProblem:
    """A string value whose `${...}` could not be resolved; `message` never holds a value."""

    path: KeyPath
    message: str


def _expand(
    text: str, env: Mapping[str, str], path: KeyPath, problems: list[InterpolationProblem]
) -> str:
    if "$" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "$${":
            return "${"
        name = match.group("name")
        if name is None:
            problems.append(
                InterpolationProblem(
                    path,
                    "invalid '${' expression; write ${NAME} or ${NAME:-default} "
                    "(NAME: letters, digits, '_'), or '$${' for a literal '${'",
                )
            )
            return ""
        default = match.group("default")
        value = env.get(name)
        if default is not None:
            return value if value else default
        if value is None:
            problems.append(
                InterpolationProblem(
                    path,
                    f"environment variable {name} is not set and ${{{name}}} has no default "
                    f"(set it, or write ${{{name}:-default}})",
                )
            )
            return ""
        return value

    return _TOKEN.sub(replace, text)


def interpolate(
    tree: Any, env: Mapping[str, str], path: KeyPath = ()
) -> tuple[Any, list[InterpolationProblem]]:
    """Return a copy of `tree` with every string value expanded, and the problems found.

    Never raises: an unresolved `${VAR}` becomes an empty string and is reported as a problem
    naming VAR and the key path (never the value of anything).
    """
    problems: list[InterpolationProblem] = []

    def walk(node: Any, where: KeyPath) -> Any:
        if isinstance(node, str):
            return _expand(node, env, where, problems)
        if isinstance(node, dict):
            return {key: walk(value, (*where, key)) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(value, (*where, index)) for index, value in enumerate(node)]
        return node

    return walk(tree, path), problems

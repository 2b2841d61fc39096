"""Model-level errors of tables that also have key errors.

pydantic runs a model's `model_validator(mode="after")` (e.g. "timeout must not be longer than
interval") only when every key of the table is valid, so a check with a bad `port` and a timeout
longer than its interval reported only the port: the user fixed it, ran again and met the second
error. `cross_key_problems` validates each such table again without its invalid keys (required
ones made optional), so its model validators run on the keys that are valid; an error about a
key that was left out is dropped (its own error is already reported, and the value the check
saw in its place is not the user's).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field, ValidationError, create_model

from supervisor._config.positions import KeyPath
from supervisor._config.validation import (
    _WORD,
    Problem,
    _message,
    _node_at,
    _scrub,
    _type_at,
    secret_values,
)

__all__ = ["cross_key_problems"]


def _fields_by_key(model: type[BaseModel]) -> dict[str, str]:
    """Key as written (alias or name) -> field name."""
    return {(info.alias or name): name for name, info in model.model_fields.items()}


def _involved(message: str, keys: set[str], key_hints: Mapping[str, tuple[str, ...]]) -> set[str]:
    """The keys of the table a model-level `message` is about."""
    for prefix, hinted in key_hints.items():
        if message.startswith(prefix):
            return set(hinted)
    return {word for word in _WORD.findall(message) if word in keys}


def _bad_keys(
    root: type[BaseModel], raw: Mapping[str, Any], problems: Sequence[Problem]
) -> dict[KeyPath, set[str]]:
    """For each table (below the root) holding an invalid key, the keys that are invalid."""
    bad: dict[KeyPath, set[str]] = {}
    for problem in problems:
        path = problem.path
        for depth in range(1, len(path)):
            table, key = path[:depth], path[depth]
            if not isinstance(key, str) or not isinstance(_node_at(raw, table), Mapping):
                continue
            model = _type_at(root, table, raw)
            if isinstance(model, type) and issubclass(model, BaseModel):
                bad.setdefault(table, set()).add(key)
    return bad


def _lenient(model: type[BaseModel], left_out: set[str]) -> type[BaseModel]:
    """`model` with the required fields among `left_out` (keys as written) made optional."""
    fields = _fields_by_key(model)
    overrides: dict[str, Any] = {}
    for key in left_out:
        name = fields.get(key)
        if name is not None and model.model_fields[name].is_required():
            alias = model.model_fields[name].alias
            overrides[name] = (Any, Field(default=None, alias=alias))
    if not overrides:
        return model
    lenient: type[BaseModel] = create_model(model.__name__, __base__=model, **overrides)
    return lenient


def cross_key_problems(
    root: type[BaseModel],
    raw: Mapping[str, Any],
    problems: Sequence[Problem],
    *,
    key_hints: Mapping[str, tuple[str, ...]] | None = None,
) -> list[Problem]:
    """The model-level errors hidden by `problems` (the key errors `validate` found in `raw`).

    Never raises for invalid input; messages never hold the value of a secret key.
    """
    hints = key_hints or {}
    bad = _bad_keys(root, raw, problems)
    if not bad:
        return []  # a valid file: nothing to walk
    secrets = secret_values(root, raw)
    found: list[Problem] = []
    for table, left_out in sorted(bad.items(), key=lambda i: str(i)):
        model = _type_at(root, table, raw)
        node = _node_at(raw, table)
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue  # cannot happen: `_bad_keys` keeps only tables of a model
        if not isinstance(node, Mapping):
            continue
        kept = {key: value for key, value in node.items() if key not in left_out}
        try:
            _lenient(model, left_out).model_validate(kept)
            continue
        except ValidationError as exc:
            errors = [error for error in exc.errors(include_url=False) if not error["loc"]]
            if len(errors) != len(exc.errors()):
                continue  # another key still fails: the model validators did not run
        except Exception:
            continue  # a validator that cannot run without the keys left out
        keys = set(_fields_by_key(model))
        for error in errors:
            path, message = _message(error, table, root, raw, hints)
            if _involved(message, keys, hints) & left_out:
                continue
            found.append(Problem(path, _scrub(message, secrets)))
    return found

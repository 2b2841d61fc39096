"""Validate a raw TOML tree with a pydantic model and explain every error in the user's terms.

pydantic reports errors at a `loc` such as `("channels", "ops", "slack", "webhook_url")` where
"slack" is the union member chosen by `kind`; users wrote `channels.ops.webhook_url`. This module
maps each `loc` back onto the raw tree, rewrites pydantic's messages ("unknown key; did you mean
'timeout'?"), and never lets a secret's value into a message.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_core import ErrorDetails

from supervisor._config.positions import KeyPath

__all__ = [
    "Problem",
    "allowed_keys",
    "is_secret_path",
    "secret_values",
    "subject_key",
    "validate",
]

M = TypeVar("M", bound=BaseModel)

# Key names whose values are secrets even when a model types them as plain strings.
_SECRET_NAME = re.compile(
    r"(^|_)(token|password|passwd|secret|key|dsn|webhook_url|routing_key|api_key)$"
)
_INTERNAL_LOC = re.compile(r"[\[\]()-]")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True, slots=True)
class Problem:
    """A validation problem at a key path of the raw tree."""

    path: KeyPath
    message: str


# -- walking models along key paths ------------------------------------------------------------
def _strip(tp: Any) -> Any:
    """Remove Annotated and Optional around a type."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
            continue
        if origin in (typing.Union, types.UnionType):
            members = [arg for arg in typing.get_args(tp) if arg is not type(None)]
            if len(members) == 1:
                tp = members[0]
                continue
        return tp


@functools.cache
def _kind_values(model: type[BaseModel]) -> tuple[object, ...]:
    field = model.model_fields.get("kind")
    if field is None:
        return ()
    tp = _strip(field.annotation)
    if typing.get_origin(tp) is typing.Literal:
        return typing.get_args(tp)
    return ()


def _choose(tp: Any, node: Any) -> Any:
    """Pick the union member a raw node stands for (by its `kind`), else the first model."""
    tp = _strip(tp)
    if typing.get_origin(tp) not in (typing.Union, types.UnionType):
        return tp
    members = [_strip(arg) for arg in typing.get_args(tp)]
    models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
    if isinstance(node, Mapping):
        kind = node.get("kind")
        for model in models:
            if kind in _kind_values(model):
                return model
    return models[0] if models else tp


@functools.cache
def _fields(model: type[BaseModel]) -> Mapping[str, Any]:
    """Key as written (alias or name) -> annotation (computed once per model: the secret walk
    of an invalid file asks it for every key)."""
    return types.MappingProxyType(
        {(info.alias or name): info.annotation for name, info in model.model_fields.items()}
    )


def _type_at(root: type[BaseModel], path: KeyPath, raw: Any) -> Any:
    """The (stripped) type expected at `path`, or None when the path leaves the schema."""
    tp: Any = root
    node: Any = raw
    for part in path:
        tp = _choose(tp, node)
        origin = typing.get_origin(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(part, str):
            fields = _fields(tp)
            if part not in fields:
                return None
            tp = fields[part]
        elif _is_mapping(tp):
            tp = typing.get_args(tp)[1]
        elif origin in (list, tuple, frozenset, set) and isinstance(part, int):
            tp = typing.get_args(tp)[0]
        else:
            return None
        if isinstance(node, Mapping):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
    return _choose(tp, node)


def _union_tags(root: type[BaseModel], path: KeyPath, raw: Any) -> list[str]:
    """The `kind` values the union at `path` accepts, in declaration order."""
    if not path:
        return []
    parent = _type_at(root, path[:-1], raw)
    tp: Any = None
    if isinstance(parent, type) and issubclass(parent, BaseModel) and isinstance(path[-1], str):
        tp = _fields(parent).get(path[-1])
    elif typing.get_origin(parent) in (dict, list, tuple) or _is_mapping(parent):
        tp = typing.get_args(parent)[-1 if not isinstance(path[-1], int) else 0]
    tp = _strip(tp)
    tags: list[str] = []
    for member in typing.get_args(tp):
        member = _strip(member)
        if isinstance(member, type) and issubclass(member, BaseModel):
            tags += [str(value) for value in _kind_values(member)]
    return tags


def _is_mapping(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    return isinstance(origin, type) and issubclass(origin, Mapping)


def allowed_keys(root: type[BaseModel], path: KeyPath, raw: Any) -> list[str]:
    """The keys a table at `path` accepts (empty when it is not a model)."""
    tp = _type_at(root, path, raw)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return list(_fields(tp))
    return []


def is_secret_path(root: type[BaseModel], path: KeyPath, raw: Any) -> bool:
    """Whether the value at `path` is a secret (typed `Secret`, or named like one)."""
    names = [part for part in path if isinstance(part, str)]
    if names and _SECRET_NAME.search(names[-1]):
        return True
    tp = _type_at(root, path, raw)
    if tp is SecretStr:
        return True
    # A list of secrets (e.g. tuple[Secret, ...]) at the parent.
    parent = _type_at(root, path[:-1], raw) if path and isinstance(path[-1], int) else None
    args = typing.get_args(parent) if parent is not None else ()
    return bool(args) and _strip(args[0]) is SecretStr


def secret_values(root: type[BaseModel], raw: Any) -> set[str]:
    """Every non-empty string value of `raw` that sits at a secret key."""
    found: set[str] = set()

    def walk(node: Any, path: KeyPath) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                walk(value, (*path, key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, (*path, index))
        elif isinstance(node, str) and node and is_secret_path(root, path, raw):
            found.add(node)

    walk(raw, ())
    return found


# -- mapping pydantic errors ---------------------------------------------------------------------
def _clean_loc(loc: tuple[int | str, ...], raw: Any) -> KeyPath:
    """Drop pydantic's union-member segments from `loc`, keeping what the user wrote."""
    out: list[str | int] = []
    node: Any = raw
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(node, list) and isinstance(part, int):
            out.append(part)
            node = node[part] if part < len(node) else None
        elif isinstance(node, Mapping) and isinstance(part, str):
            if part in node:
                out.append(part)
                node = node[part]
            elif part == node.get("kind") or _INTERNAL_LOC.search(part) or part[:1].isupper():
                continue  # the member of a tagged union, or a validator's name
            elif last:
                out.append(part)  # a missing key
            else:
                out.append(part)
                node = None
        else:
            break  # inside a scalar: the rest names union members ("int", "str")
    return tuple(out)


def _node_at(raw: Any, path: KeyPath) -> Any:
    node = raw
    for part in path:
        in_table = isinstance(node, Mapping) and part in node
        in_array = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if not (in_table or in_array):
            return None
        node = node[part]
    return node


def _toml_value(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, int | float):
        return repr(value)
    return None


def _did_you_mean(word: str, choices: list[str]) -> str | None:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return close[0] if close else None


def _message(
    error: ErrorDetails,
    path: KeyPath,
    root: type[BaseModel],
    raw: Any,
    key_hints: Mapping[str, tuple[str, ...]],
) -> tuple[KeyPath, str]:
    kind = error["type"]
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    if kind == "missing":
        return path, "required key is missing"
    if kind == "extra_forbidden":
        key = path[-1] if path else ""
        choices = allowed_keys(root, path[:-1], raw)
        close = _did_you_mean(str(key), choices)
        if close:
            return path, f"unknown key; did you mean '{close}'?"
        if choices:
            return path, "unknown key; expected one of: " + ", ".join(sorted(choices))
        return path, "unknown key"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tag_key = str(ctx.get("discriminator", "'kind'")).strip("'")
        expected = _union_tags(root, path, raw)
        listing = ", ".join(expected)
        if kind == "union_tag_not_found":
            return (*path, tag_key), f"required key is missing (one of: {listing})"
        tag = str(ctx.get("tag", ""))
        close = _did_you_mean(tag, expected)
        hint = f"; did you mean '{close}'?" if close else ""
        return (*path, tag_key), f"unknown {tag_key} '{tag}' (expected one of: {listing}){hint}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        shown = _toml_value(error.get("input"))
        got = f" (got {shown})" if shown is not None and len(shown) <= 80 else ""
        return path, f"must be a table{got}"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    if message.startswith(("Input should be ", "Input should have ")):
        message = "must " + message[len("Input should ") :]
        shown = _toml_value(error.get("input"))
        if shown is not None and not is_secret_path(root, path, raw) and len(shown) <= 80:
            message += f" (got {shown})"
    elif message[:1].isupper() and not message[1:2].isupper():
        message = message[0].lower() + message[1:]
    # A model-level error ("timeout must not be longer than interval") is raised at the table:
    # point at the key it is about instead, so its line and column are that key's.
    node = _node_at(raw, path)
    if isinstance(node, Mapping):
        subject = subject_key(message, node, key_hints)
        if subject is not None:
            path = (*path, subject)
    return path, message


def subject_key(
    message: str, table: Mapping[str, Any], key_hints: Mapping[str, tuple[str, ...]]
) -> str | None:
    """The key of `table` a model-level error `message` is about, or None (the table itself).

    `key_hints` maps the start of a message to the keys it is about, most likely first: the
    first of them written in `table` wins (`"tls_cert and tls_key must be set together"` is
    about whichever of the two is set). A message no hint matches is about the first key it
    names that is written in `table`.
    """
    for prefix, keys in key_hints.items():
        if message.startswith(prefix):
            return next((key for key in keys if key in table), None)
    for word in _WORD.findall(message):
        if word in table:
            return str(word)
    return None


def _scrub(message: str, secrets: set[str]) -> str:
    for value in sorted(secrets, key=len, reverse=True):
        if len(value) >= 3 and value in message:
            message = message.replace(value, "<redacted>")
    return message


def validate(
    model: type[M],
    raw: Mapping[str, Any],
    *,
    key_hints: Mapping[str, tuple[str, ...]] | None = None,
) -> tuple[M | None, list[Problem]]:
    """Validate `raw` with `model`; return the instance (None when invalid) and every problem.

    A model-level error (a `model_validator` raising at a table) is placed at the key it is
    about, found with `key_hints` (see `subject_key`).

    Never raises for invalid input; messages never hold the value of a secret key.
    """
    try:
        return model.model_validate(raw), []
    except ValidationError as exc:
        secrets = secret_values(model, raw)
        problems: list[Problem] = []
        seen: set[tuple[KeyPath, str]] = set()
        for error in exc.errors(include_url=False):
            path = _clean_loc(tuple(error["loc"]), raw)
            path, message = _message(error, path, model, raw, key_hints or {})
            entry = (path, _scrub(message, secrets))
            if entry not in seen:
                seen.add(entry)
                problems.append(Problem(*entry))
        return None, problems

"""Secrets kept out of every text the process shows: error messages, reasons, log lines.

Two pure functions serve the whole process:

- `config_secrets(model)`: every secret a configuration model holds: values typed as
  `SecretStr` (tokens, passwords, keys, DSNs, webhook URLs), the values of credential headers
  (a `headers` table key naming auth, token, key, secret, cookie or password, or named in the
  model's `secret_headers`) and the password of a `user:password@` URL.
- `redact(text, secrets)`: `text` with every secret cut out, also in the forms an error
  message quotes it in: `repr()` of the string or of its bytes (`b'Bearer abc\\n'` shows a
  trailing newline as `\\n`), JSON-escaped, and stripped of surrounding whitespace (a token read
  from a file with its newline, echoed by a receiver without it); the credential of an
  `Authorization`-style value ("Bearer TOKEN") is also cut alone.

Values shorter than `MIN_SECRET` characters are not cut (they would cut ordinary words).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import cast
from urllib.parse import urlsplit

from pydantic import BaseModel, SecretStr

__all__ = [
    "CREDENTIAL_HEADER",
    "MIN_SECRET",
    "REDACTED",
    "config_secrets",
    "redact",
    "secret_forms",
    "url_password",
]

MIN_SECRET = 4
REDACTED = "***"
CREDENTIAL_HEADER = re.compile(r"auth|token|key|secret|cookie|password", re.IGNORECASE)
"""A header whose name matches carries a credential (Authorization, X-Api-Key, Cookie, ...)."""


def url_password(url: str) -> str:
    """The password of a `scheme://user:password@host/...` URL ("" when there is none)."""
    try:
        return urlsplit(url).password or ""
    except ValueError:
        return ""


def secret_forms(secret: str) -> tuple[str, ...]:
    """The ways an error message may quote `secret` (see the module docstring), longest first;
    empty when `secret` is shorter than `MIN_SECRET`."""
    forms: set[str] = set()
    values = [secret, secret.strip()]
    scheme, space, credential = secret.strip().partition(" ")
    if space and scheme.isalpha():  # "Bearer TOKEN": a receiver may echo the token alone
        values += [credential, credential.strip()]
    for value in values:
        if len(value) < MIN_SECRET:
            continue
        forms.add(value)
        forms.add(repr(value)[1:-1])
        forms.add(repr(value.encode("utf-8", "surrogateescape"))[2:-1])
        forms.add(json.dumps(value)[1:-1])
        forms.add(json.dumps(value, ensure_ascii=False)[1:-1])
    return tuple(sorted(forms, key=len, reverse=True))


def redact(text: str, secrets: Iterable[str], replacement: str = REDACTED) -> str:
    """`text` with every form of every secret (`secret_forms`) replaced by `replacement`."""
    needles: set[str] = set()
    for secret in secrets:
        if secret:
            needles.update(secret_forms(secret))
    for needle in sorted(needles, key=len, reverse=True):
        if needle in text:
            text = text.replace(needle, replacement)
    return text


_LEAVES = frozenset({int, float, bool, type(None)})


def config_secrets(node: object) -> frozenset[str]:
    """Every non-empty secret held by `node` (a config model, or mappings and sequences of
    them); see the module docstring for what counts as one."""
    found: set[str] = set()

    def walk(item: object, name: str, secret_headers: frozenset[str]) -> None:
        kind = type(item)
        if kind in _LEAVES:  # most fields: no secret, and no isinstance chain (thousands of
            return  # checks are walked at start-up)
        if kind is str:
            if name == "url" or name.endswith("_url"):
                found.add(url_password(cast("str", item)))
            return
        if isinstance(item, SecretStr):
            value = item.get_secret_value()
            if value:
                found.add(value)
                found.add(url_password(value))
        elif isinstance(item, BaseModel):
            marked = frozenset(h.lower() for h in getattr(item, "secret_headers", ()) or ())
            for field, value in item:
                if type(value) not in _LEAVES:  # most fields (a call each adds up)
                    walk(value, field, marked)
        elif isinstance(item, Mapping):
            for key, value in item.items():
                credential = name == "headers" and (
                    CREDENTIAL_HEADER.search(str(key)) or str(key).lower() in secret_headers
                )
                if credential and isinstance(value, str):
                    found.add(value)
                else:
                    walk(value, str(key), secret_headers)
        elif isinstance(item, tuple | list | set | frozenset):
            for member in item:
                walk(member, name, secret_headers)
        elif isinstance(item, str) and (name == "url" or name.endswith("_url")):
            found.add(url_password(item))

    walk(node, "", frozenset())
    found.discard("")
    return frozenset(found)

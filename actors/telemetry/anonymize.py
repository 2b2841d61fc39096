"""Label anonymisation: values of chosen labels replaced by a keyed hash before they are kept.

`Anonymizer(labels, key)` maps a value to the first 16 hex digits of HMAC-SHA256(key, value): the
same value always gives the same token (series stay separate and joinable across metrics), and
without the key a token cannot be reversed or recomputed from a guessed organisation id.

An empty key means a random key for this process (`generated_key` is True; the composition root
logs a warning): tokens then change at every restart, so set `security.anonymize_key` for stable
series. Recent results are cached (bounded) because the same few values recur on the hot path.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping

__all__ = ["Anonymizer"]

_CACHE_MAX = 65_536


class Anonymizer:
    """Replaces values of the labels in `labels` by a keyed hash (see the module docstring)."""

    def __init__(self, labels: Iterable[str] = (), key: str | bytes = "") -> None:
        self.labels: frozenset[str] = frozenset(labels)
        raw = key.encode() if isinstance(key, str) else key
        self.generated_key = not raw
        self._key = raw or secrets.token_bytes(32)
        self._cache: dict[str, str] = {}

    def __bool__(self) -> bool:
        return bool(self.labels)

    def hash(self, value: str) -> str:
        """The token for `value` (whatever the label)."""
        cached = self._cache.get(value)
        if cached is not None:
            return cached
        token = hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()[:16]
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[value] = token
        return token

    def value(self, label: str, value: str) -> str:
        """`value` hashed when `label` is anonymised, else unchanged."""
        return self.hash(value) if label in self.labels else value

    def mapping(self, labels: Mapping[str, str]) -> dict[str, str]:
        """A copy of `labels` with anonymised labels' values hashed."""
        names = self.labels
        return {k: (self.hash(v) if k in names else v) for k, v in labels.items()}

    def attributes(self, attributes: Mapping[str, object]) -> dict[str, object]:
        """Span attributes with anonymised keys' string values hashed."""
        names = self.labels
        return {
            k: (self.hash(v) if k in names and isinstance(v, str) else v)
            for k, v in attributes.items()
        }

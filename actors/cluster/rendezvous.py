"""Rendezvous (highest random weight) hashing: which live replica runs which check. Pure.

Each (member, key) pair gets a pseudo-random weight from a cryptographic hash of both names;
a key belongs to the member with the highest weight. Every replica that reads the same member
list computes the same owners, with no coordination. The properties sharded mode relies on:

- deterministic: the owner depends only on the key and the set of members (not their order,
  not the process, not the platform: BLAKE2b, never Python's salted `hash`);
- balanced: each of n members gets about 1/n of the keys;
- minimal movement: when a member joins, only the keys it now wins move (to it); when one
  leaves, only its keys move (each to the member with the next highest weight). No other key
  changes owner, and the set of keys never matters to any key's owner.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

__all__ = ["assign", "owner", "weight"]


def weight(member: str, key: str) -> int:
    """The weight of `member` for `key`: 64 bits of BLAKE2b over both names (NUL-separated,
    so ("ab", "c") and ("a", "bc") differ)."""
    digest = hashlib.blake2b(f"{member}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(key: str, members: Iterable[str]) -> str | None:
    """The member that owns `key` (None when there are no members). Ties, which would need a
    64-bit collision, go to the greater name, so the answer is still the same everywhere."""
    best: tuple[int, str] | None = None
    for member in members:
        candidate = (weight(member, key), member)
        if best is None or candidate > best:
            best = candidate
    return None if best is None else best[1]


def assign(keys: Iterable[str], members: Iterable[str]) -> Mapping[str, tuple[str, ...]]:
    """Every member (each listed, possibly with no key) with the keys it owns, in `keys` order.
    No members: an empty mapping (no key has an owner)."""
    names = sorted(set(members))
    out: dict[str, list[str]] = {name: [] for name in names}
    if names:
        for key in keys:
            best = owner(key, names)
            assert best is not None  # names is not empty
            out[best].append(key)
    return {name: tuple(owned) for name, owned in out.items()}

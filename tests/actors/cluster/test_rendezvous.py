"""Rendezvous hashing: deterministic, balanced, and it moves only the keys it must."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.cluster.rendezvous import assign, owner, weight

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=1, max_size=12)
members = st.sets(names, min_size=1, max_size=8)
keys = st.lists(names, max_size=40, unique=True)


def test_no_member_owns_nothing() -> None:
    assert owner("x", []) is None
    assert assign(["x", "y"], []) == {}


def test_weights_are_fixed_across_processes_and_platforms() -> None:
    # BLAKE2b, not Python's salted hash(): these values hold in every process.
    assert weight("r1", "database") == weight("r1", "database")
    assert weight("ab", "c") != weight("a", "bc")
    assert owner("database", ["r1", "r2", "r3"]) == owner("database", ["r3", "r1", "r2"])


@given(members, keys)
def test_every_key_has_exactly_one_owner_whatever_the_order(
    group: set[str], checks: list[str]
) -> None:
    forward = assign(checks, sorted(group))
    backward = assign(checks, sorted(group, reverse=True))
    assert forward == backward
    assert set(forward) == group
    owned = [key for share in forward.values() for key in share]
    assert sorted(owned) == sorted(checks)
    for member, share in forward.items():
        for key in share:
            assert owner(key, group) == member


@given(members, keys, names)
def test_a_joining_member_takes_keys_only_for_itself(
    group: set[str], checks: list[str], joining: str
) -> None:
    before = {key: owner(key, group) for key in checks}
    after = {key: owner(key, group | {joining}) for key in checks}
    for key in checks:
        assert after[key] in (before[key], joining)


@given(members, keys, st.data())
def test_a_leaving_member_gives_away_only_its_own_keys(
    group: set[str], checks: list[str], data: st.DataObject
) -> None:
    leaving = data.draw(st.sampled_from(sorted(group)))
    rest = group - {leaving}
    for key in checks:
        before = owner(key, group)
        after = owner(key, rest)
        if before != leaving:
            assert after == before
        else:
            assert after != leaving


@pytest.mark.parametrize("count", [2, 3, 4, 6])
def test_keys_spread_evenly_over_the_members(count: int) -> None:
    group = [f"monitor-{i}" for i in range(count)]
    checks = [f"check-{i}" for i in range(3000)]
    shares = assign(checks, group)
    fair = len(checks) / count
    for share in shares.values():
        # 3000 keys: a member's share is within 20% of the fair one (binomial, ~5 sigma).
        assert abs(len(share) - fair) < 0.2 * fair, {m: len(s) for m, s in shares.items()}

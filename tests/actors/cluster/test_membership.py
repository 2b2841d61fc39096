"""Membership: the live rule (pure), and replicas beating into one table (SQLite, PostgreSQL)."""

from __future__ import annotations

from actors.cluster.api import cluster_document
from actors.cluster.membership import (
    DEAD_AFTER_BEATS,
    Member,
    Membership,
    lateness,
    live_members,
)
from actors.cluster.ownership import Ownership
from tests.conftest import Stores


def _member(name: str, last_beat: float, heartbeat: float = 2.0) -> Member:
    return Member(
        name=name, mode="redundant", heartbeat=heartbeat, started_at=0.0, last_beat=last_beat
    )


def test_a_replica_silent_for_three_of_its_heartbeats_is_dead() -> None:
    now = 100.0
    members = [
        _member("b", now - 5.9),  # 2.95 beats: alive
        _member("a", now - 0.1),
        _member("c", now - DEAD_AFTER_BEATS * 2.0),  # exactly 3 beats: dead
        _member("d", now - 5.0, heartbeat=1.0),  # its own heartbeat decides
    ]
    assert [m.name for m in live_members(members, now)] == ["a", "b"]


def test_a_late_observer_gives_its_peers_its_own_lateness_and_never_counts_itself_dead() -> None:
    now = 100.0
    members = [_member("a", now - 7.0), _member("b", now - 6.5), _member("me", now - 9.0)]
    assert [m.name for m in live_members(members, now)] == []
    assert [m.name for m in live_members(members, now, grace=0.6)] == ["b"]
    assert [m.name for m in live_members(members, now, grace=1.5, keep="me")] == ["a", "b", "me"]
    # Lateness: how long after its due time (one heartbeat after the previous) a beat comes.
    assert lateness(now, None, 2.0) == 0.0  # a first beat
    assert lateness(now, now - 1.9, 2.0) == 0.0  # early or on time
    assert lateness(now, now - 4.5, 2.0) == 2.5
    assert lateness(now, now - 60.0, 2.0) == DEAD_AFTER_BEATS * 2.0  # at most 3 heartbeats more


async def _age(stores: Stores, replica: str, seconds: float) -> None:
    """Make `replica`'s last beat `seconds` older (a beat that came that much later)."""
    await stores.open().execute(
        "UPDATE cluster_members SET last_beat = last_beat - ? WHERE replica = ?",
        (seconds, replica),
    )


async def test_replicas_beating_late_together_do_not_count_each_other_dead(stores: Stores) -> None:
    one = Membership(database=stores.open(), replica="r1", mode="sharded", heartbeat=2.0)
    two = Membership(database=stores.open(), replica="r2", mode="sharded", heartbeat=2.0)
    await one.beat()
    await two.beat()
    # Both hosts' beats lag: r2's last beat is 7 s old (dead by 3 heartbeats, 6 s), and r1's
    # own beat comes 5 s after its previous one, 3 s late: r2 is given those 3 s.
    await _age(stores, "r2", 7.0)
    await _age(stores, "r1", 5.0)
    assert [m.name for m in await one.beat()] == ["r1", "r2"]
    assert 2.9 < one.grace <= 3.0 + 0.5
    death = one.next_death()  # with that grace: about 2 s from now
    assert death is not None
    assert 1.5 < death <= 2.5
    # On time, the same age is dead: the rule is unchanged for an observer that is not late.
    await _age(stores, "r2", 7.0)
    assert [m.name for m in await one.beat()] == ["r1"]
    assert one.grace < 0.5


async def test_a_replica_whose_own_beat_is_overdue_still_lists_itself(stores: Stores) -> None:
    one = Membership(database=stores.open(), replica="r1", mode="sharded", heartbeat=2.0)
    await one.beat()
    await _age(stores, "r1", 20.0)  # its next beat is 18 s overdue, as a read between beats sees
    assert [m.name for m in await one.read()] == ["r1"]
    assert one.grace == DEAD_AFTER_BEATS * 2.0


async def test_replicas_see_each_other_and_one_that_left(stores: Stores) -> None:
    one = Membership(database=stores.open(), replica="r1", mode="redundant", heartbeat=30.0)
    two = Membership(database=stores.open(), replica="r2", mode="redundant", heartbeat=30.0)
    await one.beat()
    assert [m.name for m in await two.beat()] == ["r1", "r2"]
    assert [m.name for m in await one.beat()] == ["r1", "r2"]
    document = cluster_document(one)
    assert document["replica"] == "r1"
    assert document["live"] == 2
    assert [r["name"] for r in document["replicas"]] == ["r1", "r2"]
    assert all(r["age_seconds"] < 30.0 for r in document["replicas"])
    started = one.members[0].started_at
    await two.leave()
    assert [m.name for m in await one.beat()] == ["r1"]
    assert one.members[0].started_at == started  # a beat keeps the start time


def test_a_single_process_document() -> None:
    assert cluster_document(None) == {"replica": None, "mode": "single", "live": 1, "replicas": []}


async def test_a_read_sees_the_members_without_beating_and_knows_when_a_peer_dies(
    stores: Stores,
) -> None:
    one = Membership(database=stores.open(), replica="r1", mode="sharded", heartbeat=30.0)
    two = Membership(database=stores.open(), replica="r2", mode="sharded", heartbeat=10.0)
    assert one.next_death() is None  # no peer
    await two.beat()
    await one.beat()
    # r2 beat just now: dead 3 of its heartbeats (30 s) later, as r1's clock reads it.
    death = one.next_death()
    assert death is not None
    assert 25.0 < death <= DEAD_AFTER_BEATS * 10.0
    await two.leave()
    assert [m.name for m in await one.read()] == ["r1"]
    assert one.next_death() is None
    row = await stores.open().fetchone("SELECT COUNT(*) FROM cluster_members")
    assert row is not None
    assert row[0] == 1  # a read writes nothing


async def test_a_sharded_document_lists_each_replica_s_checks(stores: Stores) -> None:
    replicas = {
        name: Membership(database=stores.open(), replica=name, mode=mode, heartbeat=30.0)
        for name, mode in (("r1", "sharded"), ("r2", "sharded"), ("old", "redundant"))
    }
    for membership in replicas.values():
        await membership.beat()
    await replicas["r1"].beat()
    share = Ownership(replica="r1", checks=["a", "b", "c", "d"])
    share.update(["r1", "r2"])
    document = cluster_document(replicas["r1"], share)
    listed = {r["name"]: r.get("checks") for r in document["replicas"]}
    assert listed["old"] is None  # a redundant replica runs everything: no share listed
    assert sorted(listed["r1"] + listed["r2"]) == ["a", "b", "c", "d"]
    assert document["checks_owned"] == len(listed["r1"]) == len(share.owned)

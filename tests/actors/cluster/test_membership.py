"""Membership: the live rule (pure), and replicas beating into one table (SQLite, PostgreSQL)."""

from __future__ import annotations

from actors.cluster.api import cluster_document
from actors.cluster.membership import DEAD_AFTER_BEATS, Member, Membership, live_members
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

"""A replica's share of the checks: recomputed from the members read at each beat."""

from __future__ import annotations

from actors.cluster.ownership import Change, Ownership, check_of
from actors.cluster.rendezvous import owner

CHECKS = [f"c{i}" for i in range(12)]


def test_nothing_is_owned_before_the_first_beat() -> None:
    share = Ownership(replica="r1", checks=CHECKS)
    assert not share.assigned
    assert share.owned == frozenset()
    assert share.owner_of("c1") is None
    assert share.evaluates({"check": "c1"}) is False
    assert share.evaluates({"agent": "carbon-hunter"}) is True
    assert share.evaluates({"check": "not-configured"}) is True


def test_a_beat_assigns_by_rendezvous_and_reports_the_change() -> None:
    share = Ownership(replica="r1", checks=CHECKS)
    changes: list[Change] = []
    share.add_listener(changes.append)
    alone = share.update(["r1"])
    assert alone == Change(gained=frozenset(CHECKS))
    assert share.owned == frozenset(CHECKS)
    three = share.update(["r3", "r1", "r2"])
    mine = {c for c in CHECKS if owner(c, ["r1", "r2", "r3"]) == "r1"}
    assert share.owned == mine
    assert three == Change(lost=frozenset(CHECKS) - mine)
    assert changes == [alone, three]
    assert share.members == ("r1", "r2", "r3")
    assert {c for s in share.shares().values() for c in s} == set(CHECKS)
    for check in CHECKS:
        assert share.owner_of(check) == owner(check, ["r1", "r2", "r3"])
        assert share.evaluates({"check": check}) is (check in mine)
    assert not share.update(["r1", "r2", "r3"])  # the same members: nothing changes
    assert len(changes) == 2


def test_a_reload_adds_checks_without_moving_others_and_does_not_hand_removed_ones_over() -> None:
    share = Ownership(replica="r1", checks=["a"])
    share.update(["r1"])
    change = share.configure(["b", "c"])
    assert change.gained == frozenset({"b", "c"})
    assert change.lost == frozenset()  # "a" is removed, not handed over
    assert share.checks == ("b", "c")


def test_check_of_names_only_configured_checks() -> None:
    assert check_of({"check": "db"}, ["db"]) == "db"
    assert check_of({"check": "other"}, ["db"]) is None
    assert check_of({}, ["db"]) is None

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


def test_a_replica_with_siblings_takes_its_first_share_once_it_sees_them_all() -> None:
    share = Ownership(replica="w0", checks=CHECKS, siblings=["w0", "w1"], wait=6.0)
    changes: list[Change] = []
    share.add_listener(changes.append)
    assert share.update(["w0"], now=100.0) == Change()  # alone: it would take every check
    assert not share.assigned
    assert share.waiting
    assert share.missing == {"w1"}
    assert share.owned == frozenset()
    assert share.evaluates({"check": "c1"}) is False
    both = share.update(["w0", "w1"], now=102.0)
    mine = {c for c in CHECKS if owner(c, ["w0", "w1"]) == "w0"}
    assert both == Change(gained=frozenset(mine))
    assert share.missing == frozenset()
    assert not share.waiting
    assert changes == [both]  # nothing taken, then handed back


def test_the_first_share_goes_on_without_a_sibling_not_seen_within_the_wait() -> None:
    share = Ownership(replica="w0", checks=CHECKS, siblings=["w0", "w1", "w2"], wait=6.0)
    assert not share.update(["w0"], now=100.0)
    assert not share.update(["w0", "w2"], now=105.9)
    assert share.missing == {"w1"}
    went_on = share.update(["w0", "w2"], now=106.0)
    assert share.assigned
    assert went_on.gained == {c for c in CHECKS if owner(c, ["w0", "w2"]) == "w0"}
    assert share.missing == {"w1"}  # who was missing when it went on
    # Afterwards every beat assigns, as for any replica: w1 joins and takes its share.
    share.update(["w0", "w1", "w2"], now=108.0)
    assert share.owned == {c for c in CHECKS if owner(c, ["w0", "w1", "w2"]) == "w0"}


def test_a_replica_without_siblings_or_with_all_of_them_alive_takes_its_share_at_once() -> None:
    alone = Ownership(replica="r1", checks=CHECKS, wait=6.0)
    assert alone.update(["r1"], now=100.0) == Change(gained=frozenset(CHECKS))
    restarted = Ownership(replica="w1", checks=CHECKS, siblings=["w0", "w1"], wait=6.0)
    restarted.update(["w0", "w1"], now=100.0)
    assert restarted.owned == {c for c in CHECKS if owner(c, ["w0", "w1"]) == "w1"}

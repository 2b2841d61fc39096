"""Replicas sharing one outbox: a row is claimed by exactly one, and taken over once the lease of
a replica that stopped renewing has passed. Run against both engines."""

from __future__ import annotations

import trio

from actors.clock import SystemClock
from actors.notify.outbox import Outbox
from tests.actors.notify.factories import make_notification
from tests.conftest import Stores


def _replica(stores: Stores, name: str, lease: float = 30.0) -> Outbox:
    return Outbox(database=stores.open(), clock=SystemClock(), replica=name, lease=lease, poll=1.0)


async def test_exactly_one_replica_claims_and_the_group_order_is_visible(stores: Stores) -> None:
    a, b = _replica(stores, "a"), _replica(stores, "b")
    assert a.claiming
    assert a.poll == 1.0
    # Both replicas saw the same outage: the same notification is inserted once.
    assert await a.enqueue(make_notification("k1"))
    assert not await b.enqueue(make_notification("k1"))
    [row] = await a.pending("hooks")
    assert await a.claim(row.id)
    assert await a.claim(row.id)  # a holds it already
    assert not await b.claim(row.id)
    [seen_by_b] = await b.pending("hooks")
    assert seen_by_b.held_by == "a"
    [seen_by_a] = await a.pending("hooks")
    assert seen_by_a.held_by == ""
    assert await a.renew() == 1
    assert await a.mark_delivered(row.id, "HTTP 200")
    assert not await b.claim(row.id)  # delivered: never again
    assert await a.renew() == 0


async def test_a_failed_attempt_releases_the_claim(stores: Stores) -> None:
    a, b = _replica(stores, "a"), _replica(stores, "b")
    await a.enqueue(make_notification("k1"))
    [row] = await a.pending("hooks")
    assert await a.claim(row.id)
    assert await a.mark_failed(row.id, retry_at=0.0, reason="HTTP 503")
    [again] = await b.pending("hooks")
    assert again.held_by == ""
    assert await b.claim(again.id)


async def test_a_dead_replicas_claim_is_taken_over_after_its_lease(stores: Stores) -> None:
    a, b = _replica(stores, "a", lease=0.3), _replica(stores, "b")
    await a.enqueue(make_notification("k1"))
    [row] = await a.pending("hooks")
    assert await a.claim(row.id)
    assert not await b.claim(row.id)
    # "a" dies: nobody renews its lease. "b" takes the row over once the lease has passed.
    with trio.fail_after(20):
        while not await b.claim(row.id):
            await trio.sleep(0.05)
    assert not await a.claim(row.id)  # "a" came back: the row is b's now
    [seen_by_a] = await a.pending("hooks")
    assert seen_by_a.held_by == "b"


async def test_one_process_claims_nothing(stores: Stores) -> None:
    outbox = Outbox(database=stores.open(), clock=SystemClock())
    assert not outbox.claiming
    await outbox.enqueue(make_notification("k1"))
    [row] = await outbox.pending("hooks")
    assert await outbox.claim(row.id)
    assert await outbox.renew() == 0
    assert row.held_by == ""


async def test_replicas_claiming_at_once_each_get_disjoint_rows(stores: Stores) -> None:
    replicas = [_replica(stores, name) for name in ("a", "b", "c")]
    for i in range(20):
        await replicas[0].enqueue(make_notification(f"k{i}"))
    rows = await replicas[0].pending("hooks")
    won: dict[int, list[str]] = {row.id: [] for row in rows}

    async def claim_all(outbox: Outbox, name: str) -> None:
        for row in rows:
            if await outbox.claim(row.id):
                won[row.id].append(name)

    async with trio.open_nursery() as nursery:
        for outbox, name in zip(replicas, ("a", "b", "c"), strict=True):
            nursery.start_soon(claim_all, outbox, name)
    assert all(len(names) == 1 for names in won.values()), won

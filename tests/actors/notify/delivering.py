"""Run a real channel under the real delivery actor until its outbox is drained (kind tests)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import trio

from actors.clock import SystemClock
from actors.models import AlertStatus, Notification
from actors.notify.channels.base import Channel
from actors.notify.delivery import DeliveryActor
from actors.notify.outbox import EntryState, Outbox
from actors.notify.retry import RetryPolicy
from actors.store import Database
from tests.actors.notify.factories import make_alert, make_notification

__all__ = ["deliver", "deliver_firing_then_resolved"]

LOG = logging.getLogger("test.notify.delivering")


async def deliver(channel: Channel, notifications: Sequence[Notification]) -> dict[str, str]:
    """Enqueue `notifications` for `channel`, run its delivery actor until none is pending, and
    return each notification's key -> "delivered: DETAIL" or "dead: REASON".

    The notifications' `channel` must be `channel.name`. Retries are not waited for: a test
    scripts answers the first attempt settles (2xx, or a permanent refusal).
    """
    clock = SystemClock()
    database = Database(":memory:", offload=False)
    outbox = Outbox(database=database, clock=clock)
    actor = DeliveryActor(
        channel=channel,
        outbox=outbox,
        clock=clock,
        logger=LOG,
        retry=RetryPolicy(initial=1, maximum=1, jitter=0, give_up_after=60),
    )
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(actor.run)
            for notification in notifications:
                await outbox.enqueue(notification)
            with trio.fail_after(30):
                while await outbox.pending(channel.name):
                    await trio.sleep(0.01)  # polls the condition; the actor works meanwhile
            nursery.cancel_scope.cancel()
        done = await outbox.recent(EntryState.DELIVERED, channel=channel.name)
        dead = await outbox.recent(EntryState.DEAD, channel=channel.name)
    finally:
        database.close()
    states = {entry.key: f"delivered: {entry.last_error}" for entry in done}
    states.update({entry.key: f"dead: {entry.last_error}" for entry in dead})
    return states


async def deliver_firing_then_resolved(channel: Channel) -> dict[str, str]:
    """`deliver` a firing notification "f" and its resolution "r" through `channel`."""
    firing = make_notification("f", channel=channel.name)
    resolved = make_notification(
        "r", channel=channel.name, alerts=[make_alert(status=AlertStatus.RESOLVED)]
    )
    return await deliver(channel, [firing, resolved])

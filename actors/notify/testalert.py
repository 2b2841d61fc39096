"""Test notifications: send one directly on one channel or all, and report each outcome.

Used by `POST /api/test-alert` and by the `blipee-monitor test-alert` command. A test notification
is sent at once (not through the outbox, so the caller gets the answer) and is marked `test`
(titles start with "[TEST]"); when an outbox is given it is recorded there so that
`GET /api/v1/notifications` lists it.
"""

from __future__ import annotations

import logging
import ssl
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

from actors.clock import Clock, SystemClock
from actors.models import Alert, AlertStatus, Notification, labels_of
from actors.notify.channels import Channel, ChannelConfig, ChannelContext, build_channels
from actors.notify.channels.base import send_bounded
from actors.notify.errors import UnknownChannelError
from actors.notify.outbox import EntryState, Outbox
from actors.notify.outcome import Delivered, Outcome, Permanent, Retry
from actors.store import StoreError

if TYPE_CHECKING:
    import httpx

__all__ = ["TestResult", "send_test_alert", "run_test_alert", "build_test_notification"]


@dataclass(frozen=True, slots=True)
class TestResult:
    """The outcome of one test notification: result is delivered, retryable or rejected."""

    __test__ = False  # not a pytest test class

    channel: str
    result: str
    detail: str

    @property
    def ok(self) -> bool:
        """Whether the receiver accepted it."""
        return self.result == "delivered"

    def to_json(self) -> dict[str, object]:
        """The API view."""
        return {"channel": self.channel, "result": self.result, "detail": self.detail}


def build_test_notification(channel: str, *, now: float) -> Notification:
    """A firing test notification for `channel` with a unique key (pure, apart from the key)."""
    alert = Alert(
        fingerprint="blipee-monitor-test",
        labels=labels_of(alertname="TestAlert", rule="test-alert", severity="info"),
        annotations=labels_of(
            summary="Test notification from blipee-monitor",
            description="Sent on request to check that this channel delivers.",
        ),
        status=AlertStatus.FIRING,
        starts_at=now,
        ends_at=None,
    )
    return Notification(
        key=f"test:{channel}:{uuid.uuid4().hex}",
        channel=channel,
        group_key="blipee-monitor-test",
        group_labels=labels_of(alertname="TestAlert"),
        status=AlertStatus.FIRING,
        alerts=(alert,),
        created_at=now,
        receiver=channel,
        test=True,
    )


def _result(channel: str, outcome: Outcome) -> TestResult:
    if isinstance(outcome, Delivered):
        return TestResult(channel, "delivered", outcome.detail)
    if isinstance(outcome, Retry):
        return TestResult(channel, "retryable", outcome.reason)
    assert isinstance(outcome, Permanent)
    return TestResult(channel, "rejected", outcome.reason)


async def send_test_alert(
    channels: Mapping[str, Channel],
    *,
    clock: Clock,
    channel: str | None = None,
    outbox: Outbox | None = None,
    logger: logging.Logger | None = None,
) -> dict[str, TestResult]:
    """Send a test notification on `channel` (or every channel, concurrently).

    Each send is bounded by its channel's timeout. Returns the outcome by channel name.

    Raises:
        UnknownChannelError: `channel` is not among `channels`.
    """
    if channel is not None and channel not in channels:
        raise UnknownChannelError(channel, channels)
    names = [channel] if channel is not None else sorted(channels)
    results: dict[str, TestResult] = {}

    async def one(name: str) -> None:
        target = channels[name]
        notification = build_test_notification(name, now=clock.now())
        # one broken channel must not hide the others' results
        outcome = await send_bounded(target, notification, show_error=True)
        results[name] = _result(name, outcome)
        if logger is not None:
            logger.info("test notification on %s: %s", target.describe(), results[name].result)
        if outbox is not None:
            state = EntryState.DELIVERED if results[name].ok else EntryState.DEAD
            try:
                await outbox.record(notification, state, results[name].detail)
            except StoreError as exc:  # the answer matters more than the log entry
                if logger is not None:
                    logger.warning("cannot record test notification: %s", exc)

    async with trio.open_nursery() as nursery:
        for name in names:
            nursery.start_soon(one, name)
    return {name: results[name] for name in names}


async def run_test_alert(
    configs: Mapping[str, ChannelConfig],
    *,
    channel: str | None = None,
    logger: logging.Logger,
    clock: Clock | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    ssl_context: ssl.SSLContext | None = None,
    external_url: str = "",
) -> dict[str, TestResult]:
    """For the CLI: build the enabled channels of `configs`, send, close them.

    Disabled channels (empty secret) are left out with a warning.

    Raises:
        UnknownChannelError: `channel` is not configured or is disabled.
    """
    context = ChannelContext(
        clock=clock or SystemClock(),
        logger=logger,
        transport=transport,
        ssl_context=ssl_context,
        external_url=external_url,
    )
    channels = build_channels(configs, context)
    try:
        return await send_test_alert(
            channels, clock=clock or SystemClock(), channel=channel, logger=logger
        )
    finally:
        with trio.CancelScope(shield=True):
            for item in channels.values():
                await item.aclose()

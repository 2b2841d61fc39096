"""The one small interface every channel implements (`Channel`), and what all channels share.

A channel turns a `Notification` into one request to its receiver and says how it went as an
`Outcome` (Delivered, Retry, Permanent): the notifier classifies its own failures. It never
raises for a delivery failure and never logs or returns its secrets (URLs with tokens, routing
keys, passwords): every reason passes through `redact()`.

`ChannelContext` is what the process gives every channel it builds (clock, logger, transport,
...); a channel kind's constructor is `KindChannel(name, config, context)` and the channel keeps
its config model as `self.config`.

This module does not import httpx (see `actors.notify.channels.http`).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

import trio

from actors.clock import Clock
from actors.models import Notification
from actors.notify.config import ChannelBase
from actors.notify.outcome import Outcome, Retry
from actors.secrets import config_secrets
from actors.secrets import redact as redact_secrets

if TYPE_CHECKING:
    import httpx
    from opentelemetry.trace import TracerProvider

    from actors.store import Store

__all__ = [
    "MAX_RESPONSE_BYTES",
    "Channel",
    "ChannelContext",
    "ConfigT",
    "KindChannel",
    "redact",
    "send_bounded",
]

MAX_RESPONSE_BYTES = 64 * 1024
"""At most this much of a receiver's answer is read (the reason needs a few hundred bytes)."""


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every non-empty secret in `text` with "***", also in the forms an error message
    or a receiver's answer quotes it in (`actors.secrets.redact`)."""
    return redact_secrets(text, secrets)


@dataclass(frozen=True, kw_only=True)
class ChannelContext:
    """What the process lends every channel it builds; each kind uses the parts it needs.

    Attributes:
        clock: the time source (retry-after, timestamps).
        logger: where the channel logs (never a secret).
        transport: the httpx transport of HTTP channels (None: the real network;
            `httpx.MockTransport` in tests).
        ssl_context: the TLS context of the email channel (None: the system trust store).
        external_url: the monitor's public URL, linked from messages ("" : no link).
        database: where the alertmanager channel keeps its firing alerts across restarts
            (None: in memory only).
        tracer_provider: HTTP channels make one client span per request with it (None: no
            spans).
    """

    clock: Clock
    logger: logging.Logger
    transport: httpx.AsyncBaseTransport | None = None
    ssl_context: ssl.SSLContext | None = None
    external_url: str = ""
    database: Store | None = None
    tracer_provider: TracerProvider | None = None


class Channel:
    """Base of every channel.

    Attributes:
        name: the channel's name in the configuration ([channels.NAME]).
        kind: the channel kind (a name of `actors.notify.channels.kinds.KINDS`).
        send_resolved: whether resolved notifications are sent.
        timeout: seconds one attempt may take.
        rate: (tokens per second, burst) of the channel's rate limit.
        tracer_provider: HTTP channels take it from their `ChannelContext` and make one client
            span per request with it (None: no spans); the others ignore it.
    """

    kind = "channel"
    rate: tuple[float, int] = (5.0, 20)
    tracer_provider: TracerProvider | None = None

    def __init__(
        self,
        name: str,
        *,
        send_resolved: bool,
        timeout: float,
        clock: Clock,
        logger: logging.Logger,
    ) -> None:
        self.name = name
        self.send_resolved = send_resolved
        self.timeout = timeout
        self.clock = clock
        self.logger = logger

    async def send(self, notification: Notification) -> Outcome:
        """Deliver one notification; never raises for a delivery failure."""
        raise NotImplementedError

    async def maintain(self) -> None:
        """Background work the channel needs while it runs (re-sending); none by default.

        Run by the channel's delivery actor next to its delivery loop; may return at once.
        """

    async def discard(self, notification: Notification) -> None:
        """`notification` will never be sent (skipped by `send_resolved = false`, or
        dead-lettered): drop whatever the channel keeps for it. Nothing by default.

        Never raises for a store failure (the channel logs it).
        """

    async def aclose(self) -> None:
        """Release the channel's resources (idempotent)."""

    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in logs or reasons."""
        return ()

    def describe(self) -> str:
        """A log-safe description: kind and name only."""
        return f"{self.kind} channel {self.name!r}"


ConfigT = TypeVar("ConfigT", bound=ChannelBase)
"""The config model of a channel kind."""


class KindChannel(Channel, Generic[ConfigT]):
    """Base of the channel kinds: built as `KindChannel(name, config, context)`.

    The channel keeps its config model (`self.config`) and reads its keys from it, rather than
    taking a copy of each as a keyword argument; `send_resolved` and `timeout` come from it, the
    clock and the logger from the context.

    Attributes:
        config: the channel's [channels.NAME] table, validated.
        context: what the process lends the channel (`ChannelContext`).
    """

    def __init__(self, name: str, config: ConfigT, context: ChannelContext) -> None:
        super().__init__(
            name,
            send_resolved=config.send_resolved,
            timeout=config.timeout,
            clock=context.clock,
            logger=context.logger,
        )
        self.config = config
        self.context = context

    def secrets(self) -> tuple[str, ...]:
        """Every secret of the channel's config (`actors.secrets.config_secrets`): its
        secret-typed keys, credential headers and URL passwords."""
        return tuple(config_secrets(self.config))


async def send_bounded(
    channel: Channel,
    notification: Notification,
    *,
    logger: logging.Logger | None = None,
    show_error: bool = False,
) -> Outcome:
    """`channel.send(notification)` bounded by the channel timeout; never raises but Cancelled.

    The cancel scope allows one second more than `channel.timeout` (a channel bounds its own
    requests by it; this catches one that does not). A timeout is a Retry; so is an exception
    from the channel (a bug in one channel must not stop deliveries or hide other channels'
    results): it is logged at ERROR on `logger` with secrets redacted, and the reason names its
    type, plus its redacted message when `show_error` (test-alert shows it to a person; the
    outbox keeps only the type).
    """
    timeout = channel.timeout
    outcome: Outcome = Retry(f"timeout after {timeout:g}s")
    with trio.move_on_after(timeout + 1.0):
        try:
            outcome = await channel.send(notification)
        except Exception as exc:
            message = redact(str(exc), channel.secrets())
            if logger is not None:
                logger.error(
                    "%s: unexpected error: %s: %s", channel.describe(), type(exc).__name__, message
                )
            reason = f"internal error: {type(exc).__name__}"
            outcome = Retry(f"{reason}: {message}" if show_error else reason)
    return outcome

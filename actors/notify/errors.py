"""Exceptions of the notify package.

    NotifyError                   every error raised by actors.notify
    ├── PayloadError              a stored outbox payload cannot be decoded (key, reason)
    ├── UnknownChannelError       a channel name that is not configured or is disabled (name)
    └── ChannelSetupError         a channel cannot be built from its configuration (name, reason)

Delivery failures are not exceptions: a channel returns an `Outcome` (Delivered, Retry,
Permanent) so the pipeline decides on plain data.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["ChannelSetupError", "NotifyError", "PayloadError", "UnknownChannelError"]


class NotifyError(Exception):
    """Base of every error raised by `actors.notify`."""


class PayloadError(NotifyError):
    """An outbox row's payload is not a valid serialised notification."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"bad outbox payload for {key!r}: {reason}")


class UnknownChannelError(NotifyError):
    """The named channel is not configured, or is disabled."""

    def __init__(self, name: str, known: Iterable[str] = ()) -> None:
        self.name = name
        self.known = tuple(sorted(known))
        hint = f"; enabled channels: {', '.join(self.known)}" if self.known else ""
        super().__init__(f"unknown or disabled channel {name!r}{hint}")


class ChannelSetupError(NotifyError):
    """A channel cannot be built from its configuration."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"channel {name!r}: {reason}")

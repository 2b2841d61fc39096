"""A live view of the composition for objects built once, while what they see may change.

A reload can replace the configuration; the routing actor is given this view, which reads the
`App`'s current configuration at each call:

- `EnabledChannels`: the outbox as routing sees it: a notification for a channel without a
  delivery actor (disabled by an empty secret, or removed by a reload) is counted in
  `notifications_total{result="skipped"}` and dropped instead of queued forever.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from actors.models import Notification
    from supervisor.app.root import App

__all__ = ["EnabledChannels"]


class EnabledChannels:
    """The outbox as routing sees it: notifications for a channel without a delivery actor
    (disabled: empty secret, or removed by a reload) are skipped instead of queued forever."""

    def __init__(self, app: App) -> None:
        self._app = app

    async def enqueue(self, notification: Notification) -> bool:
        """Queue `notification` durably (True), or skip it (False) when its channel is not
        enabled in the running configuration. Raises: as `Outbox.enqueue`."""
        config = self._app.config
        channel = config.channels.get(notification.channel)
        if channel is None or channel.disabled_reason() is not None:
            self._app.metrics.record(
                "notifications_total", 1, {"channel": notification.channel, "result": "skipped"}
            )
            return False
        return await self._app.outbox.enqueue(notification)

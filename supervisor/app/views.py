"""Live views of the composition for objects built once, while what they see may be replaced.

A reload can replace the routing actor and the configuration; the API blueprints and the routing
actor are built once. They are given these views, which read the `App`'s current attributes at
each call:

- `CurrentRouting`: the silence and mute API of whichever routing actor runs now.
- `EnabledChannels`: the outbox as routing sees it: a notification for a channel without a
  delivery actor (disabled by an empty secret, or removed by a reload) is counted in
  `notifications_total{result="skipped"}` and dropped instead of queued forever.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from actors.models import Alert, Notification
    from actors.routing.actor import MuteStatus
    from actors.routing.silences import Silence
    from supervisor.app.root import App

__all__ = ["CurrentRouting", "EnabledChannels"]


class CurrentRouting:
    """The silence API of whichever routing actor runs now (a reload may replace it).

    Each method is the routing actor's method of the same name (same raises).
    """

    def __init__(self, app: App) -> None:
        self._app = app

    def silences(self) -> list[Silence]:
        return self._app.routing.silences()

    def get_silence(self, silence_id: str) -> Silence:
        return self._app.routing.get_silence(silence_id)

    async def add_silence(
        self,
        *,
        matchers: Sequence[str],
        ends_at: float,
        starts_at: float | None = None,
        created_by: str = "",
        comment: str = "",
    ) -> Silence:
        return await self._app.routing.add_silence(
            matchers=matchers,
            ends_at=ends_at,
            starts_at=starts_at,
            created_by=created_by,
            comment=comment,
        )

    async def expire_silence(self, silence_id: str) -> Silence:
        return await self._app.routing.expire_silence(silence_id)

    def mute_status(self, alert: Alert) -> MuteStatus:
        return self._app.routing.mute_status(alert)


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

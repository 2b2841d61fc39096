"""console channel: one log line per notification (the default configuration's channel)."""

from __future__ import annotations

from typing import Literal

from actors.models import Notification
from actors.notify.channels.base import KindChannel
from actors.notify.channels.render import alert_summary, held_alerts, held_line, title
from actors.notify.config import ChannelBase
from actors.notify.outcome import Delivered, Outcome

__all__ = ["ConsoleChannel", "ConsoleChannelConfig", "console_line"]


class ConsoleChannelConfig(ChannelBase):
    """kind = "console": one log line per notification."""

    kind: Literal["console"]


def console_line(notification: Notification) -> str:
    """The log line for `notification`: title, then each alert's summary."""
    parts = [title(notification)]
    parts.extend(f"{a.status.value}: {alert_summary(a)}" for a in notification.alerts)
    parts.extend(f"held: {held_line(entry)}" for entry in held_alerts(notification))
    return " | ".join(parts) + f" (key={notification.key})"


class ConsoleChannel(KindChannel[ConsoleChannelConfig]):
    """Logs each notification at WARNING on the context's logger."""

    kind = "console"
    rate = (100.0, 100)

    async def send(self, notification: Notification) -> Outcome:
        line = console_line(notification)
        self.logger.warning("notification %s: %s", self.name, line)
        return Delivered("logged")

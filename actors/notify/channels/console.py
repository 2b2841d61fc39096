"""console channel: one log line per notification (the default configuration's channel)."""

from __future__ import annotations

from actors.models import Notification
from actors.notify.channels.base import Channel
from actors.notify.channels.render import alert_summary, held_alerts, held_line, title
from actors.notify.outcome import Delivered, Outcome

__all__ = ["ConsoleChannel", "console_line"]


def console_line(notification: Notification) -> str:
    """The log line for `notification`: title, then each alert's summary."""
    parts = [title(notification)]
    parts.extend(f"{a.status.value}: {alert_summary(a)}" for a in notification.alerts)
    parts.extend(f"held: {held_line(entry)}" for entry in held_alerts(notification))
    return " | ".join(parts) + f" (key={notification.key})"


class ConsoleChannel(Channel):
    """Logs each notification at WARNING (firing) or INFO (resolved) on the given logger."""

    kind = "console"
    rate = (100.0, 100)

    async def send(self, notification: Notification) -> Outcome:
        line = console_line(notification)
        self.logger.warning("notification %s: %s", self.name, line)
        return Delivered("logged")

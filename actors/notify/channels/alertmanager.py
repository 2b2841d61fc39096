"""alertmanager channel: `POST /api/v2/alerts` of a Prometheus Alertmanager, Prometheus style.

Each notification posts its alerts as a JSON array {labels, annotations, startsAt, endsAt,
generatorURL} with RFC 3339 times. Like Prometheus, firing alerts are re-sent every
`resend_interval` (default 1 m) with `endsAt` four intervals ahead, so Alertmanager keeps them
active while we run and resolves them by itself if we stop for good; a resolved alert is sent with
`endsAt` = its resolve time and is no longer re-sent. The set of firing alerts is kept in the
store (when one is given), so re-sending resumes after a restart. 200 delivered; 400 permanent;
5xx and 429 retried. A resolution that is not sent (`send_resolved = false`, dead-lettered) stops
the re-sending too, so Alertmanager expires the alert at its last `endsAt`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from typing import Any, Literal

import trio

from actors.configtypes import Duration
from actors.models import Alert, AlertStatus, Notification
from actors.notify.channels.base import ChannelContext
from actors.notify.channels.http import HttpChannel
from actors.notify.channels.render import with_held_annotations
from actors.notify.codec import decode_alert, encode_alert, rfc3339
from actors.notify.config import ChannelBase, OptionalUrl
from actors.notify.outcome import Delivered, Outcome
from actors.store import Connection, StoreError

__all__ = ["AlertmanagerChannel", "AlertmanagerChannelConfig", "build_alertmanager_alerts"]


class AlertmanagerChannelConfig(ChannelBase):
    """kind = "alertmanager": POST /api/v2/alerts of an Alertmanager."""

    kind: Literal["alertmanager"]
    url: OptionalUrl = ""
    resend_interval: Duration = 60.0

    def disabled_reason(self) -> str | None:
        return "url is empty" if not self.url.strip() else None


MIGRATIONS = [
    """
    CREATE TABLE notify_am_firing (
        channel TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        alert TEXT NOT NULL,
        PRIMARY KEY (channel, fingerprint)
    );
    """,
]


def build_alertmanager_alerts(
    alerts: Iterable[Alert], *, now: float, resend_interval: float
) -> list[dict[str, Any]]:
    """The API v2 body for `alerts` at `now` (pure).

    Firing alerts get endsAt = now + 4 x resend_interval (Prometheus' rule); resolved ones their
    resolve time.
    """
    body = []
    for alert in alerts:
        if alert.status is AlertStatus.FIRING or alert.ends_at is None:
            ends = now + 4 * resend_interval
        else:
            ends = alert.ends_at
        item: dict[str, Any] = {
            "labels": dict(alert.labels),
            "annotations": dict(alert.annotations),
            "startsAt": rfc3339(alert.starts_at),
            "endsAt": rfc3339(ends),
        }
        if alert.generator_url:
            item["generatorURL"] = alert.generator_url
        body.append(item)
    return body


def _alert_json(alert: Alert) -> str:
    return json.dumps(encode_alert(alert))


def _alert_from_json(text: str) -> Alert:
    """A stored firing alert (rows of older versions have no status: they are firing too)."""
    alert = decode_alert({"status": AlertStatus.FIRING.value, **json.loads(text)})
    return dataclasses.replace(alert, status=AlertStatus.FIRING, ends_at=None)


class AlertmanagerChannel(HttpChannel[AlertmanagerChannelConfig]):
    """Posts alerts to an Alertmanager and re-sends the firing ones periodically; keeps them in
    the context's `database` (None: in memory only)."""

    kind = "alertmanager"
    rate = (10.0, 50)

    def __init__(
        self, name: str, config: AlertmanagerChannelConfig, context: ChannelContext
    ) -> None:
        super().__init__(name, config, context)
        self._url = config.url.rstrip("/") + "/api/v2/alerts"
        database = context.database
        self._db = database
        self._firing: dict[str, Alert] = {}
        self._loaded = database is None
        if database is not None:
            database.migrate("notify.alertmanager", MIGRATIONS)

    @property
    def firing(self) -> dict[str, Alert]:
        """Firing alerts being re-sent, by fingerprint (a copy)."""
        return dict(self._firing)

    async def send(self, notification: Notification) -> Outcome:
        await self._load()
        # A parent of held alerts carries them in its `held_alerts` annotation, re-sent with it.
        alerts = with_held_annotations(notification)
        outcome = await self._post(alerts)
        if isinstance(outcome, Delivered) and not notification.test:
            await self._remember(alerts)
        return outcome

    async def discard(self, notification: Notification) -> None:
        """A resolution that will not be sent still ends the re-sending of its alerts: without
        this, `send_resolved = false` (or a dead-lettered resolution) would keep re-sending them
        as firing for ever, and Alertmanager would never let them expire."""
        await self._load()
        resolved = [a for a in notification.alerts if a.status is AlertStatus.RESOLVED]
        if resolved and not notification.test:
            await self._remember(resolved)

    async def maintain(self) -> None:
        """Re-send the firing alerts every `resend_interval` until cancelled."""
        await self._load()
        while True:
            await trio.sleep(self.config.resend_interval)
            if not self._firing:
                continue
            outcome = await self._post(self._firing.values())
            if not isinstance(outcome, Delivered):
                self.logger.warning(
                    "%s: re-sending %d firing alerts failed: %s",
                    self.describe(),
                    len(self._firing),
                    getattr(outcome, "reason", outcome),
                )

    async def _post(self, alerts: Iterable[Alert]) -> Outcome:
        body = build_alertmanager_alerts(
            alerts, now=self.clock.now(), resend_interval=self.config.resend_interval
        )
        return await self.post(self._url, json.dumps(body).encode("utf-8"))

    async def _load(self) -> None:
        if self._loaded or self._db is None:
            return
        self._loaded = True
        try:
            rows = await self._db.fetchall(
                "SELECT alert FROM notify_am_firing WHERE channel = ?", (self.name,)
            )
        except StoreError as exc:
            self.logger.warning("%s: cannot load firing alerts: %s", self.describe(), exc)
            return
        for row in rows:
            try:
                alert = _alert_from_json(str(row["alert"]))
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
            self._firing.setdefault(alert.fingerprint, alert)

    async def _remember(self, alerts: Iterable[Alert]) -> None:
        firing = []
        resolved = []
        for alert in alerts:
            if alert.status is AlertStatus.FIRING:
                self._firing[alert.fingerprint] = alert
                firing.append((self.name, alert.fingerprint, _alert_json(alert)))
            else:
                self._firing.pop(alert.fingerprint, None)
                resolved.append((self.name, alert.fingerprint))
        if self._db is None:
            return

        def work(conn: Connection) -> None:
            conn.executemany(
                "INSERT INTO notify_am_firing (channel, fingerprint, alert) VALUES (?, ?, ?)"
                " ON CONFLICT (channel, fingerprint) DO UPDATE SET alert = excluded.alert",
                firing,
            )
            conn.executemany(
                "DELETE FROM notify_am_firing WHERE channel = ? AND fingerprint = ?", resolved
            )

        try:
            await self._db.transaction(work)
        except StoreError as exc:  # re-sending is best effort; the delivery itself succeeded
            self.logger.warning("%s: cannot store firing alerts: %s", self.describe(), exc)

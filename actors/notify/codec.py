"""Notification <-> JSON, for the outbox (pure). Round-trips every field of `Notification`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from actors.models import Alert, AlertStatus, Labels, Notification
from actors.notify.errors import PayloadError

__all__ = ["decode_alert", "decode_notification", "encode_alert", "encode_notification", "rfc3339"]


def rfc3339(seconds: float) -> str:
    """Unix seconds -> RFC 3339 UTC with milliseconds ("2026-01-02T03:04:05.678Z")."""
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _labels(value: Any) -> Labels:
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), str(v)) for k, v in value.items()))
    raise ValueError("labels must be an object")


def encode_alert(alert: Alert) -> dict[str, Any]:
    """`alert` as a JSON-ready object (every field; `decode_alert` reads it back)."""
    return {
        "fingerprint": alert.fingerprint,
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "status": alert.status.value,
        "starts_at": alert.starts_at,
        "ends_at": alert.ends_at,
        "value": alert.value,
        "generator_url": alert.generator_url,
    }


def decode_alert(data: Any) -> Alert:
    """The alert `encode_alert` wrote (already parsed from JSON).

    Raises:
        ValueError, KeyError, TypeError: `data` is not such an object (missing or bad fields).
    """
    if not isinstance(data, Mapping):
        raise ValueError("alert must be an object")
    ends_at = data.get("ends_at")
    value = data.get("value")
    return Alert(
        fingerprint=str(data["fingerprint"]),
        labels=_labels(data["labels"]),
        annotations=_labels(data.get("annotations", {})),
        status=AlertStatus(data["status"]),
        starts_at=float(data["starts_at"]),
        ends_at=None if ends_at is None else float(ends_at),
        value=None if value is None else float(value),
        generator_url=str(data.get("generator_url", "")),
    )


def encode_notification(notification: Notification) -> str:
    """Serialise a notification to JSON. Non-JSON context values are stored as strings."""
    data = {
        "v": 1,
        "key": notification.key,
        "channel": notification.channel,
        "group_key": notification.group_key,
        "group_labels": dict(notification.group_labels),
        "status": notification.status.value,
        "alerts": [encode_alert(a) for a in notification.alerts],
        "created_at": notification.created_at,
        "receiver": notification.receiver,
        "test": notification.test,
        "context": dict(notification.context),
    }
    return json.dumps(data, separators=(",", ":"), sort_keys=True, default=str)


def decode_notification(payload: str, *, key: str = "?") -> Notification:
    """Parse what `encode_notification` wrote.

    Raises:
        PayloadError: the payload is not valid JSON or misses fields.
    """
    try:
        data = json.loads(payload)
        if not isinstance(data, Mapping):
            raise ValueError("payload must be an object")
        context = data.get("context", {})
        return Notification(
            key=str(data["key"]),
            channel=str(data["channel"]),
            group_key=str(data["group_key"]),
            group_labels=_labels(data.get("group_labels", {})),
            status=AlertStatus(data["status"]),
            alerts=tuple(decode_alert(a) for a in data["alerts"]),
            created_at=float(data["created_at"]),
            receiver=str(data.get("receiver", "")),
            test=bool(data.get("test", False)),
            context=dict(context) if isinstance(context, Mapping) else {},
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise PayloadError(key, f"{type(exc).__name__}: {exc}") from exc

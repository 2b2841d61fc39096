"""Text shared by the human-facing channels (console, email, slack, pagerduty): pure functions."""

from __future__ import annotations

from collections.abc import Sequence

from actors.models import Alert, AlertStatus, Labels, Notification

__all__ = [
    "alert_summary",
    "common_annotations",
    "common_labels",
    "counts",
    "group_name",
    "title",
    "truncate",
]


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending with "…" when cut."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def common_labels(alerts: Sequence[Alert]) -> Labels:
    """Labels with the same value in every alert (Alertmanager's commonLabels)."""
    if not alerts:
        return ()
    common = set(alerts[0].labels)
    for alert in alerts[1:]:
        common &= set(alert.labels)
    return tuple(sorted(common))


def common_annotations(alerts: Sequence[Alert]) -> Labels:
    """Annotations with the same value in every alert."""
    if not alerts:
        return ()
    common = set(alerts[0].annotations)
    for alert in alerts[1:]:
        common &= set(alert.annotations)
    return tuple(sorted(common))


def counts(notification: Notification) -> tuple[int, int]:
    """(firing, resolved) alert counts."""
    firing = sum(1 for a in notification.alerts if a.status is AlertStatus.FIRING)
    return firing, len(notification.alerts) - firing


def group_name(notification: Notification) -> str:
    """The group's alertname, else its group labels, else "alerts"."""
    labels = dict(notification.group_labels)
    if "alertname" in labels:
        return labels["alertname"]
    common = dict(common_labels(notification.alerts))
    if "alertname" in common:
        return common["alertname"]
    if labels:
        return " ".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return "alerts"


def title(notification: Notification) -> str:
    """Alertmanager-style title: "[FIRING:2] High API Latency" (prefixed "[TEST] " for tests)."""
    firing, resolved = counts(notification)
    if notification.status is AlertStatus.FIRING:
        head = f"[FIRING:{firing}]"
    else:
        head = f"[RESOLVED:{resolved}]" if resolved else "[RESOLVED]"
    prefix = "[TEST] " if notification.test else ""
    return f"{prefix}{head} {group_name(notification)}"


def alert_summary(alert: Alert) -> str:
    """One line for one alert: its summary annotation, else alertname and labels."""
    annotations = dict(alert.annotations)
    labels = dict(alert.labels)
    text = annotations.get("summary") or annotations.get("description") or ""
    if not text:
        shown = {k: v for k, v in labels.items() if k not in ("alertname", "rule")}
        text = labels.get("alertname", "alert")
        if shown:
            text += " (" + ", ".join(f"{k}={v}" for k, v in sorted(shown.items())) + ")"
    return text

"""Text shared by the channels that write for people (chat, paging, mail): pure functions."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from actors.models import Alert, AlertStatus, Labels, Notification

__all__ = [
    "HELD_ANNOTATION",
    "alert_summary",
    "common_annotations",
    "common_labels",
    "counts",
    "group_name",
    "held_alerts",
    "held_for_alert",
    "with_held_annotations",
    "held_line",
    "title",
    "truncate",
]

HELD_ANNOTATION = "held_alerts"
"""Annotation naming, on a parent alert, the alerts its failing check holds (webhook and
alertmanager channels)."""
_HELD_FIELDS = ("alertname", "check", "blocked_by", "fingerprint")


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending with "…" when cut."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def _common(pairs: Sequence[Labels]) -> Labels:
    """The (name, value) pairs present in every one of `pairs`, sorted."""
    if not pairs:
        return ()
    common = set(pairs[0])
    for more in pairs[1:]:
        common.intersection_update(more)
    return tuple(sorted(common))


def common_labels(alerts: Sequence[Alert]) -> Labels:
    """Labels with the same value in every alert (Alertmanager's commonLabels)."""
    return _common([a.labels for a in alerts])


def common_annotations(alerts: Sequence[Alert]) -> Labels:
    """Annotations with the same value in every alert (Alertmanager's commonAnnotations)."""
    return _common([a.annotations for a in alerts])


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


def held_alerts(notification: Notification) -> list[dict[str, str]]:
    """The alerts held because of this notification's alerts: routing's `context["held"]`.

    Each entry is {alertname, check, blocked_by (comma-separated check names), fingerprint},
    all strings. The context may come back from the outbox or an older version: entries that are
    not objects are skipped, missing fields are empty.
    """
    raw = notification.context.get("held")
    if not isinstance(raw, list | tuple):
        return []
    out = []
    for entry in raw:
        if isinstance(entry, Mapping):
            out.append({field: str(entry.get(field) or "") for field in _HELD_FIELDS})
    return out


def held_line(entry: Mapping[str, str]) -> str:
    """One line for one held alert: "API Down (check api), blocked by database"."""
    text = entry.get("alertname") or "alert"
    if entry.get("check"):
        text += f" (check {entry['check']})"
    if entry.get("blocked_by"):
        text += f", blocked by {entry['blocked_by']}"
    return text


def held_for_alert(alert: Alert, held: Sequence[Mapping[str, str]]) -> list[Mapping[str, str]]:
    """The held entries blocked by `alert`'s check (its `check` label)."""
    check = dict(alert.labels).get("check", "")
    if not check:
        return []
    return [e for e in held if check in e.get("blocked_by", "").split(",")]


def with_held_annotations(
    notification: Notification, held: Sequence[Mapping[str, str]] | None = None
) -> tuple[Alert, ...]:
    """The notification's alerts, each parent of held alerts annotated with `HELD_ANNOTATION`.

    The annotation lists the alerts its check holds ("; "-separated `held_line`s). Alerts that
    hold nothing are returned unchanged, so without holds the result is `notification.alerts`.
    """
    entries = held_alerts(notification) if held is None else held
    if not entries:
        return notification.alerts
    out = []
    for alert in notification.alerts:
        mine = held_for_alert(alert, entries)
        if mine:
            text = "; ".join(held_line(e) for e in mine)
            annotations = {**dict(alert.annotations), HELD_ANNOTATION: text}
            alert = dataclasses.replace(alert, annotations=tuple(sorted(annotations.items())))
        out.append(alert)
    return tuple(out)

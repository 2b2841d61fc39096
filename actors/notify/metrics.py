"""The notify package's metrics, and the small recording interface it needs.

`Metrics` is the metric store's write side (`actors.telemetry.protocols.MetricWriter`):
`actors.telemetry.store.MetricStore` satisfies it, and tests may pass a plain recorder. Declared
once by the `Outbox` (declaring again identically is a no-op).
"""

from __future__ import annotations

from actors.telemetry.protocols import MetricWriter as Metrics

__all__ = [
    "DELIVERY_SECONDS",
    "NOTIFICATIONS_TOTAL",
    "OUTBOX_PENDING",
    "Metrics",
    "declare_notify_metrics",
]

NOTIFICATIONS_TOTAL = "notifications_total"
DELIVERY_SECONDS = "notification_delivery_seconds"
OUTBOX_PENDING = "outbox_pending"

_DELIVERY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def declare_notify_metrics(metrics: Metrics) -> None:
    """Declare notifications_total{channel,result}, notification_delivery_seconds{channel} and
    outbox_pending{channel}.

    `result` is one of: delivered, retry, dead_letter, skipped.
    """
    metrics.declare(
        NOTIFICATIONS_TOTAL,
        "counter",
        "Notification delivery attempts by channel and result "
        "(delivered, retry, dead_letter, skipped).",
        ("channel", "result"),
    )
    metrics.declare(
        DELIVERY_SECONDS,
        "histogram",
        "Time of one notification delivery attempt, in seconds.",
        ("channel",),
        _DELIVERY_BUCKETS,
    )
    metrics.declare(
        OUTBOX_PENDING,
        "gauge",
        "Notifications written to the outbox and not yet delivered or dead-lettered.",
        ("channel",),
    )

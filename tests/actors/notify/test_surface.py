"""Pins the public surface of actors.notify (the composition root relies on it)."""

from __future__ import annotations

import actors.notify


def test_public_surface() -> None:
    assert sorted(actors.notify.__all__) == [
        "BreakerState",
        "Channel",
        "ChannelSetupError",
        "CircuitBreaker",
        "Delivered",
        "DeliveryActor",
        "EntryState",
        "Metrics",
        "NotifyError",
        "Outbox",
        "OutboxEntry",
        "OutboxStatistics",
        "Outcome",
        "PayloadError",
        "Permanent",
        "Retry",
        "RetryPolicy",
        "TestResult",
        "TokenBucket",
        "UnknownChannelError",
        "build_channel",
        "build_channels",
        "declare_notify_metrics",
        "run_test_alert",
        "send_test_alert",
    ]
    for name in actors.notify.__all__:
        assert getattr(actors.notify, name) is not None


def test_the_metric_store_satisfies_the_recording_interface() -> None:
    from actors.clock import FixedClock
    from actors.notify.metrics import Metrics
    from actors.telemetry.store import MetricStore

    def accepts(metrics: Metrics) -> Metrics:
        return metrics

    store = MetricStore(clock=FixedClock())
    actors.notify.declare_notify_metrics(accepts(store))
    actors.notify.declare_notify_metrics(store)  # idempotent
    store.record("outbox_pending", 3, {"channel": "slack"})
    store.record("notifications_total", 1, {"channel": "slack", "result": "delivered"})
    store.record("notification_delivery_seconds", 0.2, {"channel": "slack"})

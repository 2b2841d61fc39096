"""Notification delivery: a durable outbox and one supervised delivery actor per channel.

    routing ── Notification ──► Outbox.enqueue (SQLite, committed first)
                                   │ wakes
                                   ▼
                DeliveryActor(channel) : rate limit ► breaker ► send ► classify ► mark
                                   │                                   (delivered / retry / dead)
                                   ▼
             console · email · slack · pagerduty · webhook · alertmanager

Public surface (the composition root uses these):
- `Outbox(database=, clock=, metrics=None, retention=7d)`
- `build_channels(configs, ChannelContext(clock=, logger=, transport=None, ssl_context=None,
  external_url="", database=None, tracer_provider=None)) -> dict[name, Channel]` (disabled
  channels skipped with a warning); `build_channel(name, config, context)`
- `DeliveryActor(channel=, outbox=, clock=, logger=, metrics=None, tracer=None, ...)` with
  `run(*, task_status)`
- `create_blueprint(channels=, outbox=, clock=, logger=None)` (actors.notify.api; its routes
  declare their scopes, the API app's access guard enforces them)
- `run_test_alert(configs, channel=None, logger=, ...)` for the CLI; `send_test_alert(...)`.
"""

from __future__ import annotations

from actors.notify.breaker import BreakerState, CircuitBreaker
from actors.notify.channels import Channel, build_channel, build_channels
from actors.notify.delivery import DeliveryActor
from actors.notify.errors import ChannelSetupError, NotifyError, PayloadError, UnknownChannelError
from actors.notify.metrics import Metrics, declare_notify_metrics
from actors.notify.outbox import EntryState, Outbox, OutboxEntry, OutboxStatistics
from actors.notify.outcome import Delivered, Outcome, Permanent, Retry
from actors.notify.ratelimit import TokenBucket
from actors.notify.retry import RetryPolicy
from actors.notify.testalert import TestResult, run_test_alert, send_test_alert

__all__ = [
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

"""The messages actors exchange. All frozen; all times are seconds.

Two clocks are used and never mixed:
- *wall* time (`time.time()`, Unix seconds): what users see (timestamps in the API, alert
  `startsAt`/`endsAt`, samples pushed by the application).
- *monotonic* time (`trio.current_time()` / `anyio.current_time()`): deadlines, intervals, windows
  measured inside the process. Under pytest-trio's autojump clock it is virtual.

Labels are kept as a sorted tuple of pairs (`Labels`) so that messages hash and compare by value;
`labels_of()` builds one from a mapping.

Message flow (see docs/architecture.md):
    checks ── CheckResult ──► state ──► rules
    telemetry ── Sample ────► metric store ──► rules
    rules ── AlertEvent ──► routing ── Notification ──► outbox ──► notify/<channel>
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "Alert",
    "AlertEvent",
    "AlertStatus",
    "CheckResult",
    "CheckStatus",
    "Labels",
    "Notification",
    "Sample",
    "Severity",
    "labels_of",
]

Labels = tuple[tuple[str, str], ...]
"""Label set as sorted (name, value) pairs; hashable and comparable."""


def labels_of(mapping: Mapping[str, str] | None = None, /, **extra: str) -> Labels:
    """Return the canonical `Labels` for `mapping` updated with `extra`."""
    merged = dict(mapping or {})
    merged.update(extra)
    return tuple(sorted(merged.items()))


class CheckStatus(enum.StrEnum):
    """Outcome of one health check, as in the seed's document and the IETF health draft."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The reported outcome of one check run, after failure/success thresholds were applied.

    `status` is what users see; `observed` is the raw outcome of this very run (a check with
    `failure_threshold = 3` observes FAIL twice while still reporting PASS). `details` is a JSON-
    serialisable mapping shown under the check in `/api/health` (e.g. `blocked_by`, `activeAgents`).
    """

    check: str
    status: CheckStatus
    message: str
    latency_seconds: float
    timestamp: float
    observed: CheckStatus
    critical: bool = False
    details: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Sample:
    """One recorded value of one series.

    `kind` tells the store how to fold it: "counter" values are increments (added to the series'
    running total), "gauge" values replace it, "histogram" values are observations.
    """

    metric: str
    labels: Labels
    value: float
    timestamp: float
    kind: str = "gauge"


class Severity(enum.StrEnum):
    """Alert severity, as used in rules, routing matchers and channel payloads."""

    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


class AlertStatus(enum.StrEnum):
    """Alertmanager's two alert states as seen by receivers."""

    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert instance (a rule and one label set) as receivers see it.

    `labels` include `alertname`, `rule` and `severity`. `fingerprint` is a stable hash of the
    labels (the same instance always has the same fingerprint, across restarts). `ends_at` is
    None while firing and the resolve time once resolved. Times are wall clock.
    """

    fingerprint: str
    labels: Labels
    annotations: Labels
    status: AlertStatus
    starts_at: float
    ends_at: float | None
    value: float | None = None
    generator_url: str = ""


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """A state transition of one alert instance emitted by the rule evaluator.

    Emitted when an instance starts firing, when it resolves, and (`status` FIRING again) when a
    firing instance's value or annotations change. Pending instances emit nothing. `released`
    marks a firing instance this replica no longer evaluates (sharded replicas: its check moved
    to another, which continues it): routing forgets it without announcing anything.
    """

    alert: Alert
    rule_id: str
    channels: tuple[str, ...]
    at: float
    released: bool = False


@dataclass(frozen=True, slots=True)
class Notification:
    """One message to deliver on one channel: a group of alerts, Alertmanager style.

    `key` is the idempotency key: stable for the same (channel, group, content) so a delivery
    retried after a crash or restart is recognised by receivers (webhook `Idempotency-Key`,
    PagerDuty `dedup_key` is derived from the group instead). `status` is FIRING if any alert in
    `alerts` fires. `test` marks notifications from `test-alert`.
    """

    key: str
    channel: str
    group_key: str
    group_labels: Labels
    status: AlertStatus
    alerts: tuple[Alert, ...]
    created_at: float
    receiver: str = ""
    test: bool = False
    context: Mapping[str, object] = field(default_factory=dict)

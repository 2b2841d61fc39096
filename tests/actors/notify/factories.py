"""Builders of notifications and a metrics recorder shared by the notify tests."""

from __future__ import annotations

import logging
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeVar

from actors.clock import Clock, FixedClock
from actors.models import Alert, AlertStatus, Notification, labels_of
from actors.notify.channels import ChannelContext
from actors.notify.config import ChannelBase

__all__ = [
    "V4_KEYS",
    "Recorder",
    "channel_config",
    "channel_context",
    "make_alert",
    "make_notification",
]

_Config = TypeVar("_Config", bound=ChannelBase)

T0 = 1_700_000_000.0
V4_KEYS = frozenset(
    {
        "version",
        "groupKey",
        "truncatedAlerts",
        "status",
        "receiver",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "alerts",
    }
)
"""The top-level keys of Alertmanager's webhook payload, version 4."""


def channel_config(model: type[_Config], **keys: Any) -> _Config:
    """`model` validated from `keys` as a [channels.NAME] table (its `kind` filled in)."""
    (kind,) = typing.get_args(model.model_fields["kind"].annotation)
    return model.model_validate({"kind": kind, **keys})


def channel_context(
    *, clock: Clock | None = None, logger: logging.Logger | None = None, **parts: Any
) -> ChannelContext:
    """A `ChannelContext` for tests: a `FixedClock` and the "test.notify" logger by default."""
    return ChannelContext(
        clock=clock or FixedClock(), logger=logger or logging.getLogger("test.notify"), **parts
    )


def make_alert(
    name: str = "High API Latency",
    *,
    status: AlertStatus = AlertStatus.FIRING,
    severity: str = "warning",
    fingerprint: str = "fp1",
    starts_at: float = T0,
    ends_at: float | None = None,
    extra: Mapping[str, str] | None = None,
) -> Alert:
    return Alert(
        fingerprint=fingerprint,
        labels=labels_of(
            extra, alertname=name, rule=name.lower().replace(" ", "-"), severity=severity
        ),
        annotations=labels_of(summary=f"{name}: 2.5 s average", description="see runbook"),
        status=status,
        starts_at=starts_at,
        ends_at=ends_at if status is AlertStatus.FIRING else (ends_at or starts_at + 60),
        value=2.5,
        generator_url="http://monitor.local/rules/x",
    )


def make_notification(
    key: str = "k1",
    channel: str = "hooks",
    *,
    alerts: Sequence[Alert] | None = None,
    status: AlertStatus | None = None,
    group_key: str = '{}:{alertname="High API Latency"}',
) -> Notification:
    items = tuple(alerts) if alerts is not None else (make_alert(),)
    if status is None:
        firing = any(a.status is AlertStatus.FIRING for a in items)
        status = AlertStatus.FIRING if firing else AlertStatus.RESOLVED
    return Notification(
        key=key,
        channel=channel,
        group_key=group_key,
        group_labels=labels_of(alertname=dict(items[0].labels)["alertname"]),
        status=status,
        alerts=items,
        created_at=T0 + 1,
        receiver=channel,
    )


class Recorder:
    """A metrics sink satisfying actors.notify.metrics.Metrics (the store's write side)."""

    def __init__(self) -> None:
        self.declared: dict[str, tuple[str, tuple[str, ...]]] = {}
        self.values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self.observations: list[tuple[str, float]] = []

    def declare(
        self,
        name: str,
        kind: Literal["counter", "gauge", "histogram"],
        help: str,
        labelnames: Sequence[str] = (),
        buckets: Sequence[float] | None = None,
        *,
        resolution: float = 0.0,
    ) -> object:
        self.declared[name] = (kind, tuple(labelnames))
        return None

    def record(
        self,
        name: str,
        value: float,
        labels: Mapping[str, str] | None = None,
        *,
        timestamp: float | None = None,
    ) -> None:
        kind, names = self.declared[name]
        assert set(labels or {}) == set(names), (name, labels)
        key = (name, tuple(sorted((labels or {}).items())))
        if kind == "counter":
            self.values[key] = self.values.get(key, 0.0) + value
        elif kind == "gauge":
            self.values[key] = value
        else:
            self.observations.append((name, value))

    def get(self, name: str, **labels: str) -> float:
        return self.values.get((name, tuple(sorted(labels.items()))), 0.0)

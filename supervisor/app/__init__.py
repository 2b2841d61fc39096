"""The composition root and the ways to run it: a process, or embedded in a host application.

The public names are re-exported here (`from supervisor.app import App, initialize_monitoring`);
each module has one concern:

- `root`: `App`, a validated `Config` -> the subsystems, wired into one supervision tree.
- `subsystem`: what a subsystem is (`specs()`, `apply(old, new, report)`) and what the root
  lends each (`Wiring`); the subsystems, one module each: `telemetry` (metric store, recording
  API, OTLP; the store's retention, `metric_retention`), `checks` (check actors, health state),
  `notify` (outbox, channels built once, deliveries), `routing` (rules, routing, silences) and
  `web` (the API and /metrics listeners).
- `reload`: hot reload: the configuration diff by part (pure), `ReloadReport`,
  `POST /api/v1/reload`.
- `lifecycle`: the process: `run_app`, `serve` (signals, graceful stop, SIGHUP reload).
- `testalert`: `blipee-monitor test-alert` (`send_test_alert`, `TestAlertError`).
- `source`: `resolve_config` (a `Config`, a path, a TOML string or the default).
- `embed`: embedding: `initialize_monitoring` (trio hosts), `start_monitoring_thread` (asyncio
  and synchronous hosts) and their thread-safe recording and alerting APIs.

These modules (and `supervisor.config`, `supervisor.cli`) are the only ones of `supervisor` that
import `actors`.
"""

from __future__ import annotations

from supervisor.app.embed import (
    Alerting,
    BackgroundMonitoring,
    Monitoring,
    ThreadAlerting,
    ThreadMetric,
    ThreadTelemetry,
    initialize_monitoring,
    start_monitoring_thread,
)
from supervisor.app.lifecycle import run_app
from supervisor.app.reload import RELOAD_METRIC, ReloadReport
from supervisor.app.root import App, metric_retention
from supervisor.app.source import ConfigSource, resolve_config
from supervisor.app.testalert import TestAlertError, send_test_alert

__all__ = [
    "RELOAD_METRIC",
    "Alerting",
    "App",
    "BackgroundMonitoring",
    "ConfigSource",
    "Monitoring",
    "ReloadReport",
    "ThreadAlerting",
    "ThreadMetric",
    "ThreadTelemetry",
    "TestAlertError",
    "initialize_monitoring",
    "metric_retention",
    "resolve_config",
    "run_app",
    "send_test_alert",
    "start_monitoring_thread",
]

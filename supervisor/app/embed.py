"""The embedding API (docs/embedding.md): the monitor inside a host application's process.

- Trio hosts: `async with initialize_monitoring(config) as monitoring:` runs the supervision tree
  in the host's trio run for the block's duration; `monitoring.telemetry` is the recording API
  (`actors.telemetry.recording.Telemetry`), `monitoring.alerting` adds and removes rules.
- Asyncio and synchronous hosts: `start_monitoring_thread(config)` runs it in a background thread
  (`actors.telemetry.embed.MonitoringThread`) and returns a `BackgroundMonitoring` whose
  `telemetry` (`ThreadTelemetry`) and `alerting` (`ThreadAlerting`) may be called from any
  thread: recording is queued and applied on the monitor's loop (fire-and-forget), declarations
  and rule changes wait for the loop and raise there.

Neither installs a signal handler or changes the host's logging configuration (only the
configured secrets are cut out of the HTTP client loggers' records while the monitor runs).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import trio

from actors.rules.evaluate import Rule
from actors.telemetry.embed import MonitoringThread, ThreadSafeRecorder
from actors.telemetry.recording import CustomMetric, Telemetry
from supervisor.app.root import App, format_seconds
from supervisor.app.source import ConfigSource, resolve_config

__all__ = [
    "Alerting",
    "BackgroundMonitoring",
    "Monitoring",
    "ThreadAlerting",
    "ThreadMetric",
    "ThreadTelemetry",
    "initialize_monitoring",
    "start_monitoring_thread",
]

R = TypeVar("R")


class Alerting:
    """Alert rules at runtime, in the seed's shape (`add_rule({...})`, `remove_rule(id)`).

    Use it on the monitor's event loop thread (see `BackgroundMonitoring.alerting` for others).
    A rule added here lives until removed or until the process stops; a reload leaves it alone.
    """

    def __init__(self, app: App) -> None:
        self._app = app

    def add_rule(self, spec: Mapping[str, Any]) -> Rule:
        """Add (or replace, by id) a rule, e.g. `{"id": ..., "name": ..., "condition": {...},
        "severity": "warning", "channels": ["slack"]}`; it is evaluated at once.

        A window longer than the metric store's history is accepted with a warning: it reads at
        most that history (size it with a configured rule of that window).

        Raises:
            actors.rules.exceptions.InvalidRule: the rule is invalid (every problem listed).
        """
        rule = self._app.rules.add_rule(spec)
        retention = self._app.metrics.retention
        if rule.condition.window > retention:
            self._app.log.warning(
                "rule %s: window %s is longer than the metric store keeps (%s)",
                rule.id,
                format_seconds(rule.condition.window),
                format_seconds(retention),
            )
        return rule

    def remove_rule(self, rule_id: str) -> None:
        """Remove a rule; its firing alerts resolve.

        Raises:
            actors.rules.exceptions.RuleNotFound: no rule has this id.
        """
        self._app.rules.remove_rule(rule_id)

    def rules(self) -> list[Rule]:
        """Every rule evaluated now (configured and added)."""
        return self._app.rules.rules()


@dataclass(frozen=True, slots=True)
class Monitoring:
    """The running monitor inside a trio host (what `initialize_monitoring` yields).

    `telemetry` is the recording API (`record_agent_execution`, `record_ml_prediction`,
    `record_business_metric`, `record_api_request`, ..., `counter`/`gauge`/`histogram`,
    `trace_async`, `span`, `traced`); `alerting` adds and removes rules; `app` is the whole
    composition (its `metrics` store, `health` state, `api_server`...).
    """

    app: App
    telemetry: Telemetry
    alerting: Alerting


@asynccontextmanager
async def initialize_monitoring(
    config: ConfigSource = None,
    *,
    serve_http: bool = True,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[Monitoring]:
    """Run the monitor's supervision tree inside the host's trio run for the block's duration.

        async with initialize_monitoring("monitor.toml") as monitoring:
            monitoring.telemetry.record_agent_execution("carbon-hunter", 0.4, True)

    Enters once every actor has started (the API and /metrics listen unless `serve_http` is
    False). On exit the monitor stops gracefully (readiness fails, deliveries drain, within
    `[supervisor] shutdown_timeout`), then anything left is cancelled. No signal handler is
    installed and logging is left as the host configured it, except that while the monitor runs
    the configured secrets (channel URLs, tokens) are cut out of the records of the HTTP client
    loggers (httpx logs every request's URL at INFO). For asyncio and synchronous hosts, see
    `start_monitoring_thread`.

    Raises:
        supervisor.config.ConfigError: the configuration is invalid.
        actors.store.errors.DatabaseOpenError: the database cannot be opened.
        supervisor.runtime.RestartIntensityExceeded: the tree gave up (from the block's exit).
    """
    resolved, path = resolve_config(config, env=env)
    app = App(resolved, path=path, env=env, serve_http=serve_http)
    async with trio.open_nursery() as nursery:
        await nursery.start(app.run)
        try:
            yield Monitoring(app=app, telemetry=app.telemetry, alerting=Alerting(app))
        finally:
            with trio.CancelScope(shield=True):
                with trio.move_on_after(resolved.supervisor.shutdown_timeout):
                    await app.stop()
            nursery.cancel_scope.cancel()


ThreadMetric = CustomMetric
"""A custom metric recorded from any thread: queued, fire-and-forget (see `ThreadTelemetry`)."""


class ThreadTelemetry:
    """The recording API for threads other than the monitor's (asyncio or synchronous hosts).

    `record_*` calls are queued and applied on the monitor's loop (they return at once; a bad
    value is logged and counted in `errors`, not raised; `flush()` waits until every call made
    so far is applied). Declaring a custom metric (`counter`, `gauge`, `histogram`) waits for the
    loop and raises a bad declaration at once. Tracing (`span`, `traced`, `trace_async`) runs
    in the calling thread: OpenTelemetry is thread-safe, and `trace_async` works under asyncio.
    """

    def __init__(
        self, telemetry: Telemetry, recorder: ThreadSafeRecorder, token: trio.lowlevel.TrioToken
    ) -> None:
        self._telemetry = telemetry
        self._recorder = recorder
        self._token = token
        self.record_agent_execution = recorder.record_agent_execution
        self.record_heartbeat = recorder.record_heartbeat
        self.record_ml_prediction = recorder.record_ml_prediction
        self.record_ml_accuracy = recorder.record_ml_accuracy
        self.record_api_request = recorder.record_api_request
        self.record_user_message = recorder.record_user_message
        self.record_business_metric = recorder.record_business_metric
        self.record = recorder.record
        self.flush = recorder.flush
        self.span = telemetry.span
        self.traced = telemetry.traced
        self.trace_async = telemetry.trace_async

    @property
    def errors(self) -> int:
        """Calls rejected on the loop (bad values, unknown metrics)."""
        return self._recorder.errors

    @property
    def dropped(self) -> int:
        """Calls dropped because too many were waiting."""
        return self._recorder.dropped

    def _declare(self, fn: Callable[..., object], *args: Any) -> None:
        trio.from_thread.run_sync(fn, *args, trio_token=self._token)

    def counter(self, name: str, help: str, labelnames: Sequence[str] = ()) -> ThreadMetric:
        """Declare (or get, if identical) a counter.

        Raises:
            actors.telemetry.exceptions.MetricDeclarationError: invalid or declared differently.
            trio.RunFinishedError: the monitor has stopped.
        """
        self._declare(self._telemetry.counter, name, help, labelnames)
        return ThreadMetric(self._recorder, name)

    def gauge(self, name: str, help: str, labelnames: Sequence[str] = ()) -> ThreadMetric:
        """Declare (or get, if identical) a gauge. Raises: as `counter`."""
        self._declare(self._telemetry.gauge, name, help, labelnames)
        return ThreadMetric(self._recorder, name)

    def histogram(
        self,
        name: str,
        help: str,
        labelnames: Sequence[str] = (),
        buckets: Sequence[float] | None = None,
    ) -> ThreadMetric:
        """Declare (or get, if identical) a histogram. Raises: as `counter`."""
        self._declare(self._telemetry.histogram, name, help, labelnames, buckets)
        return ThreadMetric(self._recorder, name)


class ThreadAlerting:
    """`Alerting` for other threads: each call runs on the monitor's loop and waits for it."""

    def __init__(self, alerting: Alerting, token: trio.lowlevel.TrioToken) -> None:
        self._alerting = alerting
        self._token = token

    def add_rule(self, spec: Mapping[str, Any]) -> Rule:
        """See `Alerting.add_rule`. Raises: InvalidRule; trio.RunFinishedError (stopped)."""
        return trio.from_thread.run_sync(self._alerting.add_rule, spec, trio_token=self._token)

    def remove_rule(self, rule_id: str) -> None:
        """See `Alerting.remove_rule`. Raises: RuleNotFound; trio.RunFinishedError (stopped)."""
        trio.from_thread.run_sync(self._alerting.remove_rule, rule_id, trio_token=self._token)

    def rules(self) -> list[Rule]:
        """See `Alerting.rules`."""
        return trio.from_thread.run_sync(self._alerting.rules, trio_token=self._token)


class BackgroundMonitoring:
    """The monitor running in its own thread (what `start_monitoring_thread` returns).

    `telemetry` (a `ThreadTelemetry`) and `alerting` (a `ThreadAlerting`) may be used from any
    thread, `app` only through `run_sync` (it belongs to the monitor's loop). `stop()` (or leaving
    the `with` block) stops it gracefully and joins the thread; it is idempotent.
    """

    def __init__(self, app: App, *, max_pending: int = 100_000) -> None:
        self.app = app
        self._token: trio.lowlevel.TrioToken | None = None
        self._thread = MonitoringThread(
            self._main, telemetry=app.telemetry, max_pending=max_pending
        )
        self._stopped = False
        self.telemetry: ThreadTelemetry
        self.alerting: ThreadAlerting

    async def _main(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._token = trio.lowlevel.current_trio_token()
        await self.app.run(task_status=task_status)

    def start(self, timeout: float = 30.0) -> None:
        """Start the thread; returns once every actor has started.

        Raises:
            RuntimeError: the tree failed to start or was not ready within `timeout`.
        """
        recorder = self._thread.start(timeout)
        assert self._token is not None  # set before the tree started
        self.telemetry = ThreadTelemetry(self.app.telemetry, recorder, self._token)
        self.alerting = ThreadAlerting(Alerting(self.app), self._token)

    def run_sync(self, fn: Callable[..., R], *args: Any) -> R:
        """Call `fn(*args)` on the monitor's loop thread and return its result.

        Raises:
            whatever `fn` raises; trio.RunFinishedError: the monitor has stopped.
        """
        if self._token is None:
            raise trio.RunFinishedError("the monitor has not started")
        return trio.from_thread.run_sync(fn, *args, trio_token=self._token)

    async def _graceful(self) -> None:
        with trio.move_on_after(self.app.config.supervisor.shutdown_timeout):
            await self.app.stop()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop gracefully (readiness fails, deliveries drain), then join the thread.

        Raises:
            RuntimeError: the thread did not stop within `timeout`, or the tree had failed.
        """
        if self._stopped:
            return
        self._stopped = True
        if self._token is not None:
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run(self._graceful, trio_token=self._token)
        self._thread.stop(timeout)

    def __enter__(self) -> BackgroundMonitoring:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_monitoring_thread(
    config: ConfigSource = None,
    *,
    serve_http: bool = True,
    env: Mapping[str, str] | None = None,
    start_timeout: float = 30.0,
    max_pending: int = 100_000,
) -> BackgroundMonitoring:
    """Run the monitor in a background thread, for asyncio and synchronous hosts.

        with start_monitoring_thread("monitor.toml") as monitoring:
            monitoring.telemetry.record_api_request("/api/chat", "POST", 200, 0.12)

    Returns once every actor has started. At most `max_pending` recording calls wait to be
    applied (beyond that they are dropped and counted). Call `stop()` (or use `with`) before the
    process exits: the thread is a daemon, so an interpreter that exits without it skips the
    graceful stop. Logging is left as the host configured it (secrets are kept out of the HTTP
    client loggers' records, as in `initialize_monitoring`).

    Raises:
        supervisor.config.ConfigError: the configuration is invalid.
        actors.store.errors.DatabaseOpenError: the database cannot be opened.
        RuntimeError: the tree failed to start or was not ready within `start_timeout`.
    """
    resolved, path = resolve_config(config, env=env)
    app = App(resolved, path=path, env=env, serve_http=serve_http)
    monitoring = BackgroundMonitoring(app, max_pending=max_pending)
    monitoring.start(start_timeout)
    return monitoring

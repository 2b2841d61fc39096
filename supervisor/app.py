"""The composition root: a validated `Config` -> shared objects + the supervision tree.

`App(config)` creates what actors share (clock, metric store with the seed catalogue, health
state, agent registry, telemetry, SQLite database) and the root `Supervisor`:

    root (one_for_one; intensity, period and backoff from [supervisor]; started top-down,
          stopped bottom-up, so deliveries drain while the listeners still answer)
      metrics     the /metrics listener ([server] metrics_listen)
      web         the API, probes and status page ([server] listen), incl. POST /api/v1/reload
      notify      nested supervisor, one child `deliver:<name>` per enabled channel
      routing     groups, silences, inhibits; writes Notifications to the durable outbox
      rules       the rule evaluator (every enabled [[rules]] entry) -> AlertEvents -> routing
      checks      nested supervisor, one child `check:<name>` per [[checks]] entry

`App.apply(new_config)` is the hot reload: it compares the old and new frozen models of every
check, rule and channel by name and starts, stops or restarts only what changed; unchanged
actors keep running with their state (their start counters do not move). A change of [routing],
[[inhibit]], [[silences]] or [[maintenance]] restarts the routing actor (its notification log
and silences are persisted, so nothing is sent twice).

A channel whose required secret is empty gets no delivery actor; notifications routed to it are
skipped (not queued), as are those routed to a channel removed by a reload.

Tracing: when `[telemetry] otlp_endpoint` is set, the OpenTelemetry tracer goes to every actor
that makes spans (checks, rules, deliveries, the recording API), the API app runs inside the ASGI
instrumentation (one server span per request, probes excluded) and the HTTP notification channels'
clients are instrumented (one client span per request), all with the setup's own
`TracerProvider` (no global provider). Without an endpoint none of this is installed.

Embedding (docs/embedding.md): `initialize_monitoring(config)` runs the tree inside a trio host
(`async with`), `start_monitoring_thread(config)` in a background thread for asyncio and
synchronous hosts, with thread-safe recording.

`run_app()` is the process: SIGTERM/SIGINT stop gracefully (readiness fails at once, children
stop in reverse order within `[supervisor] shutdown_timeout`, exit 0; a second signal exits at
once with status 130); SIGHUP reloads the configuration file (an invalid file is rejected, the
running tree is left alone, and `config_reload_total{result="failure"}` counts it).
"""

from __future__ import annotations

import contextlib
import difflib
import os
import signal
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import trio
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.trace import TracerProvider
from quart import Blueprint, jsonify

from actors.checks.config import CheckBase, MetricCheckConfig
from actors.checks.factory import build_check_actor
from actors.clock import Clock, SystemClock
from actors.models import Alert, AlertEvent, Notification
from actors.notify.api import create_blueprint as notify_blueprint
from actors.notify.channels import Channel, build_channel, build_channels
from actors.notify.config import ChannelConfig
from actors.notify.delivery import DeliveryActor
from actors.notify.errors import ChannelSetupError
from actors.notify.outbox import Outbox
from actors.notify.testalert import run_test_alert
from actors.routing.actor import MuteStatus, RoutingActor
from actors.routing.api import create_blueprint as alerting_blueprint
from actors.routing.persist import SqliteRoutingStore
from actors.routing.silences import Silence
from actors.rules.actor import RulesActor
from actors.rules.evaluate import Rule
from actors.rules.persist import SqliteAlertStateStore
from actors.state import HealthState
from actors.store import Database
from actors.telemetry.agents import AgentRegistry
from actors.telemetry.api import create_blueprint as telemetry_blueprint
from actors.telemetry.catalog import declare_catalog
from actors.telemetry.embed import MonitoringThread, ThreadSafeRecorder
from actors.telemetry.otel import build_otel
from actors.telemetry.recording import Telemetry
from actors.telemetry.store import MetricStore
from actors.web.app import create_app
from actors.web.auth import json_error, require_token
from actors.web.metrics import build_registry, create_metrics_app
from actors.web.server import HttpServer
from supervisor.config import (
    Config,
    ConfigError,
    load_config,
    parse_config,
    resolve_config_path,
)
from supervisor.logging_setup import (
    SecretRedactor,
    configure_logging,
    install_redaction,
    logger_for,
)
from supervisor.runtime import (
    Backoff,
    ChildSpec,
    Strategy,
    Supervisor,
    SupervisorInfo,
    current_child,
)

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

R = TypeVar("R")
RELOAD_METRIC = "config_reload_total"
MIN_RETENTION = 3600.0
"""The metric store keeps at least this much history (seconds): the health document reads the
last minute, and a rule added at runtime with a window up to an hour finds its samples."""
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


@dataclass(frozen=True, slots=True)
class ReloadReport:
    """What a reload did: actor ids started, stopped and restarted; keys needing a restart."""

    started: tuple[str, ...] = ()
    stopped: tuple[str, ...] = ()
    restarted: tuple[str, ...] = ()
    rules_added: tuple[str, ...] = ()
    rules_removed: tuple[str, ...] = ()
    rules_changed: tuple[str, ...] = ()
    needs_restart: tuple[str, ...] = ()
    """Top-level sections that changed but only take effect after a process restart, and
    "metric retention" when a new window is longer than the metric store keeps."""
    errors: tuple[str, ...] = field(default=())

    @property
    def changed(self) -> bool:
        """Whether anything was applied."""
        return bool(
            self.started
            or self.stopped
            or self.restarted
            or self.rules_added
            or self.rules_removed
            or self.rules_changed
        )


def metric_retention(config: Config) -> float:
    """Seconds of samples the metric store must keep for `config`: the longest window of any
    rule (enabled or not: a reload may enable it) or `metric` check, and at least
    `MIN_RETENTION`."""
    windows = [rule.condition.window for rule in config.rules]
    windows += [
        check.condition.window for check in config.checks if isinstance(check, MetricCheckConfig)
    ]
    return max([MIN_RETENTION, *windows])


def _format_seconds(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


# Kubernetes probes hit these every few seconds: a span each would drown the useful ones.
_UNTRACED_ROUTES = "/api/health/live,/api/health/ready"


def _traced_asgi(app: Any, tracer_provider: TracerProvider) -> Any:
    """`app` inside the OpenTelemetry ASGI middleware: one server span per request (probes
    excluded), tracing with `tracer_provider` only (no global provider is read or set)."""
    return OpenTelemetryMiddleware(
        app,
        excluded_urls=_UNTRACED_ROUTES,
        tracer_provider=tracer_provider,
        meter_provider=NoOpMeterProvider(),
        exclude_spans=["receive", "send"],
    )


def _check_id(name: str) -> str:
    return f"check:{name}"


def _deliver_id(name: str) -> str:
    return f"deliver:{name}"


async def _stop_requested() -> None:
    """Shutdown trigger of the HTTP servers: their supervisor asked them to stop."""
    await current_child().wait_stop_requested()


class _CurrentRouting:
    """The silence API of whichever routing actor runs now (a reload may replace it)."""

    def __init__(self, app: App) -> None:
        self._app = app

    def silences(self) -> list[Silence]:
        return self._app.routing.silences()

    def get_silence(self, silence_id: str) -> Silence:
        return self._app.routing.get_silence(silence_id)

    async def add_silence(
        self,
        *,
        matchers: Sequence[str],
        ends_at: float,
        starts_at: float | None = None,
        created_by: str = "",
        comment: str = "",
    ) -> Silence:
        return await self._app.routing.add_silence(
            matchers=matchers,
            ends_at=ends_at,
            starts_at=starts_at,
            created_by=created_by,
            comment=comment,
        )

    async def expire_silence(self, silence_id: str) -> Silence:
        return await self._app.routing.expire_silence(silence_id)

    def mute_status(self, alert: Alert) -> MuteStatus:
        return self._app.routing.mute_status(alert)


class _EnabledChannels:
    """The outbox as routing sees it: notifications for a channel without a delivery actor
    (disabled: empty secret, or removed by a reload) are skipped instead of queued forever."""

    def __init__(self, app: App) -> None:
        self._app = app

    async def enqueue(self, notification: Notification) -> bool:
        config = self._app.config
        channel = config.channels.get(notification.channel)
        if channel is None or channel.disabled_reason() is not None:
            self._app.metrics.record(
                "notifications_total", 1, {"channel": notification.channel, "result": "skipped"}
            )
            return False
        return await self._app.outbox.enqueue(notification)


# Sections applied live by `App.apply` (the rest need a process restart).
_LIVE_SECTIONS = frozenset(
    {"checks", "rules", "log", "channels", "routing", "inhibit", "silences", "maintenance"}
)
_ROUTING_SECTIONS = ("routing", "inhibit", "silences", "maintenance")


class App:
    """Everything one configuration runs, wired together. See the module docstring.

    Args:
        config: the validated configuration.
        path: the file it came from (SIGHUP and reload read it again); None: no reload.
        clock: the clock seam (default: system time).
        env: the environment used to expand `${VAR}` on reload (default: `os.environ`).
        database: an open database (default: opened at `[storage] path`).
        serve_http: run the API and /metrics listeners (tests of the tree may leave them out).

    Raises:
        actors.store.errors.DatabaseOpenError: the database cannot be opened.
    """

    def __init__(
        self,
        config: Config,
        *,
        path: Path | None = None,
        clock: Clock | None = None,
        env: Mapping[str, str] | None = None,
        database: Database | None = None,
        serve_http: bool = True,
        redactor: SecretRedactor | None = None,
    ) -> None:
        self.config = config
        # The configured secrets, kept out of every log line (see `run`).
        self.redactor = redactor if redactor is not None else SecretRedactor()
        self.redactor.add(config.secret_values())
        self.path = path
        self.env: Mapping[str, str] = os.environ if env is None else env
        self.clock: Clock = clock or SystemClock()
        self.log = logger_for("app")
        limits = config.limits
        self.metrics = MetricStore(
            clock=self.clock,
            retention=metric_retention(config),
            max_points=limits.max_points_per_series,
            max_series=limits.max_series_per_metric,
            max_total_series=limits.max_series,
            max_total_points=limits.max_points,
        )
        declare_catalog(self.metrics, config.metrics)
        self.metrics.declare(
            RELOAD_METRIC,
            "counter",
            "Configuration reloads by result (success, failure).",
            ("result",),
        )
        self.health = HealthState(
            checks={check.name: check.critical for check in config.checks},
            recorder=self.metrics,
            clock=self.clock,
        )
        self.agents = AgentRegistry()
        self.otel = build_otel(
            config.telemetry, store=self.metrics, environ=self.env, logger=logger_for("otel")
        )
        self.tracer = self.otel.tracer
        self.telemetry = Telemetry(store=self.metrics, agents=self.agents, tracer=self.tracer)
        self.database = database if database is not None else Database(config.storage.path)
        self.outbox = Outbox(database=self.database, clock=self.clock, metrics=self.metrics)
        self._enabled_outbox = _EnabledChannels(self)
        self.alerts_send, self._alerts_receive = trio.open_memory_channel[AlertEvent](1000)
        self.routing_store = SqliteRoutingStore(database=self.database)
        self.routing = self._routing_actor(config)
        self.rules = RulesActor(
            rules=[rule for rule in config.rules if rule.enabled],
            store=self.metrics,
            sink=self.alerts_send,
            clock=self.clock,
            state=SqliteAlertStateStore(database=self.database),
            tracer=self.tracer,
            logger=logger_for("rules"),
        )
        self._reload_lock = trio.Lock()
        settings = config.supervisor
        self._worker_shutdown = min(5.0, settings.shutdown_timeout)
        self.notify = self._supervisor(
            "notify",
            [self._delivery_spec(name, ch) for name, ch in config.enabled_channels().items()],
        )
        self.checks = self._supervisor(
            "checks", [self._check_spec(check) for check in config.checks]
        )
        self.api_channels: dict[str, Channel] = build_channels(
            config.channels,
            clock=self.clock,
            logger=logger_for("notify"),
            external_url=config.server.external_url,
            tracer_provider=self.otel.tracer_provider,
        )
        self.last_reload_errors: tuple[str, ...] = ()
        # Children stop in reverse order. The listeners start first and stop last: while the
        # deliveries drain, /api/health/ready still answers (503: draining) and /metrics is
        # still scraped, instead of refusing connections. The checks start last and stop
        # first: a check of the monitor's own API finds it up, and has closed its kept-alive
        # connection before the server stops (the server also closes idle connections at once).
        children = [
            *(
                [ChildSpec("otlp", self.otel.metrics.run, shutdown=self._worker_shutdown)]
                if self.otel.metrics is not None
                else []
            ),
            *(self._web_specs() if serve_http else []),
            ChildSpec.supervisor(self.notify),
            ChildSpec("routing", self.routing.run, shutdown=self._worker_shutdown),
            ChildSpec("rules", self.rules.run, shutdown=self._worker_shutdown),
            ChildSpec.supervisor(self.checks),
        ]
        self.root = self._supervisor("root", children)

    # -- building ------------------------------------------------------------------------------
    def _supervisor(self, name: str, children: Sequence[ChildSpec]) -> Supervisor:
        settings = self.config.supervisor
        return Supervisor(
            children,
            name=name,
            strategy=Strategy.ONE_FOR_ONE,
            intensity=settings.intensity,
            period=settings.period,
            backoff=Backoff(
                initial=settings.backoff_initial,
                base=settings.backoff_initial,
                maximum=settings.backoff_max,
            ),
        )

    def tree(self) -> SupervisorInfo | None:
        """The root supervisor's snapshot (None before it runs)."""
        return self.root.tree() if self.root.running else None

    def _check_spec(self, check: CheckBase) -> ChildSpec:
        actor = build_check_actor(
            check,
            health=self.health,
            clock=self.clock,
            store=self.metrics,
            agents=self.agents,
            tree=self.tree,
            tracer=self.tracer,
        )
        return ChildSpec(_check_id(check.name), actor.run, shutdown=self._worker_shutdown)

    def _routing_actor(self, config: Config) -> RoutingActor:
        return RoutingActor(
            config=config.routing,
            events=self._alerts_receive,
            outbox=self._enabled_outbox,
            clock=self.clock,
            inhibit=config.inhibit,
            silences=config.silences,
            maintenance=config.maintenance,
            store=self.routing_store,
            health=self.health,
            logger=logger_for("routing"),
        )

    def _web_specs(self) -> list[ChildSpec]:
        config = self.config
        security = config.security
        api = create_app(
            health=self.health,
            blueprints=[
                telemetry_blueprint(telemetry=self.telemetry, security=security, clock=self.clock),
                alerting_blueprint(
                    rules=self.rules,
                    routing=_CurrentRouting(self),
                    clock=self.clock,
                    security=security,
                ),
                notify_blueprint(
                    channels=self.api_channels,
                    outbox=self.outbox,
                    clock=self.clock,
                    api_token=security.api_token,
                    logger=logger_for("notify.api"),
                ),
                self._reload_blueprint(),
            ],
            store=self.metrics,
            tree=self.tree,
            allow_from=security.allow_from,
            clock=self.clock,
            max_body_bytes=security.max_body_bytes,
        )
        if self.otel.tracer_provider is not None:
            api = _traced_asgi(api, self.otel.tracer_provider)
        registry = build_registry(collectors=[self.metrics.collector()], tree=self.tree)
        metrics_app = create_metrics_app(
            registry=registry, token=security.metrics_token, allow_from=security.allow_from
        )
        self.api_server = HttpServer(
            app=api,
            listen=config.server.listen,
            tls_cert=config.server.tls_cert,
            tls_key=config.server.tls_key,
            shutdown_trigger=_stop_requested,
            graceful_timeout=self._worker_shutdown,
            name="api",
            logger=logger_for("web"),
        )
        self.metrics_server = HttpServer(
            app=metrics_app,
            listen=config.server.metrics_listen,
            tls_cert=config.server.tls_cert,
            tls_key=config.server.tls_key,
            shutdown_trigger=_stop_requested,
            graceful_timeout=self._worker_shutdown,
            name="metrics",
            logger=logger_for("metrics"),
        )
        return [
            ChildSpec("metrics", self.metrics_server.run, shutdown=self._worker_shutdown),
            ChildSpec("web", self.api_server.run, shutdown=self._worker_shutdown),
        ]

    def _reload_blueprint(self) -> Blueprint:
        bp = Blueprint("reload", __name__)

        @bp.post("/api/v1/reload")
        @require_token(self.config.security.api_token)
        async def reload() -> Any:
            report = await self.reload()
            if report is None:
                return json_error(
                    422,
                    "configuration rejected; still running the previous one",
                    errors=list(self.last_reload_errors),
                )
            return jsonify(
                {
                    "result": "applied",
                    "started": list(report.started),
                    "stopped": list(report.stopped),
                    "restarted": list(report.restarted),
                    "rulesAdded": list(report.rules_added),
                    "rulesRemoved": list(report.rules_removed),
                    "rulesChanged": list(report.rules_changed),
                    "needsRestart": list(report.needs_restart),
                    "errors": list(report.errors),
                }
            )

        return bp

    def _delivery_spec(self, name: str, channel: ChannelConfig) -> ChildSpec:
        actor = DeliveryActor(
            channel=build_channel(
                name,
                channel,
                clock=self.clock,
                logger=logger_for(f"notify.{name}"),
                external_url=self.config.server.external_url,
                database=self.database,
                tracer_provider=self.otel.tracer_provider,
            ),
            outbox=self.outbox,
            clock=self.clock,
            logger=logger_for(f"notify.{name}"),
            metrics=self.metrics,
            tracer=self.tracer,
        )
        return ChildSpec(_deliver_id(name), actor.run, shutdown=self._worker_shutdown)

    # -- running -------------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the tree; started once every actor has started. Returns after `stop()`.

        Raises:
            supervisor.runtime.RestartIntensityExceeded: the root gave up.
        """
        # The HTTP client libraries log each request's full URL (httpx at INFO); a channel's URL
        # is a secret. A host that embeds the monitor keeps its logging configuration, so
        # rather than changing levels, the configured secrets are cut out of those records,
        # for as long as this monitor runs.
        remove_redaction = install_redaction(self.redactor)
        try:
            await self.root.run(task_status=task_status)
        finally:
            remove_redaction()
            if self.otel.enabled:
                with trio.move_on_after(5, shield=True):
                    await trio.to_thread.run_sync(self.otel.shutdown, abandon_on_cancel=True)
            self.database.close()

    async def stop(self) -> None:
        """Graceful stop: readiness fails at once, then children stop in reverse order."""
        self.health.begin_draining()
        await self.root.stop()

    # -- reload --------------------------------------------------------------------------------
    async def reload(self) -> ReloadReport | None:
        """Read `path` again; apply it if valid. Returns None (and logs every error) if not.

        Never raises for a bad file: the running tree is left as it is.
        """
        if self.path is None:
            self.log.error("reload: no configuration file to read")
            return None
        try:
            new = load_config(self.path, env=self.env)
        except ConfigError as exc:
            self.last_reload_errors = tuple(str(issue) for issue in exc.issues)
            for issue in exc.issues:
                self.log.error("configuration reload rejected: %s", issue)
            self.log.error(
                "configuration reload rejected; still running the previous configuration",
                extra={"errors": len(exc.issues)},
            )
            self.metrics.record(RELOAD_METRIC, 1, {"result": "failure"})
            return None
        return await self.apply(new)

    async def apply(self, new: Config) -> ReloadReport:
        """Apply the difference between the running configuration and `new`.

        Checks: added ones start, removed ones stop, changed ones (any key) restart; unchanged
        ones are not touched. Rules: added/changed ones are (re)installed in the rule evaluator,
        removed ones retired; unchanged ones keep their alert state. `[log]` applies at once;
        other sections that changed are reported in `needs_restart` (and logged).
        """
        async with self._reload_lock:
            report = await self._apply(new)
        result = "failure" if report.errors else "success"
        self.metrics.record(RELOAD_METRIC, 1, {"result": result})
        self.log.info(
            "configuration reloaded",
            extra={
                "started": list(report.started),
                "stopped": list(report.stopped),
                "restarted": list(report.restarted),
                "rules_added": list(report.rules_added),
                "rules_removed": list(report.rules_removed),
                "rules_changed": list(report.rules_changed),
            },
        )
        for section in report.needs_restart:
            if section in Config.model_fields:  # the others were explained when found
                self.log.warning("[%s] changed: it takes effect after a restart", section)
        return report

    async def _apply(self, new: Config) -> ReloadReport:
        old = self.config
        self.redactor.add(new.secret_values())
        errors: list[str] = []
        old_checks = {check.name: check for check in old.checks}
        new_checks = {check.name: check for check in new.checks}
        stopped = [name for name in old_checks if name not in new_checks]
        started = [name for name in new_checks if name not in old_checks]
        restarted = [
            name
            for name in new_checks
            if name in old_checks and old_checks[name] != new_checks[name]
        ]
        self.health.configure({check.name: check.critical for check in new.checks})
        for name in stopped:
            await self.checks.delete_child(_check_id(name))
        for name in restarted:
            try:
                await self.checks.restart_child(_check_id(name), self._check_spec(new_checks[name]))
            except Exception as exc:  # a probe that cannot start: reported, tree keeps running
                errors.append(f"check {name}: {exc}")
        for name in started:
            try:
                await self.checks.start_child(self._check_spec(new_checks[name]))
            except Exception as exc:
                errors.append(f"check {name}: {exc}")

        old_rules = {rule.id: rule for rule in old.rules if rule.enabled}
        new_rules = {rule.id: rule for rule in new.rules if rule.enabled}
        rules_removed = [rid for rid in old_rules if rid not in new_rules]
        rules_added = [rid for rid in new_rules if rid not in old_rules]
        rules_changed = [
            rid for rid in new_rules if rid in old_rules and old_rules[rid] != new_rules[rid]
        ]
        for rid in rules_removed:
            self.rules.remove_rule(rid)
        for rid in (*rules_added, *rules_changed):
            self.rules.add_rule(new_rules[rid])

        old_channels = old.enabled_channels()
        new_channels = new.enabled_channels()
        removed_channels = [n for n in old_channels if n not in new_channels]
        added_channels = [n for n in new_channels if n not in old_channels]
        changed_channels = [
            n for n in new_channels if old_channels.get(n, new_channels[n]) != new_channels[n]
        ]
        # Routing reads `self.config` to skip disabled channels: switch before stopping them.
        self.config = new
        for name in (*removed_channels, *changed_channels):
            old_channel = self.api_channels.pop(name, None)
            if old_channel is not None:
                await old_channel.aclose()
        for name in (*added_channels, *changed_channels):
            try:
                self.api_channels[name] = build_channel(
                    name,
                    new_channels[name],
                    clock=self.clock,
                    logger=logger_for("notify"),
                    external_url=new.server.external_url,
                    tracer_provider=self.otel.tracer_provider,
                )
            except ChannelSetupError as exc:
                errors.append(f"channel {name}: {exc}")
        for name in removed_channels:
            await self.notify.delete_child(_deliver_id(name))
        for name in changed_channels:
            try:
                spec = self._delivery_spec(name, new_channels[name])
                await self.notify.restart_child(_deliver_id(name), spec)
            except Exception as exc:
                errors.append(f"channel {name}: {exc}")
        for name in added_channels:
            try:
                await self.notify.start_child(self._delivery_spec(name, new_channels[name]))
            except Exception as exc:
                errors.append(f"channel {name}: {exc}")
        routing_changed = any(
            getattr(old, section) != getattr(new, section) for section in _ROUTING_SECTIONS
        )
        if routing_changed:
            self.routing = self._routing_actor(new)
            spec = ChildSpec("routing", self.routing.run, shutdown=self._worker_shutdown)
            await self.root.restart_child("routing", spec)

        if new.log != old.log:
            configure_logging(format=new.log.format, level=new.log.level, redactor=self.redactor)
        needs_restart = tuple(
            name
            for name in Config.model_fields
            if name not in _LIVE_SECTIONS and getattr(old, name) != getattr(new, name)
        )
        # The store sizes its rings when a metric is declared: a longer window takes a restart.
        retention = metric_retention(new)
        if retention > self.metrics.retention:
            needs_restart += ("metric retention",)
            self.log.warning(
                "a rule or metric check window of %s is longer than the metric store keeps (%s):"
                " it reads at most %s of samples until the process restarts",
                _format_seconds(retention),
                _format_seconds(self.metrics.retention),
                _format_seconds(self.metrics.retention),
            )
        for error in errors:
            self.log.error("reload: %s", error)
        return ReloadReport(
            started=(
                *(_check_id(name) for name in started),
                *(_deliver_id(name) for name in added_channels),
            ),
            stopped=(
                *(_check_id(name) for name in stopped),
                *(_deliver_id(name) for name in removed_channels),
            ),
            restarted=(
                *(_check_id(name) for name in restarted),
                *(_deliver_id(name) for name in changed_channels),
                *(("routing",) if routing_changed else ()),
            ),
            rules_added=tuple(rules_added),
            rules_removed=tuple(rules_removed),
            rules_changed=tuple(rules_changed),
            needs_restart=needs_restart,
            errors=tuple(errors),
        )


# -- the process ---------------------------------------------------------------------------------
async def serve(
    app: App,
    *,
    signals: Sequence[int] = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP),
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> int:
    """Run `app` until a stop signal; returns the exit status (0 graceful, 130 forced).

    Raises:
        supervisor.runtime.RestartIntensityExceeded: the root supervisor gave up.
    """
    log = logger_for("main")
    status = EXIT_OK
    timeout = app.config.supervisor.shutdown_timeout

    async with trio.open_nursery() as nursery:
        with trio.open_signal_receiver(*signals) as received:
            await nursery.start(app.run)
            log.info("started", extra={"checks": len(app.config.checks)})
            task_status.started()

            async def graceful() -> None:
                with trio.move_on_after(timeout) as scope:
                    await app.stop()
                if scope.cancelled_caught:
                    log.warning("graceful stop took longer than %gs; cancelling", timeout)
                nursery.cancel_scope.cancel()

            stopping = False
            async for signum in received:
                if signum == signal.SIGHUP:
                    log.info("SIGHUP: reloading the configuration")
                    nursery.start_soon(app.reload)
                elif not stopping:
                    stopping = True
                    app.health.begin_draining()
                    log.info("%s: stopping gracefully", signal.Signals(signum).name)
                    nursery.start_soon(graceful)
                else:
                    log.warning("%s again: stopping now", signal.Signals(signum).name)
                    status = EXIT_INTERRUPTED
                    nursery.cancel_scope.cancel()
                    break
    log.info("stopped", extra={"status": status})
    return status


def run_app(
    config: Config,
    *,
    path: Path | None,
    env: Mapping[str, str] | None = None,
    redactor: SecretRedactor | None = None,
) -> int:
    """Run the supervisor process on `config` until SIGTERM/SIGINT; return the exit status.
    `redactor`: the one the log formatter uses (the app adds the secrets of each reload).

    Never raises: a failure is logged on one line and gives status 1.
    """
    log = logger_for("main")
    try:
        app = App(config, path=path, env=env, redactor=redactor)
        return trio.run(serve, app)
    except Exception as exc:
        for leaf in _leaves(exc):
            log.error("stopped by an error: %s: %s", type(leaf).__name__, leaf)
        return EXIT_ERROR


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups, or `exc` itself."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


# -- test-alert ----------------------------------------------------------------------------------
class TestAlertError(Exception):
    """`test-alert` could not send; `exit_status` is what the command exits with."""

    __test__ = False  # not a pytest test class

    def __init__(
        self, message: str, exit_status: int = EXIT_ERROR, delivered: Sequence[str] = ()
    ) -> None:
        super().__init__(message)
        self.exit_status = exit_status
        self.delivered = tuple(delivered)


def send_test_alert(config: Config, *, channel: str | None = None) -> list[str]:
    """Send one test notification on `channel` (default: every enabled channel), once each,
    through notify's `run_test_alert` (directly, not through the outbox).

    Returns one line per channel saying it was delivered.

    Raises:
        TestAlertError: unknown channel (exit 2, with a "did you mean"), disabled channel, no
            enabled channel, or a delivery failed (exit 1; the reason never holds a secret).
    """
    disabled = config.disabled_channels()
    if channel is not None:
        if channel not in config.channels:
            close = difflib.get_close_matches(channel, list(config.channels), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            known = ", ".join(config.channels) or "none"
            raise TestAlertError(f"unknown channel '{channel}' (defined: {known}){hint}", 2)
        if channel in disabled:
            raise TestAlertError(f"channel '{channel}' is disabled: {disabled[channel]}")
    elif len(disabled) == len(config.channels):
        raise TestAlertError("no enabled channel to send to")
    try:
        results = trio.run(
            partial(
                run_test_alert,
                config.channels,
                channel=channel,
                logger=logger_for("notify"),
                external_url=config.server.external_url,
            )
        )
    except ChannelSetupError as exc:  # e.g. an email channel whose TLS files cannot be read
        raise TestAlertError(str(exc)) from None
    lines: list[str] = []
    failures: list[str] = []
    for name, result in results.items():
        kind = config.channels[name].kind
        if result.ok:
            lines.append(f"{name}: test notification delivered ({kind})")
        else:
            failures.append(f"{name}: {result.result}: {result.detail}")
    if failures:
        raise TestAlertError("; ".join(failures), delivered=lines)
    return lines


# -- embedding -----------------------------------------------------------------------------------
ConfigSource = Config | str | os.PathLike[str] | None
"""A `Config`, a file path (`str` or `Path`), a TOML document (a `str` holding a newline, `=` or
starting with `[`), or None (./config.toml if present, else the packaged default)."""


def _looks_like_toml(text: str) -> bool:
    return "\n" in text or "=" in text or text.lstrip().startswith("[")


def resolve_config(
    config: ConfigSource, *, env: Mapping[str, str] | None = None
) -> tuple[Config, Path | None]:
    """The validated configuration of `config` (see `ConfigSource`) and the file it came from.

    Raises:
        supervisor.config.ConfigError: the configuration is invalid or the file cannot be read.
    """
    if isinstance(config, Config):
        return config, None
    if config is None:
        path = resolve_config_path(None)
        return load_config(path, env=env), path
    if isinstance(config, str) and _looks_like_toml(config):
        return parse_config(config, file="<config>", env=env), None
    path = Path(config)
    return load_config(path, env=env), path


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
                _format_seconds(rule.condition.window),
                _format_seconds(retention),
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


class ThreadMetric:
    """A custom metric recorded from any thread (fire-and-forget, like `ThreadTelemetry`)."""

    __slots__ = ("_recorder", "name")

    def __init__(self, recorder: ThreadSafeRecorder, name: str) -> None:
        self._recorder = recorder
        self.name = name

    def add(self, value: float = 1.0, labels: Mapping[str, str] | None = None) -> None:
        """Counter: add `value`."""
        self._recorder.record(self.name, value, labels)

    def set(self, value: float, labels: Mapping[str, str] | None = None) -> None:
        """Gauge: set `value`."""
        self._recorder.record(self.name, value, labels)

    def observe(self, value: float, labels: Mapping[str, str] | None = None) -> None:
        """Histogram: observe `value`."""
        self._recorder.record(self.name, value, labels)


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

"""The composition root: a validated `Config` -> shared objects + the supervision tree.

`App(config)` creates what actors share (clock, metric store with the seed catalogue, health
state, agent registry, telemetry, SQLite database, the checks' TLS client contexts) and the root
`Supervisor`:

    root (one_for_one; intensity, period and backoff from [supervisor]; started top-down,
          stopped bottom-up, so deliveries drain while the listeners still answer)
      metrics     the /metrics listener ([server] metrics_listen)
      web         the API, probes and status page ([server] listen), incl. POST /api/v1/reload
      notify      nested supervisor, one child `deliver:<name>` per enabled channel
      routing     groups, silences, inhibits; writes Notifications to the durable outbox
      rules       the rule evaluator (every enabled [[rules]] entry) -> AlertEvents -> routing
                  (through the `alerts` Mailbox: blocking, never drops, outlives restarts)
      checks      nested supervisor, one child `check:<name>` per [[checks]] entry

`App.run` runs the tree until `App.stop` (graceful: readiness fails at once, then children stop
in reverse order). `App.reload` / `App.apply` are the hot reload: `supervisor.app.reload` works
out what changed (checks, rules and channels compared by name) and `apply` starts, stops or
restarts only that; unchanged actors keep running with their state (their start counters do
not move). A change of [routing], [[inhibit]], [[silences]] or [[maintenance]] restarts the
routing actor (its notification log and silences are persisted, so nothing is sent twice).

A channel whose required secret is empty gets no delivery actor; notifications routed to it are
skipped (not queued), as are those routed to a channel removed by a reload
(`supervisor.app.views`).

Tracing: when `[telemetry] otlp_endpoint` is set, the OpenTelemetry tracer goes to every actor
that makes spans (checks, rules, deliveries, the recording API), the API app runs inside the ASGI
instrumentation (one server span per request, probes excluded) and the HTTP notification channels'
clients are instrumented (one client span per request), all with the setup's own
`TracerProvider` (no global provider). Without an endpoint none of this is installed.

The metric store keeps `metric_retention(config)` seconds of samples: the longest rule or metric
check window, and at least `MIN_RETENTION`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import trio
from opentelemetry.trace import TracerProvider

from actors.checks.config import AgentsCheckConfig, CheckBase, MetricCheckConfig
from actors.checks.factory import build_check_actor
from actors.checks.tls import ClientContexts
from actors.clock import Clock, SystemClock
from actors.models import Alert, AlertEvent
from actors.notify.api import create_blueprint as notify_blueprint
from actors.notify.channels import (
    Channel,
    ChannelConfig,
    ChannelContext,
    build_channel,
)
from actors.notify.delivery import DeliveryActor
from actors.notify.outbox import Outbox
from actors.routing.actor import MuteStatus, RoutingActor
from actors.routing.api import create_blueprint as alerting_blueprint
from actors.routing.persist import SqliteRoutingStore
from actors.routing.silencing import Silences
from actors.rules.actor import RulesActor
from actors.rules.persist import SqliteAlertStateStore
from actors.state import HealthState
from actors.store import Database
from actors.telemetry.agents import AgentRegistry
from actors.telemetry.anonymize import Anonymizer
from actors.telemetry.api import create_blueprint as telemetry_blueprint
from actors.telemetry.catalog import declare_catalog
from actors.telemetry.otel import build_otel
from actors.telemetry.recording import Telemetry
from actors.telemetry.store import MetricStore
from actors.web.app import create_app
from actors.web.metrics import build_registry, create_metrics_app
from actors.web.server import HttpServer
from supervisor.app.reload import RELOAD_METRIC, ReloadReport, diff_configs, reload_blueprint
from supervisor.app.views import EnabledChannels
from supervisor.config import Config, ConfigError, load_config
from supervisor.logging_setup import (
    SecretRedactor,
    configure_logging,
    install_redaction,
    logger_for,
)
from supervisor.runtime import (
    Backoff,
    ChildSpec,
    Mailbox,
    Overflow,
    Strategy,
    Supervisor,
    SupervisorInfo,
    current_child,
)

__all__ = ["MIN_RETENTION", "App", "format_seconds", "metric_retention"]

MIN_RETENTION = 3600.0
"""The metric store keeps at least this much history (seconds): the health document reads the
last minute, and a rule added at runtime with a window up to an hour finds its samples."""


def metric_retention(config: Config) -> float:
    """Seconds of samples the metric store must keep for `config`: the longest window of any
    rule (enabled or not: a reload may enable it) or `metric` check, and at least
    `MIN_RETENTION`."""
    windows = [rule.condition.window for rule in config.rules]
    windows += [
        check.condition.window for check in config.checks if isinstance(check, MetricCheckConfig)
    ]
    return max([MIN_RETENTION, *windows])


def format_seconds(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


# Kubernetes probes hit these every few seconds: a span each would drown the useful ones.
_UNTRACED_ROUTES = "/api/health/live,/api/health/ready"


def _traced_asgi(app: Any, tracer_provider: TracerProvider) -> Any:
    """`app` inside the OpenTelemetry ASGI middleware: one server span per request (probes
    excluded), tracing with `tracer_provider` only (no global provider is read or set).
    Imported here: the instrumentation costs an import only when tracing is configured."""
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from opentelemetry.metrics import NoOpMeterProvider

    return OpenTelemetryMiddleware(
        app,
        excluded_urls=_UNTRACED_ROUTES,
        tracer_provider=tracer_provider,
        meter_provider=NoOpMeterProvider(),
        exclude_spans=["receive", "send"],
    )


def _check_id(name: str) -> str:
    return f"check:{name}"


def _expected_agents(config: Config) -> list[str]:
    """Every agent an `agents` check expects (listed as missing until it reports)."""
    return [
        agent
        for check in config.checks
        if isinstance(check, AgentsCheckConfig)
        for agent in check.expected
    ]


def _deliver_id(name: str) -> str:
    return f"deliver:{name}"


async def _stop_requested() -> None:
    """Shutdown trigger of the HTTP servers: their supervisor asked them to stop."""
    await current_child().wait_stop_requested()


class App:
    """Everything one configuration runs, wired together. See the module docstring.

    Args:
        config: the validated configuration.
        path: the file it came from (SIGHUP and reload read it again); None: no reload.
        clock: the clock seam (default: system time).
        env: the environment used to expand `${VAR}` on reload (default: `os.environ`).
        database: an open database (default: opened at `[storage] path`).
        serve_http: run the API and /metrics listeners (tests of the tree may leave them out).
        redactor: collects the configured secrets to cut out of log records (default: a new one).
        tls: the TLS client contexts every check shares, also those a reload starts (default:
            a new `ClientContexts`, system CA store; one context per verification mode).

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
        tls: ClientContexts | None = None,
    ) -> None:
        self.config = config
        # The configured secrets, kept out of every log line (see `run`).
        self.redactor = redactor if redactor is not None else SecretRedactor()
        self.redactor.add(config.secret_values())
        self.path = path
        self.env: Mapping[str, str] = os.environ if env is None else env
        self.clock: Clock = clock or SystemClock()
        # One context per verification mode for every check (each holds a copy of the CA store).
        self.tls = tls if tls is not None else ClientContexts()
        self.log = logger_for("app")
        limits = config.limits
        self.metrics = MetricStore(
            clock=self.clock,
            retention=metric_retention(config),
            max_points=limits.max_points_per_series,
            max_series=limits.max_series_per_metric,
            max_total_series=limits.max_series,
            max_total_points=limits.max_points,
            # [security] anonymize_labels: hashed where every sample enters the store.
            anonymizer=Anonymizer(
                config.security.anonymize_labels,
                config.security.anonymize_key.get_secret_value(),
            ),
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
        self.agents.expect(_expected_agents(config))
        self.otel = build_otel(
            config.telemetry, store=self.metrics, environ=self.env, logger=logger_for("otel")
        )
        self.tracer = self.otel.tracer
        self.telemetry = Telemetry(store=self.metrics, agents=self.agents, tracer=self.tracer)
        self.database = database if database is not None else Database(config.storage.path)
        self.outbox = Outbox(database=self.database, clock=self.clock, metrics=self.metrics)
        self._enabled_outbox = EnabledChannels(self)
        # rules -> routing; owned here, so it outlives restarts of either side. Alerts are never
        # dropped: a full mailbox makes the evaluator wait.
        self.alerts: Mailbox[AlertEvent] = Mailbox("alerts", capacity=1000, overflow=Overflow.BLOCK)
        self.routing_store = SqliteRoutingStore(database=self.database)
        # One set of silences for the process: the routing actor mutes with it, the API edits
        # it; it outlives the routing actor's restarts and reloads.
        self.silences = Silences(
            store=self.routing_store, clock=self.clock, configured=config.silences
        )
        self.routing = self._routing_actor(config)
        self.rules = RulesActor(
            rules=[rule for rule in config.rules if rule.enabled],
            store=self.metrics,
            sink=self.alerts,
            clock=self.clock,
            state=SqliteAlertStateStore(database=self.database),
            tracer=self.tracer,
            logger=logger_for("rules"),
        )
        self._reload_lock = trio.Lock()
        settings = config.supervisor
        self._worker_shutdown = min(5.0, settings.shutdown_timeout)
        # Each enabled channel is built once: its delivery actor and POST /api/test-alert share it.
        for name, reason in config.disabled_channels().items():
            self.log.warning(
                "channel %r (%s) is disabled: %s", name, config.channels[name].kind, reason
            )
        self.channels: dict[str, Channel] = {
            name: self._build_channel(name, channel, config)
            for name, channel in config.enabled_channels().items()
        }
        self.notify = self._supervisor(
            "notify", [self._delivery_spec(name) for name in self.channels]
        )
        self.checks = self._supervisor(
            "checks", [self._check_spec(check) for check in config.checks]
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
            tls=self.tls,
        )
        return ChildSpec(_check_id(check.name), actor.run, shutdown=self._worker_shutdown)

    def _routing_actor(self, config: Config) -> RoutingActor:
        return RoutingActor(
            config=config.routing,
            events=self.alerts,
            outbox=self._enabled_outbox,
            clock=self.clock,
            inhibit=config.inhibit,
            silences=self.silences,
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
                    routing=self,
                    silences=self.silences,
                    clock=self.clock,
                    security=security,
                ),
                notify_blueprint(
                    channels=self.channels,
                    outbox=self.outbox,
                    clock=self.clock,
                    api_token=security.api_token,
                    logger=logger_for("notify.api"),
                ),
                reload_blueprint(
                    reload_config=self.reload,
                    rejected=lambda: self.last_reload_errors,
                    api_token=security.api_token,
                ),
            ],
            store=self.metrics,
            tree=self.tree,
            allow_from=security.allow_from,
            clock=self.clock,
            max_body_bytes=security.max_body_bytes,
        )
        if self.otel.tracer_provider is not None:
            api = _traced_asgi(api, self.otel.tracer_provider)
        registry = build_registry(
            collectors=[self.metrics.collector()],
            tree=self.tree,
            mailboxes=lambda: {self.alerts.name: self.alerts.statistics().dropped},
        )
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

    def _build_channel(self, name: str, channel: ChannelConfig, config: Config) -> Channel:
        """Raises: ChannelSetupError (see `build_channel`)."""
        context = ChannelContext(
            clock=self.clock,
            logger=logger_for(f"notify.{name}"),
            external_url=config.server.external_url,
            database=self.database,
            tracer_provider=self.otel.tracer_provider,
        )
        return build_channel(name, channel, context)

    def _delivery_spec(self, name: str) -> ChildSpec:
        actor = DeliveryActor(
            channel=self.channels[name],
            outbox=self.outbox,
            clock=self.clock,
            logger=logger_for(f"notify.{name}"),
            metrics=self.metrics,
            tracer=self.tracer,
        )
        return ChildSpec(_deliver_id(name), actor.run, shutdown=self._worker_shutdown)

    def mute_status(self, alert: Alert) -> MuteStatus:
        """Why `alert` is muted, as the routing actor running now sees it."""
        return self.routing.mute_status(alert)

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
        diff = diff_configs(old, new)
        self.redactor.add(new.secret_values())
        errors: list[str] = []
        new_checks = {check.name: check for check in new.checks}
        self.health.configure({check.name: check.critical for check in new.checks})
        self.agents.expect(_expected_agents(new))
        for name in diff.checks_stopped:
            await self.checks.delete_child(_check_id(name))
        for name in diff.checks_restarted:
            try:
                await self.checks.restart_child(_check_id(name), self._check_spec(new_checks[name]))
            except Exception as exc:  # a probe that cannot start: reported, tree keeps running
                errors.append(f"check {name}: {exc}")
        for name in diff.checks_started:
            try:
                await self.checks.start_child(self._check_spec(new_checks[name]))
            except Exception as exc:
                errors.append(f"check {name}: {exc}")

        new_rules = {rule.id: rule for rule in new.rules if rule.enabled}
        for rid in diff.rules_removed:
            self.rules.remove_rule(rid)
        for rid in (*diff.rules_added, *diff.rules_changed):
            self.rules.add_rule(new_rules[rid])

        new_channels = new.enabled_channels()
        # Routing reads `self.config` to skip disabled channels: switch before stopping them.
        self.config = new
        for name in diff.channels_removed:
            await self.notify.delete_child(_deliver_id(name))
            removed = self.channels.pop(name, None)
            if removed is not None:
                await removed.aclose()
        for name in diff.channels_changed:
            try:
                # Built once: the restarted delivery actor and the test-alert route share it.
                channel = self._build_channel(name, new_channels[name], new)
            except Exception as exc:  # e.g. ChannelSetupError: the old channel keeps running
                errors.append(f"channel {name}: {exc}")
                continue
            old_channel, self.channels[name] = self.channels.get(name), channel
            try:
                await self.notify.restart_child(_deliver_id(name), self._delivery_spec(name))
            except Exception as exc:
                errors.append(f"channel {name}: {exc}")
            if old_channel is not None:
                await old_channel.aclose()
        for name in diff.channels_added:
            try:
                self.channels[name] = self._build_channel(name, new_channels[name], new)
                await self.notify.start_child(self._delivery_spec(name))
            except Exception as exc:
                errors.append(f"channel {name}: {exc}")
        if diff.routing_changed:
            self.silences.configure(new.silences)
            self.routing = self._routing_actor(new)
            spec = ChildSpec("routing", self.routing.run, shutdown=self._worker_shutdown)
            await self.root.restart_child("routing", spec)

        if diff.log_changed:
            configure_logging(format=new.log.format, level=new.log.level, redactor=self.redactor)
        needs_restart = diff.needs_restart
        # The store sizes its rings when a metric is declared: a longer window takes a restart.
        retention = metric_retention(new)
        if retention > self.metrics.retention:
            needs_restart += ("metric retention",)
            self.log.warning(
                "a rule or metric check window of %s is longer than the metric store keeps (%s):"
                " it reads at most %s of samples until the process restarts",
                format_seconds(retention),
                format_seconds(self.metrics.retention),
                format_seconds(self.metrics.retention),
            )
        for error in errors:
            self.log.error("reload: %s", error)
        return ReloadReport(
            started=(
                *(_check_id(name) for name in diff.checks_started),
                *(_deliver_id(name) for name in diff.channels_added),
            ),
            stopped=(
                *(_check_id(name) for name in diff.checks_stopped),
                *(_deliver_id(name) for name in diff.channels_removed),
            ),
            restarted=(
                *(_check_id(name) for name in diff.checks_restarted),
                *(_deliver_id(name) for name in diff.channels_changed),
                *(("routing",) if diff.routing_changed else ()),
            ),
            rules_added=diff.rules_added,
            rules_removed=diff.rules_removed,
            rules_changed=diff.rules_changed,
            needs_restart=needs_restart,
            errors=tuple(errors),
        )

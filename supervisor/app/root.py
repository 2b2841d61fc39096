"""The composition root: a validated `Config` -> the subsystems, wired into one supervision tree.

`App(config)` builds what every subsystem shares (clock, the store, the checks' TLS client
contexts, the secret redactor) and the subsystems, each of which builds its own objects once
(`supervisor.app.subsystem`): telemetry (metric store, recording API, OTLP), checks (check
actors, health state), notify (outbox, channels, deliveries), routing (rules, routing, silences),
cluster (replicas on PostgreSQL: the shared notification log, the heartbeat) and web (the
listeners). Their child specs go under the root `Supervisor`:

    root (one_for_one; intensity, period and backoff from [supervisor]; started top-down,
          stopped bottom-up, so deliveries drain while the listeners still answer)
      otlp        the OTLP metric exporter, when configured              (telemetry)
      storage     writes a probe row every few seconds: a failing database fails readiness
      spool       with [storage] url: replays the notifications spooled while PostgreSQL was
                  unreachable (`actors.cluster.spooling`)
      metrics     the /metrics listener ([server] metrics_listen)        (web)
      web         the API, probes and status page ([server] listen)      (web)
      notify      nested supervisor, one child `deliver:<name>` per enabled channel (notify)
      routing     groups, silences, inhibits; writes Notifications to the durable outbox
      rules       the rule evaluator -> AlertEvents -> routing (the `alerts` Mailbox) (routing)
      slos        counts [[slos]] events, records slo_* (their burn-rate alerts are rules) (routing)
      cluster     with [storage] url: the replica's heartbeat (claims, silences)     (cluster)
      history     the check history: records every run, flushes in batches      (checks)
      checks      nested supervisor, one child `check:<name>` per [[checks]] entry  (checks)
      share       sharded replicas: runs the checks this replica owns                (checks)

The checks start last and stop first: a check of the monitor's own API finds it up, and has
closed its kept-alive connection before the server stops.

`App.run` runs the tree until `App.stop` (graceful: readiness fails at once, then children stop
in reverse order). `App.reload` / `App.apply` are the hot reload: each subsystem in turn (checks,
notify, routing, telemetry, web) applies its part of the change (`Subsystem.apply`), starting,
stopping or restarting only what changed; unchanged actors keep running with their state (their
start counters do not move). `[log]` applies at once; any other section that changed is
reported in `needs_restart`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

import trio

from actors.checks.tlscontext import ClientContexts
from actors.clock import Clock, SystemClock
from actors.cluster.notifylog import SharedNotifyLog
from actors.cluster.spool import Spool
from actors.cluster.spooling import SpoolingGate
from actors.routing.actor import FlushGate
from actors.store import Database, DatabaseOpenError, MigrationError, Store, open_store
from actors.store.observed import STORAGE_ERRORS, ObservedStore, StorageProbe
from supervisor.app.checks import ChecksSubsystem
from supervisor.app.cluster import ClusterSubsystem, cluster_of, follow_rules, sharding
from supervisor.app.notify import NotifySubsystem
from supervisor.app.reload import (
    RELOAD_METRIC,
    ReloadReport,
    ReportBuilder,
    restart_sections,
)
from supervisor.app.routing import RoutingSubsystem
from supervisor.app.subsystem import Subsystem, Wiring
from supervisor.app.telemetry import (
    MIN_RETENTION,
    TelemetrySubsystem,
    format_seconds,
    metric_retention,
)
from supervisor.app.web import WebSubsystem
from supervisor.config import Config, ConfigError, load_config
from supervisor.logging_setup import (
    SecretRedactor,
    configure_logging,
    install_redaction,
    logger_for,
)
from supervisor.runtime import SupervisorInfo

__all__ = ["MIN_RETENTION", "App", "format_seconds", "metric_retention"]

# What the "configuration reloaded" log line lists.
# Seconds between storage probes of a single process (replicas probe every heartbeat).
_PROBE_INTERVAL = 5.0
_LOGGED = ("started", "stopped", "restarted", "rules_added", "rules_removed", "rules_changed")


class App:
    """Everything one configuration runs, wired together. See the module docstring.

    Args:
        config: the validated configuration.
        path: the file it came from (SIGHUP and reload read it again); None: no reload.
        clock: the clock seam (default: system time).
        env: the environment used to expand `${VAR}` on reload (default: `os.environ`).
        database: an open store (default: the one `[storage]` names, SQLite or PostgreSQL).
        serve_http: run the API and /metrics listeners (tests of the tree may leave them out).
        redactor: collects the configured secrets to cut out of log records (default: a new one).
        tls: the TLS client contexts every check shares, also those a reload starts (default:
            a new `ClientContexts`, system CA store; one context per verification mode).
        adjust: applied to every configuration a reload reads from `path` (the overrides of a
            `run --workers` worker, `supervisor.app.workerplan.Worker.apply`); a `ConfigError`
            it raises rejects the reload as an invalid file does.

    Attributes:
        checks, notify, routing: the subsystems (`web` too, None without `serve_http`).
        metrics, telemetry, otel, tracer, agents: the metric store, the recording API, the
            OpenTelemetry setup, its tracer and the agent registry (of the telemetry subsystem).
        health, rules: the health state and the rule evaluator.
        api_server, metrics_server: the listeners (with `serve_http`).

    Raises:
        actors.store.errors.DatabaseOpenError: the database cannot be opened or reached.
        actors.store.errors.MigrationError: its schema cannot be created or migrated.
        actors.notify.errors.ChannelSetupError: an enabled channel cannot be built.
    """

    def __init__(
        self,
        config: Config,
        *,
        path: Path | None = None,
        clock: Clock | None = None,
        env: Mapping[str, str] | None = None,
        database: Store | None = None,
        serve_http: bool = True,
        redactor: SecretRedactor | None = None,
        tls: ClientContexts | None = None,
        adjust: Callable[[Config], Config] | None = None,
    ) -> None:
        self.config = config
        self._adjust = adjust
        # The configured secrets, kept out of every log line (see `run`).
        self.redactor = redactor if redactor is not None else SecretRedactor()
        self.redactor.add(config.redaction_needles())
        self.path = path
        self.env: Mapping[str, str] = os.environ if env is None else env
        self.clock: Clock = clock or SystemClock()
        # One context per verification mode for every check (each holds a copy of the CA store).
        self.tls = tls if tls is not None else ClientContexts()
        self.log = logger_for("app")
        cluster = cluster_of(config)
        # With replicas, each is named (outbox claims, pg_stat_activity's application_name).
        self.replica = cluster.replica_name() if cluster is not None else None
        opened = (
            database
            if database is not None
            else open_store(
                config.storage,
                application_name=f"blipee-monitor {self.replica}"[:63]
                if self.replica
                else "blipee-monitor",
            )
        )
        # Every package gets the observed store: its faults fail readiness and are counted.
        self.database = ObservedStore(opened)
        if isinstance(opened, Database):
            problems = opened.integrity_check()
            if problems:
                self.log.error(
                    "database %s fails its integrity check (%s); the monitor runs but is not"
                    " ready: stop it, then recover the file (docs/configuration.md, [storage])",
                    opened.location,
                    "; ".join(problems[:3]),
                )
                self.database.mark_damaged(f"integrity check failed: {problems[0]}")
        self.database.ensure_probe_table()
        self.last_reload_errors: tuple[str, ...] = ()
        self._reload_lock = trio.Lock()
        self._reading = trio.Lock()  # one reload() at a time, from its read to its apply
        wiring = Wiring(
            clock=self.clock, settings=config.supervisor, root=lambda: self.root, tree=self.tree
        )
        self._telemetry = TelemetrySubsystem(config, wiring, env=self.env)
        self.metrics, self.otel = self._telemetry.store, self._telemetry.otel
        self.telemetry, self.tracer = self._telemetry.api, self.otel.tracer
        self.agents = self._telemetry.agents
        self.metrics.declare(
            RELOAD_METRIC,
            "counter",
            "Configuration reloads by result (success, failure).",
            ("result",),
        )
        # Sharded replicas: the checks and the rules follow this replica's share.
        self.ownership = sharding(config, self.replica)
        self.checks = ChecksSubsystem(
            config,
            wiring,
            telemetry=self._telemetry,
            tls=self.tls,
            database=self.database,
            ownership=self.ownership,
        )
        self.health = self.checks.health
        self.metrics.declare(
            STORAGE_ERRORS, "counter", "Store statements that failed, by operation.", ("operation",)
        )
        self.database.bind(
            count=lambda operation: self.metrics.record(
                STORAGE_ERRORS, 1, {"operation": operation}
            ),
            report=lambda reason: self.health.set_condition("storage", reason),
        )
        self.storage_probe = StorageProbe(
            self.database,
            replica=self.replica or "local",
            interval=cluster.heartbeat if cluster is not None else _PROBE_INTERVAL,
            logger=logger_for("storage"),
        )
        self.notify = NotifySubsystem(
            config,
            wiring,
            database=self.database,
            telemetry=self._telemetry,
            cluster=cluster,
            replica=self.replica,
        )
        gate: FlushGate | None = None
        spooling: SpoolingGate | None = None
        self.spool: Spool | None = None
        if cluster is not None:
            gate = SharedNotifyLog(
                database=self.database,
                outbox=self.notify.outbox,
                enabled=lambda channel: channel in self.notify.channels,
            )
            self.spool = self._open_spool(config)
            if self.spool is not None:
                gate = spooling = SpoolingGate(
                    shared=gate, spool=self.spool, metrics=self.metrics, logger=logger_for("spool")
                )
        self.routing = RoutingSubsystem(
            config,
            wiring,
            database=self.database,
            telemetry=self._telemetry,
            health=self.health,
            outbox=self.notify,
            gate=gate,
            evaluates=self.ownership.evaluates if self.ownership is not None else None,
        )
        if self.ownership is not None:
            self.ownership.add_listener(follow_rules(self.routing.rules))
            # /metrics and OTLP leave out the stale series of checks another replica runs.
            self.metrics.export_filter = self.ownership.evaluates
        self.cluster: ClusterSubsystem | None = None
        if cluster is not None and self.replica is not None:
            self.cluster = ClusterSubsystem(
                cluster,
                wiring,
                replica=self.replica,
                outbox=self.notify.outbox,
                silences=self.routing.silences,
                database=self.database,
                metrics=self.metrics,
                ownership=self.ownership,
                after_beat=self.checks.share.refresh if self.checks.share is not None else None,
            )
        self.rules = self.routing.rules
        self.web: WebSubsystem | None = None
        if serve_http:
            self.web = WebSubsystem(
                config,
                wiring,
                database=self.database,
                telemetry=self._telemetry,
                checks=self.checks,
                notify=self.notify,
                routing=self.routing,
                reload_config=self.reload,
                rejected=lambda: self.last_reload_errors,
                membership=self.cluster.membership if self.cluster is not None else None,
                ownership=self.ownership,
            )
            self.api_server, self.metrics_server = self.web.api_server, self.web.metrics_server
        # Start order (stop order reversed): see the module docstring.
        started: list[Subsystem] = [self._telemetry, *([self.web] if self.web else [])]
        started += [self.notify, self.routing, *([self.cluster] if self.cluster else [])]
        started.append(self.checks)
        specs = [spec for sub in started for spec in sub.specs()]
        probe = wiring.child("storage", self.storage_probe.run)
        specs.insert(len(self._telemetry.specs()), probe)
        if spooling is not None:  # replays what was spooled while PostgreSQL was unreachable
            specs.insert(len(self._telemetry.specs()) + 1, wiring.child("spool", spooling.run))
        self.root = wiring.supervisor("root", specs)
        # Reload order: a new rule finds its new channel already there.
        self._reloaded: list[Subsystem] = [self.checks, self.notify, self.routing, self._telemetry]
        self._reloaded += [self.web] if self.web else []  # the new [security], last

    def _open_spool(self, config: Config) -> Spool | None:
        """The local notification spool (`[storage] spool_path`), or None when its file cannot
        be opened: that is logged, and the replica runs without it (during a PostgreSQL outage
        its notifications then wait in memory only, as when the spool is full)."""
        path = config.storage.spool_path
        try:
            return Spool(Database(path), limit=config.storage.spool_limit)
        except (DatabaseOpenError, MigrationError) as exc:
            self.log.error(
                "the notification spool %s cannot be opened (%s): while PostgreSQL is"
                " unreachable, notifications wait in memory only and a restart loses them;"
                " set [storage] spool_path to a writable file",
                path,
                exc,
            )
            return None

    def tree(self) -> SupervisorInfo | None:
        """The root supervisor's snapshot (None before it runs)."""
        return self.root.tree() if self.root.running else None

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
            await self._telemetry.aclose()
            self.database.close()
            if self.spool is not None:
                self.spool.close()

    async def stop(self) -> None:
        """Graceful stop: readiness fails at once, then children stop in reverse order."""
        self.request_stop()
        await self.root.stop()

    def request_stop(self) -> None:
        """Begin the graceful stop of `stop()` without waiting (a signal handler's call):
        readiness fails and the checks, which stop first, are cancelled in this call
        (`Supervisor.request_stop`); the rest of the tree stops in reverse order from the
        supervisors' own tasks."""
        self.health.begin_draining()
        self.root.request_stop()

    # -- reload --------------------------------------------------------------------------------
    async def reload(self) -> ReloadReport | None:
        """Read `path` again; apply it if valid. Returns None (and logs every error) if not.

        Never raises for a bad file: the running tree is left as it is. Reloads run one at a
        time, read and apply together, so a reload never applies a file older than the one a
        later reload read; an empty file is refused (read while being rewritten in place).
        """
        async with self._reading:
            return await self._reload()

    async def _reload(self) -> ReloadReport | None:
        if self.path is None:
            self.log.error("reload: no configuration file to read")
            return None
        try:
            new = load_config(self.path, env=self.env, allow_empty=False)
            if self._adjust is not None:
                new = self._adjust(new)
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

        Each subsystem applies its part (see theirs); `[log]` applies at once; other sections
        that changed are reported in `needs_restart` (and logged).
        """
        async with self._reload_lock:
            report = await self._apply(new)
        result = "failure" if report.errors else "success"
        self.metrics.record(RELOAD_METRIC, 1, {"result": result})
        logged = {name: list(getattr(report, name)) for name in _LOGGED}
        self.log.info("configuration reloaded", extra=logged)
        for section in report.needs_restart:
            if section in Config.model_fields:  # the others were explained when found
                self.log.warning("[%s] changed: it takes effect after a restart", section)
        return report

    async def _apply(self, new: Config) -> ReloadReport:
        old, self.config = self.config, new
        self.redactor.add(new.redaction_needles())
        report = ReportBuilder(needs_restart=list(restart_sections(old, new)))
        for subsystem in self._reloaded:
            await subsystem.apply(old, new, report)
        if new.log != old.log:
            configure_logging(format=new.log.format, level=new.log.level, redactor=self.redactor)
        for error in report.errors:
            self.log.error("reload: %s", error)
        return report.build()

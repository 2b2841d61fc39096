"""The routing subsystem: rules -> the `alerts` mailbox -> routing -> notify, and the silences.

`RoutingSubsystem` owns the alerting path: the rule evaluator (`rules`, every enabled [[rules]]
entry), the `alerts` Mailbox between it and the routing actor (owned here, so it outlives either
side's restart; it blocks, never drops), the routing actor (`routing`: groups, inhibits, holds,
maintenance windows; writes notifications through notify's `enqueue`) and the process's
`Silences`, which the routing actor mutes with and the silences API edits. The silences are their
own object, as in Alertmanager: they live as long as the process, so a silence added through the
API keeps muting when the routing actor crashes and is restarted, and when a reload replaces it.

The SLO actor (`slos`) counts each [[slos]] entry's events and records the `slo_*` metrics;
the burn-rate alerts it generates are rules of the evaluator like the others.

On reload: added and changed rules (generated ones included) are (re)installed in the
evaluator, removed ones retired, unchanged ones keep their alert state; the SLOs are
reconfigured (a changed SLO counts again from then on). A change of [routing], [[inhibit]],
[[silences]] or [[maintenance]] replaces the routing actor (its notification logs and the
silences are persisted, so nothing is sent twice).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from actors.models import Alert, AlertEvent
from actors.routing.actor import (
    FlushGate,
    HealthView,
    MuteStatus,
    NotificationSink,
    RoutingActor,
)
from actors.routing.config import MaintenanceConfig
from actors.routing.cron import in_window
from actors.routing.maintenance import MaintenanceWindow, parse_window
from actors.routing.persist import SqliteRoutingStore
from actors.routing.silencing import Silences
from actors.rules.actor import RulesActor
from actors.rules.persist import SqliteAlertStateStore
from actors.rules.slo_actor import SloActor
from actors.store import Store
from supervisor.app.reload import ReportBuilder, enabled_rules, routing_changed, rule_diff
from supervisor.app.subsystem import Wiring
from supervisor.app.telemetry import TelemetrySubsystem
from supervisor.config import Config
from supervisor.logging_setup import logger_for
from supervisor.runtime import ChildSpec, Mailbox, Overflow

__all__ = ["RoutingSubsystem"]


class RoutingSubsystem:
    """Rules, routing and silences. See the module docstring.

    Args:
        config: the configuration ([[rules]], [routing], [[inhibit]], [[silences]],
            [[maintenance]]).
        wiring: clock, supervisor settings, the root supervisor (`routing` is its child).
        database: where alert state, notification logs and silences are kept.
        telemetry: the metric store the rules evaluate, the tracer (a span per evaluation).
        health: the health state (dependency holds).
        outbox: where notifications go (notify's `enqueue`).
        gate: with replicas, the shared notification log the routing actor flushes through
            (`actors.cluster.SharedNotifyLog`); None: one process.
        evaluates: sharded replicas: the series and alerts (by labels) this replica's rules
            evaluate (`Ownership.evaluates`); None: all.

    Attributes:
        alerts: the rules -> routing mailbox.
        rules: the rule evaluator ([[rules]] and the burn-rate alerts of [[slos]]).
        slos: the SLO evaluator (`slo_*` metrics, what the burn-rate alerts watch).
        silences: the process's silences.
        actor: the routing actor running now (a reload may replace it).
    """

    def __init__(
        self,
        config: Config,
        wiring: Wiring,
        *,
        database: Store,
        telemetry: TelemetrySubsystem,
        health: HealthView,
        outbox: NotificationSink,
        gate: FlushGate | None = None,
        evaluates: Callable[[Mapping[str, str]], bool] | None = None,
    ) -> None:
        self._wiring = wiring
        self._health = health
        self._outbox = outbox
        self._gate = gate
        # Alerts are never dropped: a full mailbox makes the evaluator wait.
        self.alerts: Mailbox[AlertEvent] = Mailbox("alerts", capacity=1000, overflow=Overflow.BLOCK)
        self._store = SqliteRoutingStore(database=database)
        self.silences = Silences(store=self._store, clock=wiring.clock, configured=config.silences)
        self.rules = RulesActor(
            rules=list(enabled_rules(config).values()),
            store=telemetry.store,
            sink=self.alerts,
            clock=wiring.clock,
            state=SqliteAlertStateStore(database=database),
            tracer=telemetry.otel.tracer,
            logger=logger_for("rules"),
            evaluates=evaluates,
        )
        self.slos = SloActor(
            slos=config.slos, store=telemetry.store, clock=wiring.clock, logger=logger_for("slos")
        )
        self.actor = self._actor(config)
        self._windows = self._maintenance(config)

    @staticmethod
    def _maintenance(config: Config) -> list[tuple[MaintenanceConfig, MaintenanceWindow]]:
        return [
            (m, parse_window(m.matchers, m.cron, m.duration, m.comment, m.timezone))
            for m in config.maintenance
        ]

    def maintenance_in_progress(self, now: float) -> list[MaintenanceConfig]:
        """The [[maintenance]] windows open at `now` (whatever alerts they hold)."""
        return [m for m, w in self._windows if in_window(w.cron, w.duration, now, w.tz)]

    def _actor(self, config: Config) -> RoutingActor:
        return RoutingActor(
            config=config.routing,
            events=self.alerts,
            outbox=self._outbox,
            clock=self._wiring.clock,
            inhibit=config.inhibit,
            silences=self.silences,
            maintenance=config.maintenance,
            time_intervals=config.time_intervals,
            store=self._store,
            health=self._health,
            gate=self._gate,
            logger=logger_for("routing"),
        )

    def _routing_spec(self) -> ChildSpec:
        return self._wiring.child("routing", self.actor.run)

    def specs(self) -> list[ChildSpec]:
        """`routing`, then `rules` (routing is ready before the first alert), then `slos`."""
        return [
            self._routing_spec(),
            self._wiring.child("rules", self.rules.run),
            self._wiring.child("slos", self.slos.run),
        ]

    def mute_status(self, alert: Alert) -> MuteStatus:
        """Why `alert` is muted now, as the routing actor running now sees it."""
        return self.actor.mute_status(alert)

    async def apply(self, old: Config, new: Config, report: ReportBuilder) -> None:
        """Install added and changed rules, retire removed ones; replace the routing actor when
        a routing section changed.

        Raises:
            supervisor.runtime errors of `restart_child`: the new routing actor did not start.
        """
        diff = rule_diff(old, new)
        rules = enabled_rules(new)
        self.slos.configure(new.slos)
        for rid in diff.removed:
            self.rules.remove_rule(rid)
        for rid in (*diff.added, *diff.changed):
            self.rules.add_rule(rules[rid])
        report.rules_added.extend(diff.added)
        report.rules_removed.extend(diff.removed)
        report.rules_changed.extend(diff.changed)
        if routing_changed(old, new):
            self.silences.configure(new.silences)
            self._windows = self._maintenance(new)
            self.actor = self._actor(new)
            await self._wiring.root().restart_child("routing", self._routing_spec())
            report.restarted.append("routing")

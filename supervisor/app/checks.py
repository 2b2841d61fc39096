"""The checks subsystem: one supervised check actor per [[checks]] entry, and the health state.

`ChecksSubsystem` runs the nested `checks` supervisor, with one child `check:<name>` per check
(built by the check kind's factory, `actors.checks.factory.build_check_actor`, in `_spec` only),
and owns the `HealthState` the checks publish to (read by the web API and routing's holds). On
reload, added checks start, removed ones stop, changed ones (any key) restart, unchanged ones are
not touched; the health state and the agents `agents` checks expect follow the new list.

It also owns the check history (`actors.history`): a `HistoryRecorder` that the health state
hands every result (its result listener), run as the `history` child just before the `checks`
supervisor (so it flushes the last runs after the checks stopped). `[history] enabled = false`
leaves it out.

Sharded replicas (`ownership`): the `checks` supervisor starts empty and runs only the checks
this replica owns; the `share` child (`supervisor.app.share.CheckShare`, after it) starts and
stops them as the share changes at each heartbeat, and shows the other checks' stored results.
Their history comes from the shared store too: the `remote-history` child
(`actors.history.remote.RemoteHistory`, after `share`) keeps their uptime strips and open
incidents, and the status page reads each check from the recorder or from it
(`history_view`, an `actors.history.sharded.ShardedHistory`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from actors.checks.agents import AgentsCheckConfig
from actors.checks.cadence import first_round_for
from actors.checks.config import CheckBase
from actors.checks.factory import build_check_actor
from actors.checks.probe import CheckContext
from actors.checks.schedule import Lateness
from actors.checks.timer import CheckTimer
from actors.checks.tlscontext import ClientContexts
from actors.cluster.ownership import Ownership
from actors.history import HistoryRecorder, HistoryRepository
from actors.history.remote import RemoteHistory
from actors.history.sharded import ShardedHistory
from actors.state import HealthState
from actors.store import Store
from supervisor.app.reload import NameDiff, ReportBuilder, check_diff
from supervisor.app.share import CheckShare
from supervisor.app.subsystem import Wiring
from supervisor.app.telemetry import TelemetrySubsystem
from supervisor.config import Config
from supervisor.logging_setup import logger_for
from supervisor.runtime import ChildSpec

__all__ = ["ChecksSubsystem", "check_id"]


def check_id(name: str) -> str:
    """The child id of check `name`."""
    return f"check:{name}"


def _expected_agents(config: Config) -> list[str]:
    """Every agent an `agents` check expects (listed as missing until it reports)."""
    return [
        agent
        for check in config.checks
        if isinstance(check, AgentsCheckConfig)
        for agent in check.expected
    ]


def _criticality(config: Config) -> dict[str, bool]:
    return {check.name: check.critical for check in config.checks}


def _groups(config: Config) -> dict[str, str]:
    return {check.name: check.group for check in config.checks}


class ChecksSubsystem:
    """The checks and the health state. See the module docstring.

    Args:
        config: the configuration ([[checks]]).
        wiring: clock, supervisor settings, the tree (for `self` checks).
        telemetry: the metric store (results are recorded there; `metric` checks read it), the
            agent registry (`agents` checks read it) and the tracer (a span per check run).
        tls: the TLS client contexts every check shares, also those a reload starts.
        database: where the history is kept (its tables are migrated here).
        ownership: sharded replicas: this replica's share of the checks (None: run them all).

    Attributes:
        health: the health state the checks publish to.
        history: the check history (None with `[history] enabled = false`).
        history_view: what the status page reads of the history: `history`, or sharded, the
            recorder for the checks run here and the shared history for the others.
        remote_history: sharded replicas: the history of the checks run elsewhere (else None).
        groups: each configured check's `group`, in configuration order (follows reloads).
        lateness: how late the checks run (metrics, overload: readiness, `self` checks, log).
        supervisor: the nested `checks` supervisor.
        share: sharded replicas: what keeps the supervisor to the owned checks (else None).

    Raises:
        actors.checks.errors.CheckError, ValueError: a check cannot be built.
        actors.store.errors.MigrationError: the history's tables cannot be created.
    """

    def __init__(
        self,
        config: Config,
        wiring: Wiring,
        *,
        telemetry: TelemetrySubsystem,
        tls: ClientContexts,
        database: Store,
        ownership: Ownership | None = None,
    ) -> None:
        self._wiring = wiring
        self._checks = {check.name: check for check in config.checks}
        self._telemetry = telemetry
        self.health = HealthState(
            checks=_criticality(config), recorder=telemetry.store, clock=wiring.clock
        )
        self.lateness = Lateness(
            recorder=telemetry.store,
            on_change=self.health.set_overload,
            logger=logger_for("checks"),
        )
        # What every check's probe is lent, the same objects for all (and a reload's checks).
        self._context = CheckContext(
            clock=wiring.clock,
            tls=tls,
            store=telemetry.store,
            agents=telemetry.agents,
            tree=wiring.tree,
            overload=lambda: self.lateness.overload,
        )
        self.groups = _groups(config)
        self.history: HistoryRecorder | None = None
        repository: HistoryRepository | None = None
        if config.history.enabled:
            repository = HistoryRepository(database)
            repository.migrate()
            self.history = HistoryRecorder(
                repository=repository,
                config=config.history,
                clock=wiring.clock,
                logger=logger_for("history"),
            )
            self.health.add_result_listener(self.history.observe)
        telemetry.agents.expect(_expected_agents(config))
        # One timer wakes every check for its runs (actors.checks.timer).
        self.timer = CheckTimer()
        # Thousands of first runs (each opening a connection) are spread over a few seconds.
        self._first_round = first_round_for(len(config.checks))
        # The checks are independent of each other: they start together (one scheduler pass
        # for thousands, not one each) and stop together (docs/decisions/0013).
        # Sharded, the share starts the owned checks once the first heartbeat assigned them.
        initial = [] if ownership is not None else config.checks
        self.supervisor = wiring.supervisor(
            "checks", [self._spec(check) for check in initial], ordered=False
        )
        self.share: CheckShare | None = None
        if ownership is not None:
            self.share = CheckShare(
                ownership=ownership,
                supervisor=self.supervisor,
                spec=self._spec_of,
                health=self.health,
                critical=lambda name: (c := self._checks.get(name)) is not None and c.critical,
                repository=repository,
                logger=logger_for("checks"),
                history=self.history,
            )
        self.history_view: HistoryRecorder | ShardedHistory | None = self.history
        self.remote_history: RemoteHistory | None = None
        if ownership is not None and self.history is not None and repository is not None:
            shared = ownership

            def elsewhere(name: str) -> bool:
                return shared.assigned and not shared.owns(name)

            self.remote_history = RemoteHistory(
                repository=repository,
                checks=lambda: [name for name in shared.checks if elsewhere(name)],
                clock=wiring.clock,
                interval=config.history.flush_interval,
                logger=logger_for("history"),
            )
            self.history_view = ShardedHistory(
                local=self.history, remote=self.remote_history, elsewhere=elsewhere
            )
        self._ownership = ownership

    def specs(self) -> list[ChildSpec]:
        """`history` (when enabled), `timer` (wakes the checks: started before them, stopped
        after them), the nested `checks` supervisor, then (sharded) `share` and (with the
        history) `remote-history`."""
        history = [] if self.history is None else [self._wiring.child("history", self.history.run)]
        share = [] if self.share is None else [self._wiring.child("share", self.share.run)]
        if self.remote_history is not None:
            share.append(self._wiring.child("remote-history", self.remote_history.run))
        timer = self._wiring.child("timer", self.timer.run)
        return [*history, timer, ChildSpec.supervisor(self.supervisor), *share]

    def _spec_of(self, name: str) -> ChildSpec | None:
        check = self._checks.get(name)
        return None if check is None else self._spec(check)

    def _spec(self, check: CheckBase) -> ChildSpec:
        actor = build_check_actor(
            check,
            self._context,
            health=self.health,
            tracer=self._telemetry.otel.tracer,
            schedule=self.lateness,
            first_round=self._first_round,
            timer=self.timer,
        )
        return self._wiring.child(check_id(check.name), actor.run)

    async def apply(self, old: Config, new: Config, report: ReportBuilder) -> None:
        """Start, stop and restart the checks that changed (a check that cannot start is
        reported; the tree keeps running)."""
        diff = check_diff(old, new)
        checks = {check.name: check for check in new.checks}
        self._checks = checks
        self.health.configure(_criticality(new))
        self.groups = _groups(new)
        self._telemetry.agents.expect(_expected_agents(new))
        if self.share is not None and self._ownership is not None:
            async with self.share.lock:
                await self._apply_share(
                    self.share, self._ownership, diff, checks=checks, report=report
                )
            return
        if diff.removed:
            await self.supervisor.delete_children(check_id(name) for name in diff.removed)
        report.stopped.extend(check_id(name) for name in diff.removed)
        await self._restart(diff.changed, checks, report)
        # Added checks start together (a reload may add thousands); one that cannot start is
        # reported in errors only.
        specs = []
        for name in diff.added:
            try:
                specs.append(self._spec(checks[name]))
            except Exception as exc:  # a probe that cannot be built: reported
                report.errors.append(f"check {name}: {exc}")
        failed = await self.supervisor.start_children(specs) if specs else {}
        for spec in specs:
            error = failed.get(spec.id)
            if error is None:
                report.started.append(spec.id)
            else:
                report.errors.append(f"check {spec.id.removeprefix('check:')}: {error}")

    async def _restart(
        self, names: Iterable[str], checks: Mapping[str, CheckBase], report: ReportBuilder
    ) -> None:
        """Restart the checks `names` with their new configuration, one by one; a check that
        cannot start again is listed in the report's errors only, the others in restarted."""
        for name in names:
            try:
                await self.supervisor.restart_child(check_id(name), self._spec(checks[name]))
            except Exception as exc:  # a probe that cannot start: reported, tree keeps running
                report.errors.append(f"check {name}: {exc}")
            else:
                report.restarted.append(check_id(name))

    async def _apply_share(
        self,
        share: CheckShare,
        ownership: Ownership,
        diff: NameDiff,
        *,
        checks: Mapping[str, CheckBase],
        report: ReportBuilder,
    ) -> None:
        """Sharded (under the share's lock): stop removed checks and restart changed ones that
        run here; the share starts the added ones this replica owns (a check's owner depends
        only on its name and the live replicas)."""
        ownership.configure(checks)
        running = share.running()
        removed = [name for name in diff.removed if name in running]
        if removed:
            await self.supervisor.delete_children(check_id(name) for name in removed)
        report.stopped.extend(check_id(name) for name in removed)
        await self._restart([n for n in diff.changed if n in running], checks, report)
        report.started.extend(check_id(n) for n in diff.added if ownership.owns(n))

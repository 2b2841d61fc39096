"""The cluster subsystem: what a replica does beside its peers on a shared PostgreSQL store.

Built only with `[storage] url` (redundant mode: `[cluster]` or its defaults). It runs the
replica's heartbeat (`cluster`): its membership row written through a PostgreSQL connection of
its own (`actors.store.dedicated`, so it never waits behind the history writes), delivery claims
renewed, silences refreshed from the store (see `actors.cluster.heartbeat`). The shared
notification log is built by the routing subsystem's caller (`App`) and handed to routing, and
the outbox claims rows as this replica; both are named here by `replica`. A
change of `[cluster]` takes a process restart (it is not a live section).

Sharded mode (`[cluster] mode = "sharded"`): `sharding(config, replica)` makes the replica's
`Ownership`, which the checks subsystem follows (it runs the owned checks) and the rules follow
(`follow_rules`: a lost check's alerts are released, a gained one's adopted); every beat
recomputes it from the live sharded replicas just read (`cluster_checks_owned` gauge).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from actors.cluster.config import ClusterConfig
from actors.cluster.heartbeat import Heartbeat
from actors.cluster.membership import DEAD_AFTER_BEATS, Member, Membership
from actors.cluster.ownership import Change, Ownership
from actors.notify.outbox import Outbox
from actors.routing.silencing import Silences
from actors.rules.actor import RulesActor
from actors.store import Store, dedicated
from actors.telemetry.protocols import MetricWriter
from supervisor.app.reload import ReportBuilder
from supervisor.app.subsystem import Wiring
from supervisor.config import Config
from supervisor.logging_setup import logger_for
from supervisor.runtime import ChildSpec

__all__ = [
    "CHECKS_OWNED",
    "REPLICAS_LIVE",
    "ClusterSubsystem",
    "cluster_of",
    "follow_rules",
    "sharding",
]

REPLICAS_LIVE = "cluster_replicas_live"
CHECKS_OWNED = "cluster_checks_owned"
SHARDED = "sharded"


def cluster_of(config: Config) -> ClusterConfig | None:
    """The replicas' settings: `[cluster]`, its defaults with `[storage] url`, else None."""
    if config.cluster is not None:
        return config.cluster
    return ClusterConfig() if config.storage.shared else None


def sharding(config: Config, replica: str | None) -> Ownership | None:
    """This replica's share of the checks when `[cluster] mode = "sharded"`, else None."""
    cluster = cluster_of(config)
    if cluster is None or cluster.mode != SHARDED or replica is None:
        return None
    return Ownership(
        replica=replica,
        checks=[check.name for check in config.checks],
        siblings=cluster.siblings,
        wait=DEAD_AFTER_BEATS * cluster.heartbeat,
    )


def follow_rules(rules: RulesActor) -> Callable[[Change], None]:
    """An `Ownership` listener: the rules release the alerts of the checks this replica lost
    (without resolving them) and adopt those of the checks it gained."""

    def follow(change: Change) -> None:
        if change.lost:
            lost = change.lost
            rules.release(lambda labels: labels.get("check") in lost)
        if change.gained:
            gained = change.gained
            rules.adopt(lambda labels: labels.get("check") in gained)

    return follow


class ClusterSubsystem:
    """The heartbeat of this replica. See the module docstring.

    Args:
        cluster: `[cluster]` (heartbeat).
        wiring: supervisor settings.
        replica: this replica's name.
        outbox: the outbox whose claims are renewed.
        silences: the process's silences.
        database: the shared store (the membership table, through a connection of its own).
        metrics: where `cluster_replicas_live` is recorded.
        ownership: sharded mode: this replica's share, recomputed at every beat.
        after_beat: awaited at the end of every beat (sharded: the others' check results).
    """

    def __init__(
        self,
        cluster: ClusterConfig,
        wiring: Wiring,
        *,
        replica: str,
        outbox: Outbox,
        silences: Silences,
        database: Store,
        metrics: MetricWriter,
        ownership: Ownership | None = None,
        after_beat: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._wiring = wiring
        self.replica = replica
        self.ownership = ownership
        self.membership = Membership(
            database=dedicated(database, "heartbeat"),
            replica=replica,
            mode=cluster.mode,
            heartbeat=cluster.heartbeat,
        )
        metrics.declare(REPLICAS_LIVE, "gauge", "Replicas alive, as this one sees them.", ())

        if ownership is not None:
            metrics.declare(CHECKS_OWNED, "gauge", "Checks this replica runs (sharded mode).", ())

        log = logger_for("cluster")

        def live(members: list[Member]) -> None:
            metrics.record(REPLICAS_LIVE, float(len(members)), {})
            if ownership is not None:
                first = not ownership.assigned
                names = [m.name for m in members if m.mode == SHARDED]
                ownership.update(names, now=trio.current_time())
                if first and ownership.assigned and ownership.missing:
                    log.warning(
                        "siblings %s not alive within %d heartbeats: checks shared without them",
                        ", ".join(sorted(ownership.missing)),
                        DEAD_AFTER_BEATS,
                        extra={"missing": sorted(ownership.missing)},
                    )
                metrics.record(CHECKS_OWNED, float(len(ownership.owned)), {})

        self.heartbeat = Heartbeat(
            interval=cluster.heartbeat,
            outbox=outbox,
            silences=silences,
            logger=log,
            membership=self.membership,
            on_members=live,
            after_beat=after_beat,
        )

    def specs(self) -> list[ChildSpec]:
        """`cluster`: the heartbeat."""
        return [self._wiring.child("cluster", self.heartbeat.run)]

    async def apply(self, old: Config, new: Config, report: ReportBuilder) -> None:
        """Nothing live: `[cluster]` and `[storage]` changes are reported as needing a restart."""

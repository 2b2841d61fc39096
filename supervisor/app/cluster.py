"""The cluster subsystem: what a replica does beside its peers on a shared PostgreSQL store.

Built only with `[storage] url` (redundant mode: `[cluster]` or its defaults). It runs the
replica's heartbeat (`cluster`): delivery claims renewed, silences refreshed from the store (see
`actors.cluster.heartbeat`). The shared notification log is built by the routing subsystem's
caller (`App`) and handed to routing, and the outbox claims rows as this replica; both are named
here by `replica`. A change of `[cluster]` takes a process restart (it is not a live section).
"""

from __future__ import annotations

from actors.cluster.config import ClusterConfig
from actors.cluster.heartbeat import Heartbeat
from actors.cluster.membership import Member, Membership
from actors.notify.outbox import Outbox
from actors.routing.silencing import Silences
from actors.store import Store
from actors.telemetry.protocols import MetricWriter
from supervisor.app.reload import ReportBuilder
from supervisor.app.subsystem import Wiring
from supervisor.config import Config
from supervisor.logging_setup import logger_for
from supervisor.runtime import ChildSpec

__all__ = ["REPLICAS_LIVE", "ClusterSubsystem", "cluster_of"]

REPLICAS_LIVE = "cluster_replicas_live"


def cluster_of(config: Config) -> ClusterConfig | None:
    """The replicas' settings: `[cluster]`, its defaults with `[storage] url`, else None."""
    if config.cluster is not None:
        return config.cluster
    return ClusterConfig() if config.storage.shared else None


class ClusterSubsystem:
    """The heartbeat of this replica. See the module docstring.

    Args:
        cluster: `[cluster]` (heartbeat).
        wiring: supervisor settings.
        replica: this replica's name.
        outbox: the outbox whose claims are renewed.
        silences: the process's silences.
        database: the shared store (the membership table).
        metrics: where `cluster_replicas_live` is recorded.
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
    ) -> None:
        self._wiring = wiring
        self.replica = replica
        self.membership = Membership(
            database=database, replica=replica, mode=cluster.mode, heartbeat=cluster.heartbeat
        )
        metrics.declare(REPLICAS_LIVE, "gauge", "Replicas alive, as this one sees them.", ())

        def live(members: list[Member]) -> None:
            metrics.record(REPLICAS_LIVE, float(len(members)), {})

        self.heartbeat = Heartbeat(
            interval=cluster.heartbeat,
            outbox=outbox,
            silences=silences,
            logger=logger_for("cluster"),
            membership=self.membership,
            on_members=live,
        )

    def specs(self) -> list[ChildSpec]:
        """`cluster`: the heartbeat."""
        return [self._wiring.child("cluster", self.heartbeat.run)]

    async def apply(self, old: Config, new: Config, report: ReportBuilder) -> None:
        """Nothing live: `[cluster]` and `[storage]` changes are reported as needing a restart."""

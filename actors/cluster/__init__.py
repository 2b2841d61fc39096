"""Replicas sharing one PostgreSQL store ([cluster], redundant mode).

- `ClusterConfig`: this replica's name, the mode, the heartbeat (a delivery lease is 3).
- `SharedNotifyLog`: the notification log replicas share; the routing actor flushes due groups
  through it, so replicas seeing the same alerts send one notification
  (`notification_identity` is its deterministic key).
- `SpoolingGate` (`actors.cluster.spooling`): that log with the local spool
  (`actors.cluster.spool`) where notifications wait while PostgreSQL is unreachable, replayed
  (`SharedNotifyLog.replay`, deduplicated) when it is back.
- `Heartbeat`: every heartbeat, write this replica's membership row (on a connection of its
  own), and apart from it renew this replica's delivery claims and refresh the silences.
"""

from __future__ import annotations

from actors.cluster.config import ClusterConfig
from actors.cluster.exceptions import ClusterError, FlushContended
from actors.cluster.heartbeat import Heartbeat
from actors.cluster.notifylog import SharedNotifyLog, notification_identity

__all__ = [
    "ClusterConfig",
    "ClusterError",
    "FlushContended",
    "Heartbeat",
    "SharedNotifyLog",
    "notification_identity",
]

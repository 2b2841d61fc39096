"""Replicas sharing one PostgreSQL store ([cluster]).

- `ClusterConfig`: this replica's name, the mode, the heartbeat.
"""

from __future__ import annotations

from actors.cluster.config import ClusterConfig

__all__ = ["ClusterConfig"]

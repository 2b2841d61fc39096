"""Configuration of replicas ([cluster]): valid only with `[storage] url` (PostgreSQL)."""

from __future__ import annotations

import os
import re
import socket
from typing import Literal

from pydantic import field_validator

from actors.configtypes import ConfigModel, Duration

__all__ = ["ClusterConfig"]

_REPLICA = re.compile(r"^[A-Za-z0-9_.:-]{0,128}$")


class ClusterConfig(ConfigModel):
    """[cluster]: how this process runs beside other replicas on the same PostgreSQL database.

    In "redundant" mode every replica runs every check and evaluates every rule; notifications
    are deduplicated in the shared outbox and each is sent by exactly one replica. In "sharded"
    mode the checks are split over the live sharded replicas by rendezvous hashing of their
    names (`actors.cluster.ownership`), and each check's alerts are evaluated by its owner
    (see docs/high-availability.md).
    """

    replica: str = ""
    """This replica's unique name; empty: host name and process id ("web-1-4711")."""
    mode: Literal["redundant", "sharded"] = "redundant"
    """"redundant": every replica runs every check; "sharded": each check runs on one."""
    heartbeat: Duration = 2.0
    """How often a replica renews what it holds; a delivery claim is leased for 3 heartbeats,
    so a dead replica's claims (and, sharded, its checks) move to another within that time."""
    siblings: tuple[str, ...] = ()
    """Sharded: the replicas started together with this one (`run --workers` sets its workers'
    names). Its first share of the checks waits until it sees them all alive, at most 3
    heartbeats after its first beat; empty: the first beat assigns."""

    @field_validator("replica")
    @classmethod
    def _replica(cls, value: str) -> str:
        if not _REPLICA.match(value):
            raise ValueError(
                f"replica must be at most 128 letters, digits, '_', '.', ':' or '-' (got {value!r})"
            )
        return value

    @field_validator("siblings")
    @classmethod
    def _siblings(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not name or not _REPLICA.match(name):
                raise ValueError(
                    "siblings must be replica names: 1 to 128 letters, digits, '_', '.', ':'"
                    f" or '-' (got {name!r})"
                )
        return value

    @field_validator("heartbeat")
    @classmethod
    def _heartbeat(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("heartbeat must be longer than 0s")
        return value

    def replica_name(self) -> str:
        """The configured name, or host name + process id when none is set."""
        return self.replica or f"{socket.gethostname()}-{os.getpid()}"

    @property
    def lease(self) -> float:
        """Seconds a delivery claim lasts without renewal: 3 heartbeats."""
        return 3 * self.heartbeat

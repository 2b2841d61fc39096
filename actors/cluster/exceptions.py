"""Exceptions of the cluster package.

ClusterError            every error raised by actors.cluster
└── FlushContended      other replicas kept changing a group's shared log (try again later)
"""

from __future__ import annotations

__all__ = ["ClusterError", "FlushContended"]


class ClusterError(Exception):
    """Base of every error raised by `actors.cluster`."""


class FlushContended(ClusterError):
    """A group's shared notification log changed under every attempt to flush it."""

    def __init__(self, group_key: str, attempts: int) -> None:
        self.group_key = group_key
        self.attempts = attempts
        super().__init__(
            f"group {group_key} changed under {attempts} attempts by other replicas; retrying"
        )

"""The interface between the check actor and the kind-specific probes."""

from __future__ import annotations

from typing import Protocol

from actors.checks.logic import Observation

__all__ = ["Probe"]


class Probe(Protocol):
    """One kind of check against one target.

    `probe()` runs once and returns an `Observation`; it may raise any `Exception` (the actor
    turns it into a failing result) and is cancelled by the actor's timeout. Probes keep their
    connections between runs and release them in `aclose()`.
    """

    async def probe(self) -> Observation:
        """Run the check once."""
        ...

    async def aclose(self) -> None:
        """Release connections; called once when the actor stops."""
        ...

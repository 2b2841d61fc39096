"""kind = "agents": the application's agents report in, recently, and mostly succeed.

Reads the telemetry package's agent registry (fed by agent_execution and heartbeat events). The
agents considered are `expected` plus any that reported; an expected agent that never reported is
"missing". An agent is healthy when seen within `max_silence` and its recent error ratio is at
most `max_error_ratio`. All healthy -> pass ("All 4 agents healthy"), otherwise fail naming them.
Details: activeAgents, totalAgents and, when some are not healthy, `unhealthy` {agent: status}.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from actors.checks.logic import Observation
from actors.clock import Clock, SystemClock

if TYPE_CHECKING:
    from actors.checks.config import AgentsCheckConfig

__all__ = ["AgentStatusView", "AgentsProbe", "AgentsView"]


class AgentStatusView(Protocol):
    """What the probe reads of one agent (telemetry's `AgentStatus`)."""

    @property
    def status(self) -> str:
        """ "healthy", "silent" or "failing"."""
        ...

    @property
    def recent_error_ratio(self) -> float:
        """Errors / executions over the registry's recent window."""
        ...


class AgentsView(Protocol):
    """What the probe reads of the agent registry (telemetry's `AgentRegistry`)."""

    def snapshot(
        self,
        now: float,
        *,
        max_silence: float | None = None,
        max_error_ratio: float | None = None,
    ) -> Mapping[str, AgentStatusView]:
        """Every agent's status at wall time `now`."""
        ...


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


class AgentsProbe:
    """Judges the agents from the registry; never does I/O."""

    def __init__(
        self, *, config: AgentsCheckConfig, registry: AgentsView, clock: Clock | None = None
    ) -> None:
        self._config = config
        self._registry = registry
        self._clock: Clock = clock or SystemClock()

    async def probe(self) -> Observation:
        """Read the registry and judge it (see the module docstring)."""
        config = self._config
        statuses = self._registry.snapshot(
            self._clock.now(),
            max_silence=config.max_silence,
            max_error_ratio=config.max_error_ratio,
        )
        names = list(config.expected) + sorted(set(statuses) - set(config.expected))
        unhealthy: dict[str, str] = {}
        for name in names:
            status = statuses.get(name)
            if status is None:
                unhealthy[name] = "missing"
            elif status.status != "healthy":
                label = status.status
                if status.status == "failing":
                    label = f"failing ({status.recent_error_ratio:.0%} errors)"
                unhealthy[name] = label
        total = len(names)
        active = total - len(unhealthy)
        details: dict[str, object] = {"activeAgents": active, "totalAgents": total}
        if not unhealthy:
            if total == 0:
                return Observation.ok("No agents expected or reporting", details)
            return Observation.ok(f"All {_plural(total, 'agent')} healthy", details)
        details["unhealthy"] = unhealthy
        listed = ", ".join(f"{name} {state}" for name, state in list(unhealthy.items())[:5])
        more = f" and {len(unhealthy) - 5} more" if len(unhealthy) > 5 else ""
        return Observation.fail(
            f"{len(unhealthy)} of {_plural(total, 'agent')} unhealthy: {listed}{more}", details
        )

    async def aclose(self) -> None:
        """Nothing to release."""

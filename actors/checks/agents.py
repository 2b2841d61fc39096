"""kind = "agents": the application's agents report in, recently, and mostly succeed.

Reads the telemetry package's agent registry (fed by agent_execution and heartbeat events). The
agents considered are `expected` plus any that reported; an expected agent that never reported is
"missing". An agent is healthy when seen within `max_silence` and its recent error ratio is at
most `max_error_ratio`. All healthy -> pass ("All 4 agents healthy"), otherwise fail naming them.
Details: activeAgents, totalAgents and, when some are not healthy, `unhealthy` {agent: status}.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, Protocol

from pydantic import Field

from actors.checks.config import CheckBase
from actors.checks.logic import Observation
from actors.checks.probe import CheckContext, KindProbe, lent
from actors.configtypes import Duration

__all__ = ["AgentStatusView", "AgentsCheckConfig", "AgentsProbe", "AgentsView"]


class AgentsCheckConfig(CheckBase):
    """kind = "agents": the agents that report in are alive and mostly succeed."""

    kind: Literal["agents"]
    expected: tuple[str, ...] = ()
    max_silence: Duration = 300.0
    max_error_ratio: float = Field(default=0.1, ge=0.0, le=1.0)


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


class AgentsProbe(KindProbe[AgentsCheckConfig]):
    """Judges the agents from the registry (the `CheckContext`'s `agents`); never does I/O.

    Raises:
        CheckError: (at construction) the context lends no agent registry.
    """

    def __init__(self, config: AgentsCheckConfig, context: CheckContext) -> None:
        super().__init__(config, context)
        self._registry: AgentsView = lent(context.agents, config, "the agent registry")

    async def probe(self) -> Observation:
        """Read the registry and judge it (see the module docstring)."""
        config = self.config
        statuses = self._registry.snapshot(
            self.context.clock.now(),
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

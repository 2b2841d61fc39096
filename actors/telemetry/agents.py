"""The agents that report in: what each did recently, and whether it looks alive and well.

Fed by `agent_execution` and `heartbeat` events (HTTP or the Python API, through `Telemetry`);
read by the health `agents` check and by `GET /api/v1/agents/status`. Plain data, one thread.

Per agent the registry keeps totals (executions, errors), last seen / last execution / last error
times, and per-`slot` second counts over the last `window` seconds for the recent error ratio.
`status()` classifies an agent with thresholds given by the reader (the check's own config):

- ``silent``: not seen (execution or heartbeat) for more than `max_silence`;
- ``failing``: recent error ratio above `max_error_ratio` (with at least one recent execution);
- ``healthy``: otherwise;
- ``missing``: `expected` (the configured `agents` checks' `expected` lists, set with `expect()`)
  but never reported; listed only when a reader asks for it (`snapshot(include_missing=True)`, as
  `GET /api/v1/agents/status` does), with no times and zero counts.

At most `max_agents` agents are tracked; reports from further unknown agents are counted in
`dropped` and ignored (agent names come from outside). Expected agents are always tracked (their
number is bounded by the configuration).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["MISSING", "AgentRegistry", "AgentStatus"]

MISSING = "missing"
"""The status of an expected agent that never reported."""


@dataclass(frozen=True, slots=True)
class AgentStatus:
    """One agent as readers see it. Times are wall seconds; None when it never happened.

    `last_seen` is None only for a ``missing`` agent (expected, never reported).
    """

    agent: str
    status: str
    last_seen: float | None
    last_execution: float | None
    last_error: float | None
    executions: int
    errors: int
    recent_executions: int
    recent_errors: int
    recent_error_ratio: float

    def to_json(self) -> dict[str, object]:
        """JSON-ready mapping (camelCase keys, as the seed's documents use)."""
        return {
            "agent": self.agent,
            "status": self.status,
            "lastSeen": self.last_seen,
            "lastExecution": self.last_execution,
            "lastError": self.last_error,
            "executions": self.executions,
            "errors": self.errors,
            "recentExecutions": self.recent_executions,
            "recentErrors": self.recent_errors,
            "recentErrorRatio": self.recent_error_ratio,
        }


class _Agent:
    __slots__ = ("errors", "executions", "last_error", "last_execution", "last_seen", "slots")

    def __init__(self, t: float) -> None:
        self.last_seen = t
        self.last_execution: float | None = None
        self.last_error: float | None = None
        self.executions = 0
        self.errors = 0
        # [slot index, executions, errors], oldest first
        self.slots: deque[list[int]] = deque()


class AgentRegistry:
    """Agents seen so far; see the module docstring."""

    def __init__(
        self,
        *,
        window: float = 300.0,
        slot: float = 10.0,
        max_agents: int = 1000,
        max_silence: float = 300.0,
        max_error_ratio: float = 0.1,
        expected: Iterable[str] = (),
    ) -> None:
        """`expected`: the agents that should report (see `expect`).

        Raises: ValueError: a non-positive window, slot or max_agents.
        """
        if window <= 0 or slot <= 0 or max_agents < 1:
            raise ValueError("window, slot and max_agents must be positive")
        self.window = window
        self.slot = slot
        self.max_agents = max_agents
        self.max_silence = max_silence
        self.max_error_ratio = max_error_ratio
        self.dropped = 0
        self._agents: dict[str, _Agent] = {}
        self._expected: tuple[str, ...] = ()
        self.expect(expected)

    @property
    def expected(self) -> tuple[str, ...]:
        """The agents that should report, in the order given, without duplicates."""
        return self._expected

    def expect(self, agents: Iterable[str]) -> None:
        """Replace the set of expected agents (at start and on reload).

        An expected agent that never reported is listed as ``missing`` by
        `snapshot(include_missing=True)`; one no longer expected and never seen disappears.
        What reported agents did is kept either way.
        """
        self._expected = tuple(dict.fromkeys(agents))

    def _get(self, agent: str, t: float) -> _Agent | None:
        entry = self._agents.get(agent)
        if entry is None:
            if len(self._agents) >= self.max_agents and agent not in self._expected:
                self.dropped += 1
                return None
            entry = self._agents[agent] = _Agent(t)
        return entry

    def heartbeat(self, agent: str, t: float) -> None:
        """`agent` is alive at wall time `t`."""
        entry = self._get(agent, t)
        if entry is not None and t > entry.last_seen:
            entry.last_seen = t

    def execution(self, agent: str, success: bool, t: float) -> None:
        """`agent` finished an execution at wall time `t` (failed when not `success`)."""
        entry = self._get(agent, t)
        if entry is None:
            return
        if t > entry.last_seen:
            entry.last_seen = t
        entry.last_execution = t
        entry.executions += 1
        failed = 0 if success else 1
        if failed:
            entry.errors += 1
            entry.last_error = t
        index = int(t // self.slot)
        slots = entry.slots
        if slots and slots[-1][0] >= index:
            slots[-1][1] += 1
            slots[-1][2] += failed
        else:
            slots.append([index, 1, failed])
            horizon = index - int(self.window // self.slot)
            while slots[0][0] <= horizon:
                slots.popleft()

    def __contains__(self, agent: object) -> bool:
        return agent in self._agents

    def __len__(self) -> int:
        return len(self._agents)

    def status(
        self,
        agent: str,
        now: float,
        *,
        max_silence: float | None = None,
        max_error_ratio: float | None = None,
    ) -> AgentStatus | None:
        """The status of `agent` at wall time `now`, or None if it never reported."""
        entry = self._agents.get(agent)
        if entry is None:
            return None
        silence = self.max_silence if max_silence is None else max_silence
        ratio_limit = self.max_error_ratio if max_error_ratio is None else max_error_ratio
        horizon = int(now // self.slot) - int(self.window // self.slot)
        recent = errors = 0
        for index, count, failed in entry.slots:
            if index > horizon:
                recent += count
                errors += failed
        ratio = errors / recent if recent else 0.0
        if now - entry.last_seen > silence:
            state = "silent"
        elif recent and ratio > ratio_limit:
            state = "failing"
        else:
            state = "healthy"
        return AgentStatus(
            agent=agent,
            status=state,
            last_seen=entry.last_seen,
            last_execution=entry.last_execution,
            last_error=entry.last_error,
            executions=entry.executions,
            errors=entry.errors,
            recent_executions=recent,
            recent_errors=errors,
            recent_error_ratio=ratio,
        )

    def snapshot(
        self,
        now: float,
        *,
        max_silence: float | None = None,
        max_error_ratio: float | None = None,
        include_missing: bool = False,
    ) -> dict[str, AgentStatus]:
        """Every agent's status at wall time `now`, by name (sorted).

        With `include_missing`, expected agents that never reported are included as ``missing``
        (the agents check leaves them out: it judges its own `expected` list).
        """
        names = set(self._agents)
        if include_missing:
            names.update(self._expected)
        out: dict[str, AgentStatus] = {}
        for agent in sorted(names):
            st = self.status(agent, now, max_silence=max_silence, max_error_ratio=max_error_ratio)
            out[agent] = st if st is not None else _missing(agent)
        return out


def _missing(agent: str) -> AgentStatus:
    return AgentStatus(
        agent=agent,
        status=MISSING,
        last_seen=None,
        last_execution=None,
        last_error=None,
        executions=0,
        errors=0,
        recent_executions=0,
        recent_errors=0,
        recent_error_ratio=0.0,
    )

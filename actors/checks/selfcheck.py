"""kind = "self": the supervision tree itself.

Reads a snapshot of the tree on every run (the `CheckContext`'s `tree`, a callable the
composition root lends, returning the runtime's `SupervisorInfo`). Per actor (path in the tree)
it remembers the restart counter, so it can tell how many restarts happened within
`RESTART_WINDOW`:
- fail: an actor is in the "failed" state (crashed and not restarted), or restarted at least
  `FAIL_RESTARTS` times within the window (a crash loop);
- warn: an actor restarted at least once within the window, or is waiting to be restarted, or
  the process cannot run its checks on time (the `CheckContext`'s `overload`, when lent);
- pass otherwise ("All 12 actors running").
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Literal, Protocol

from actors.checks.config import CheckBase
from actors.checks.logic import Observation
from actors.checks.probe import CheckContext, KindProbe, lent

__all__ = ["FAIL_RESTARTS", "RESTART_WINDOW", "SelfCheckConfig", "SelfProbe", "TreeView"]

RESTART_WINDOW = 300.0
FAIL_RESTARTS = 3


class SelfCheckConfig(CheckBase):
    """kind = "self": the supervision tree itself (actors failing or restarting repeatedly)."""

    kind: Literal["self"]


class TreeView(Protocol):
    """What the probe reads of the runtime's `SupervisorInfo`."""

    def walk(self, prefix: str = "") -> Iterator[tuple[str, Any]]:
        """(path, ChildInfo) for every actor of the tree."""
        ...


def _state(info: Any) -> str:
    state = getattr(info, "state", "")
    return str(getattr(state, "value", state))


class SelfProbe(KindProbe[SelfCheckConfig]):
    """Judges the supervision tree (the `CheckContext`'s `tree`); never does I/O.

    Raises:
        CheckError: (at construction) the context lends no supervision tree.
    """

    def __init__(self, config: SelfCheckConfig, context: CheckContext) -> None:
        super().__init__(config, context)
        self._tree: Callable[[], TreeView | None] = lent(
            context.tree, config, "the supervision tree"
        )
        self._history: dict[str, deque[tuple[float, int]]] = {}

    async def probe(self) -> Observation:
        """Snapshot the tree and judge it (see the module docstring)."""
        tree = self._tree()
        if tree is None:
            return Observation.ok("supervision tree not started yet", {"actors": 0})
        now = self.context.clock.monotonic()
        failed: list[str] = []
        looping: list[str] = []
        loops: dict[str, int] = {}
        restarting: list[str] = []
        total = 0
        seen: set[str] = set()
        for path, info in tree.walk():
            if getattr(info, "supervisor", None) is not None:
                continue  # nested supervisors are judged through their children
            total += 1
            seen.add(path)
            history = self._history.setdefault(path, deque())
            restarts = int(getattr(info, "restarts", 0))
            history.append((now, restarts))
            while history and history[0][0] < now - RESTART_WINDOW:
                history.popleft()
            recent = restarts - history[0][1] if history else 0
            state = _state(info)
            if state == "failed":
                failed.append(path)
            elif recent >= FAIL_RESTARTS:
                looping.append(path)
                loops[path] = recent
            elif recent > 0 or state == "restarting":
                restarting.append(path)
        for gone in set(self._history) - seen:
            del self._history[gone]
        details: dict[str, object] = {"actors": total}
        if failed or looping:
            details["failed"] = failed
            details["crash_looping"] = looping
            problems = [f"{p} failed" for p in failed] + [
                f"{p} crash-looping ({loops[p]} restarts in {RESTART_WINDOW:.0f}s)" for p in looping
            ]
            return Observation.fail("; ".join(problems[:5]), details)
        warnings: list[str] = []
        overload = self.context.overload() if self.context.overload is not None else None
        if overload is not None:
            details["overload"] = overload
            warnings.append(overload)
        if restarting:
            details["restarting"] = restarting
            warnings.append(
                f"{len(restarting)} of {total} actors restarted recently: "
                + ", ".join(restarting[:5])
            )
        if warnings:
            return Observation.warn("; ".join(warnings), details)
        return Observation.ok(f"All {total} actors running", details)

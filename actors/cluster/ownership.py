"""Which checks this replica runs in sharded mode: `Ownership`, recomputed at every beat.

The owner of a check is its rendezvous owner (`actors.cluster.rendezvous`) among the live
sharded replicas as this replica read them from the membership table at its last beat, its own
row included (it was written in the same transaction). Nothing else moves a check: not a
replica's start, not a peer's opinion. So two replicas disagree about a check only between
their beats, which bounds the time a check can run on two of them to one heartbeat; a replica
that joins takes its share at its first beat, and the others give it up at their next.

Until its first beat a replica owns nothing. A replica started together with others whose names
it knows (`siblings`: the workers of one `run --workers` parent) takes its first share only once
it has seen all of them alive, or `wait` seconds after its first beat (3 heartbeats: a sibling
not seen by then is as dead as a replica silent that long), whichever comes first; then it goes
on with whoever is alive. Without it, the worker that beats first sees only itself, takes every
check and hands most of them back at its next beat: each of those checks then runs on two
workers for up to a heartbeat, and their alerts are released and adopted for nothing. A replica
started on its own (no siblings) takes its share at its first beat.

When a beat fails (PostgreSQL unreachable), the last assignment stays: every check keeps running
somewhere, and a check whose owner died during the outage runs on its new owner once the
survivors read the table again.

Alerts follow the checks: a series or alert instance whose `check` label names a configured
check belongs to that check's owner (`evaluates`); one naming no check (the application's
metrics) belongs to every replica, as in redundant mode.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from actors.cluster.rendezvous import assign

__all__ = ["Change", "Ownership", "check_of"]


def check_of(labels: Mapping[str, str], checks: Iterable[str] | Mapping[str, object]) -> str | None:
    """The configured check that `labels` are about (their `check` label), or None."""
    name = labels.get("check")
    return name if name is not None and name in checks else None


@dataclass(frozen=True, slots=True)
class Change:
    """What a new assignment changed for this replica: checks it now runs, checks it gave up."""

    gained: frozenset[str] = frozenset()
    lost: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.gained or self.lost)


class Ownership:
    """This replica's share of the checks, as of its last beat. See the module docstring.

    Args:
        replica: this replica's name.
        checks: the configured check names.
        siblings: replicas started together with this one (its own name may be among them):
            its first share waits until it sees them all, at most `wait` seconds.
        wait: seconds after the first `update` past which the first share goes on without the
            siblings not seen (measured on the `now` the updates give).

    Listeners (`add_listener`) are called synchronously with every non-empty `Change`, in the
    task that made it (the heartbeat or a reload), before it returns.
    """

    def __init__(
        self,
        *,
        replica: str,
        checks: Iterable[str],
        siblings: Iterable[str] = (),
        wait: float = 0.0,
    ) -> None:
        self.replica = replica
        self._siblings = frozenset(siblings) - {replica}
        self._wait = wait
        self._first_update: float | None = None
        self.missing: frozenset[str] = frozenset()
        """The siblings not seen when the first share was taken (empty: all were, or none
        were expected; until then, those not yet seen)."""
        self._checks: dict[str, None] = dict.fromkeys(checks)
        self._members: tuple[str, ...] = ()
        self._shares: Mapping[str, tuple[str, ...]] = {}
        self._owners: dict[str, str] = {}
        self._owned: frozenset[str] = frozenset()
        self._listeners: list[Callable[[Change], None]] = []
        self.assigned = False
        """True once a beat has given this replica an assignment."""

    # -- readers ---------------------------------------------------------------------------

    @property
    def owned(self) -> frozenset[str]:
        """The checks this replica runs now."""
        return self._owned

    @property
    def members(self) -> tuple[str, ...]:
        """The live sharded replicas of the last assignment, by name."""
        return self._members

    @property
    def checks(self) -> tuple[str, ...]:
        """The configured checks, in configuration order."""
        return tuple(self._checks)

    def owns(self, check: str) -> bool:
        """Whether this replica runs `check` now."""
        return check in self._owned

    def owner_of(self, check: str) -> str | None:
        """The replica that runs `check` (None: not configured, or no assignment yet)."""
        return self._owners.get(check)

    def shares(self) -> Mapping[str, tuple[str, ...]]:
        """Every live sharded replica with the checks it runs (configuration order)."""
        return self._shares

    def evaluates(self, labels: Mapping[str, str]) -> bool:
        """Whether this replica evaluates a series or alert with `labels`: True unless their
        `check` label names a configured check that this replica does not run."""
        check = check_of(labels, self._checks)
        return check is None or check in self._owned

    def add_listener(self, listener: Callable[[Change], None]) -> None:
        """Call `listener(change)` after every change of this replica's share."""
        self._listeners.append(listener)

    # -- writers ---------------------------------------------------------------------------

    @property
    def waiting(self) -> bool:
        """Whether the first share is held until the siblings are seen (see the class)."""
        return not self.assigned and self._first_update is not None

    def update(self, members: Iterable[str], *, now: float = 0.0) -> Change:
        """Assign the checks over `members` (the live sharded replicas just read, this one
        included) at `now` (seconds on any steady clock); returns (and tells the listeners)
        what changed for this replica. Before the first share, while a sibling is not among
        `members` and fewer than `wait` seconds have passed since the first update, nothing is
        assigned (an empty change)."""
        live = set(members)
        if not self.assigned:
            if self._first_update is None:
                self._first_update = now
            self.missing = self._siblings - live
            if self.missing and now - self._first_update < self._wait:
                return Change()
        self._members = tuple(sorted(live))
        self.assigned = True
        return self._reassign()

    def configure(self, checks: Iterable[str]) -> Change:
        """Replace the configured checks (a reload). Other checks keep their owners: a check's
        owner depends only on its name and the members. A removed check is not reported as
        lost (it is not handed over: its alerts end as a removed check's do)."""
        self._checks = dict.fromkeys(checks)
        return self._reassign()

    def _reassign(self) -> Change:
        shares = assign(self._checks, self._members) if self.assigned else {}
        self._shares = shares
        self._owners = {check: member for member, owned in shares.items() for check in owned}
        owned = frozenset(shares.get(self.replica, ()))
        lost = (self._owned - owned) & self._checks.keys()
        change = Change(gained=owned - self._owned, lost=lost)
        self._owned = owned
        if change:
            for listener in tuple(self._listeners):
                listener(change)
        return change

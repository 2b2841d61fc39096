"""The interface between the check actor and the kind-specific probes, and what probes share.

`Probe` is what the actor runs. A check kind's probe is a `KindProbe`, built as
`KindProbe(config, context)`: it keeps its validated config model as `self.config` and reads its
keys from it. `CheckContext` is what the process lends every probe it builds (clock, metric store,
agent registry, supervision tree, TLS client contexts); a kind takes the parts it needs with
`lent()`, which names the missing collaborator instead of failing later. A probe that keeps a
connection to its target open may also be a `WatchingProbe`: the actor then waits on that
connection between runs and runs the check at once when the target closes or resets it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar, runtime_checkable

from actors.checks.config import CheckBase
from actors.checks.errors import CheckError
from actors.checks.logic import Observation
from actors.checks.tlscontext import ClientContexts
from actors.clock import Clock, SystemClock

if TYPE_CHECKING:
    import httpx
    import trio

    from actors.checks.agents import AgentsView
    from actors.checks.metric import MetricReader
    from actors.checks.selfcheck import TreeView
    from actors.checks.timer import CheckTimer

__all__ = [
    "CheckContext",
    "ClosingNowProbe",
    "ConfigT",
    "KindProbe",
    "Probe",
    "SocketWatchingProbe",
    "TimedProbe",
    "WatchingProbe",
    "close_stream_now",
    "lent",
]


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


@runtime_checkable
class TimedProbe(Probe, Protocol):
    """A probe that keeps the run's timeout itself, waiting on the process's `CheckTimer`.

    The actor, when it has a timer, calls `probe_within` instead of `probe()` under a cancel
    scope of its own: a cancel scope entered and left every run, and a cancellation at every
    timeout, cost more than the rest of a run's wait (see `actors.checks.timer`).
    """

    async def probe_within(self, deadline: float, timer: CheckTimer) -> Observation | None:
        """Run the check once, as `probe()` does, but done by the loop time `deadline`: None
        when the deadline passed first (the run timed out; its connection is given up).

        The probe waits on the network through `timer.wait(deadline, socket)`, or under a
        cancel scope of `deadline` where it cannot (it must not run past `deadline` by more
        than the timer's quantum). Raises as `probe()` does."""
        ...


@runtime_checkable
class WatchingProbe(Probe, Protocol):
    """A probe that keeps a connection to its target open between runs and can wait on it.

    The actor calls `wait_lost()` between runs only (never during `probe()`) and cancels it when
    the next run is due; it runs the check at once when `wait_lost()` returns (connection watch,
    `actors.checks.actor`).
    """

    async def wait_lost(self) -> None:
        """Return once the kept connection is lost: the target closed or reset it (or, where the
        protocol forbids it, sent bytes unasked). The connection is then given up, so a second
        call waits for the next run to open one. With no connection kept (none yet, the last run
        failed, or watching is off), sleep until cancelled. Cancelling leaves the connection
        usable. Raises nothing but `trio.Cancelled`."""
        ...


@runtime_checkable
class SocketWatchingProbe(WatchingProbe, Protocol):
    """A `WatchingProbe` that can name the socket of its kept connection, so that one watch
    (`actors.checks.timer.CheckTimer`) serves every check instead of a wait per check.

    The actor watches that socket between runs without reading it; when it turns readable, the
    actor calls `wait_lost()` (under the deadline of the next run), which tells a lost connection
    from bytes the protocol allows (a TLS session ticket)."""

    def watched_socket(self) -> trio.socket.SocketType | None:
        """The socket of the connection kept between runs, or None when none is kept (none
        yet, the last run failed, watching is off). Call it only between runs."""
        ...


@runtime_checkable
class ClosingNowProbe(Probe, Protocol):
    """A probe whose connections close without waiting for anything (their sockets are closed,
    no goodbye on the wire), so that the actor releases them on its way out without a
    checkpoint: a shielded scope with a deadline of its own around `aclose()`, for each of
    thousands of checks stopping together, costs more than the closing itself."""

    def close_now(self) -> bool:
        """Release the connections at once, without a checkpoint, if this probe can; True when
        it did (`aclose()` then has nothing left to do), False when `aclose()` must be awaited
        (e.g. a test transport that closes asynchronously). Raises nothing."""
        ...


def close_stream_now(stream: trio.abc.Stream) -> None:
    """Close the socket under `stream` (a `trio.SocketStream`, or a `trio.SSLStream` over one)
    at once, as `trio.aclose_forcefully` does, without its checkpoint and without a TLS
    goodbye."""
    import trio  # loaded by then: every stream is trio's

    raw = stream.transport_stream if isinstance(stream, trio.SSLStream) else stream
    if isinstance(raw, trio.SocketStream):
        raw.socket.close()


@dataclass(frozen=True, kw_only=True)
class CheckContext:
    """What the process lends every probe it builds; each kind uses the parts it needs.

    The composition root builds one per check from the same collaborators, so every probe shares
    them (one `ClientContexts` for all: each TLS context holds its own copy of the CA store).

    Attributes:
        clock: the time source (certificate expiry, agent silence, metric windows).
        tls: the TLS client contexts, one per verification mode (default: a new
            `ClientContexts`, system CA store, shared by the probes built with this context).
        store: the metric store, read by `metric` checks (None: not lent).
        agents: the agent registry, read by `agents` checks (None: not lent).
        tree: returns the root supervisor's snapshot, or None before it runs; read by `self`
            checks (None: not lent).
        transport: an httpx transport that replaces the network of `http` checks (tests, e.g.
            `httpx.MockTransport`; None: the network).
        overload: returns why the process cannot run its checks on time, or None while it keeps
            up; read by `self` checks (None: not lent).
    """

    clock: Clock = field(default_factory=SystemClock)
    tls: ClientContexts = field(default_factory=ClientContexts)
    store: MetricReader | None = None
    agents: AgentsView | None = None
    tree: Callable[[], TreeView | None] | None = None
    transport: httpx.AsyncBaseTransport | None = None
    overload: Callable[[], str | None] | None = None


CollaboratorT = TypeVar("CollaboratorT")


def lent(collaborator: CollaboratorT | None, config: CheckBase, what: str) -> CollaboratorT:
    """`collaborator`, taken from a `CheckContext` by the probe of `config`, when it was lent.

    Raises:
        CheckError: `collaborator` is None: "check NAME (KIND) needs WHAT, which the process
            did not lend it".
    """
    if collaborator is None:
        raise CheckError(
            f"check {config.name} ({config.kind}) needs {what}, which the process did not lend it"
        )
    return collaborator


ConfigT = TypeVar("ConfigT", bound=CheckBase)
"""The config model of a check kind."""


class KindProbe(Generic[ConfigT]):
    """Base of the check kinds' probes: built as `KindProbe(config, context)`.

    The probe keeps its config model (`self.config`) and reads its keys from it, rather than
    taking a copy of each as a keyword argument; what the process lends is `self.context`.
    Subclasses implement `probe()` (see `Probe`) and, when they hold connections, `aclose()`.

    Attributes:
        config: the check's [[checks]] table, validated.
        context: what the process lends the probe (`CheckContext`).
    """

    def __init__(self, config: ConfigT, context: CheckContext) -> None:
        self.config = config
        self.context = context

    async def probe(self) -> Observation:
        """Run the check once (see `Probe.probe`)."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release connections; nothing by default."""

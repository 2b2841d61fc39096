"""`CheckActor`: the supervised loop that runs one configured check on its interval.

Each configured check is one cheap trio task: it sleeps until its next scheduled run (a timer in
trio's deadline heap, no polling), runs the probe inside a cancel scope of `timeout`, folds the
observation through the pure logic of `actors.checks.logic` and publishes the result to the
`HealthState`. A probe that raises, hangs or answers garbage yields a failing result; the actor
itself only dies on programming errors (then its supervisor restarts it). The secrets of the
check's config (credential headers, URL passwords, secret-typed keys) are cut out of every
result's message, also where an error quotes them escaped (`actors.secrets.redact`).

Scheduling (`actors.checks.cadence.Cadence`): each check has a fixed phase within its interval,
from a hash of its name, and runs on that grid, so the checks of one interval spread evenly over
it; the first run comes within the first second (readiness waits for the first round). A run
that overruns its interval skips the slots it missed instead of piling up.

Connection watch: when the probe is a `WatchingProbe` (it keeps a connection to its target open),
the actor waits on that connection between runs; when the target closes or resets it (the process
died), the check runs at once instead of at its next slot. An early run leaves the schedule as it
was, and at most one comes per interval: a target that closes idle connections by policy gets one
extra (passing) run at most per interval, never a loop. The probe re-arms the watch only once a
run has opened a new connection.

Waiting: with a `CheckTimer` (`actors.checks.timer`, one for every check of the process) the
actor parks on it until its run is due or its probe's socket turns readable; without one, it
waits with a trio deadline of its own (every wait then ends in a cancellation, the dearer way).
With a timer, a `TimedProbe` (http) keeps the run's timeout itself, its waits on the network
parked on the timer until the same deadline (`probe_within`), instead of running under a cancel
scope the actor enters and leaves every run; other probes run under that scope.

Lateness (`actors.checks.schedule.Lateness`, when given): each run tells it how late it started
and how many slots it skipped; a scheduled run that times out while the monitor itself was late
is withheld (no result: the target is not reported failing for the monitor's delay), and while
the monitor runs late a scheduled probe's deadline is extended by that lateness.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import trio

from actors.checks.cadence import FIRST_ROUND, Cadence
from actors.checks.errors import describe_error
from actors.checks.logic import Observation, ThresholdState, evaluate
from actors.checks.probe import ClosingNowProbe, SocketWatchingProbe, TimedProbe, WatchingProbe
from actors.clock import Clock, SystemClock, VirtualClock
from actors.configtypes import format_duration
from actors.models import CheckResult, CheckStatus
from actors.secrets import config_secrets, redact

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

    from actors.checks.config import CheckBase
    from actors.checks.probe import Probe
    from actors.checks.schedule import Lateness
    from actors.checks.timer import CheckTimer
    from actors.state import HealthState

__all__ = ["CheckActor", "CheckActorStatistics"]


@dataclass(frozen=True, slots=True)
class CheckActorStatistics:
    """Counters of one check actor (`CheckActor.statistics()`)."""

    runs: int
    failures: int
    timeouts: int
    max_lateness: float
    last_result: CheckResult | None
    early_runs: int = 0
    """Runs made at once because the watched connection was lost (connection watch)."""


class CheckActor:
    """Runs one check forever: `await actor.run(task_status=...)` under a supervisor.

    Collaborators: `health` receives every result; `clock` gives wall time for timestamps and the
    loop's time for scheduling; `tracer` (OpenTelemetry) gets one span per run (none with a
    `NoOpTracer`, the monitor's when tracing is off);
    `on_lateness(seconds)` is told how late each run started (benchmarks); `schedule`
    keeps the process's lateness and judges timeouts (see the module docstring); the first run
    comes within `first_round` seconds (at most the interval; `actors.checks.cadence`);
    `timer` (one for all the checks, running) wakes the actor for its runs and watches its
    probe's connection instead of a deadline of the actor's own (see the module docstring).
    """

    def __init__(
        self,
        *,
        config: CheckBase,
        probe: Probe,
        health: HealthState,
        clock: Clock | None = None,
        tracer: Tracer | None = None,
        on_lateness: Callable[[float], None] | None = None,
        schedule: Lateness | None = None,
        first_round: float = FIRST_ROUND,
        timer: CheckTimer | None = None,
    ) -> None:
        self.config = config
        self.probe = probe
        self._health = health
        self._clock: Clock = clock or SystemClock()
        # The loop's time, read from trio at once where the clock is the loop's (as the system
        # and virtual clocks are): the clock's own call goes through anyio's backend lookup.
        self._monotonic: Callable[[], float] = (
            trio.current_time
            if type(self._clock) in (SystemClock, VirtualClock)
            else self._clock.monotonic
        )
        # The monitor passes a `NoOpTracer` when no traces endpoint is configured: its spans
        # record nothing, so a run makes none (a span object per run for nothing).
        self._tracer = None if tracer is None or _no_op(tracer) else tracer
        self.cadence = Cadence.of(config.name, config.interval)
        self._first_round = first_round
        self._on_lateness = on_lateness
        self._schedule = schedule
        self._threshold = ThresholdState()
        self._runs = 0
        self._failures = 0
        self._timeouts = 0
        self._max_lateness = 0.0
        self._last: CheckResult | None = None
        self._watch = probe.wait_lost if isinstance(probe, WatchingProbe) else None
        self._close_now = probe.close_now if isinstance(probe, ClosingNowProbe) else None
        # With a timer, the actor waits on it (no deadline of its own), the probe's socket
        # watched by it; a watching probe that cannot name its socket keeps the wait of its own.
        self._timer = timer
        self._watched: Callable[[], trio.socket.SocketType | None] | None = None
        if timer is not None and self._watch is not None:
            if timer.watching and isinstance(probe, SocketWatchingProbe):
                self._watched = probe.watched_socket
            else:
                self._timer = None
        # The timer a `TimedProbe` waits on (it watches its socket: a watching timer only).
        self._probe_timer = timer if timer is not None and timer.watching else None
        self._timed_for: Probe | None = None
        self._timed: Callable[[float, CheckTimer], Awaitable[Observation | None]] | None = None
        self._last_early = -math.inf
        self._early_runs = 0
        # Cut out of every message, which the API, the status page and the log show.
        self._secrets = tuple(config_secrets(config))

    @property
    def name(self) -> str:
        """The check's name (the actor's name in the supervision tree is `check:<name>`)."""
        return self.config.name

    def statistics(self) -> CheckActorStatistics:
        """Counters since the actor was created."""
        return CheckActorStatistics(
            runs=self._runs,
            failures=self._failures,
            timeouts=self._timeouts,
            max_lateness=self._max_lateness,
            last_result=self._last,
            early_runs=self._early_runs,
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the check on its interval until cancelled; closes the probe on the way out."""
        cadence = self.cadence
        monotonic = self._monotonic
        try:
            task_status.started()
            due = cadence.first(monotonic(), self._first_round)
            first = True
            while True:
                if await self._wait_for_run(due):
                    await self.run_once()  # the watched connection was lost; the schedule stays
                    continue
                late = monotonic() - due
                if late > self._max_lateness:
                    self._max_lateness = late
                if self._on_lateness is not None:
                    self._on_lateness(late)
                schedule = self._schedule
                if schedule is not None:
                    schedule.ran(late, due + late, first=first)
                first = False
                if self._tracer is None:
                    await self._run_once(True)  # no span: one coroutine less per run
                else:
                    await self._traced(withhold_late=True)
                now = monotonic()
                due, missed = cadence.following(due, now)
                if missed and schedule is not None:  # overran: the missed slots are skipped
                    schedule.skipped(missed, "overrun", now)
        finally:
            # A `ClosingNowProbe` closes its sockets at once: no checkpoint, no shielded scope
            # with a deadline per actor (thousands of checks stop together); other probes are
            # awaited, shielded, for at most 2 s.
            close_now = self._close_now
            if close_now is None or not close_now():
                with trio.CancelScope(shield=True) as scope:
                    scope.deadline = trio.current_time() + 2.0
                    await self.probe.aclose()

    async def _wait_for_run(self, due: float) -> bool:
        """Sleep until `due`; True when the run must come at once instead: the probe's watched
        connection was lost and no early run came within the last interval."""
        timer = self._timer
        if timer is not None:
            watched = self._watched
            if not await timer.wait(due, None if watched is None else watched()):
                return False
            # The kept connection turned readable: `wait_lost` tells (at once, unless it is a
            # TLS session ticket) whether it is lost.
        watch = self._watch
        if watch is not None:
            with trio.move_on_at(due) as scope:
                await watch()
                now = self._monotonic()
                if now - self._last_early >= self.config.interval:
                    self._last_early = now
                    self._early_runs += 1
                    return True
            if scope.cancelled_caught:
                return False  # due: a second sleep would cost a second expiry for nothing
        await trio.sleep_until(due)
        return False

    async def run_once(self) -> CheckResult:
        """Run the probe once (with the timeout), publish and return the result."""
        result = await self._traced(withhold_late=False)
        assert result is not None  # only scheduled runs are withheld
        return result

    async def _traced(self, *, withhold_late: bool) -> CheckResult | None:
        if self._tracer is None:
            return await self._run_once(withhold_late)
        with self._tracer.start_as_current_span(
            "check " + self.config.name,
            attributes={"check.name": self.config.name, "check.kind": _kind(self.config)},
        ) as span:
            result = await self._run_once(withhold_late)
            if result is None:
                span.set_attribute("check.withheld", True)
                return None
            span.set_attribute("check.status", result.status.value)
            span.set_attribute("check.latency_seconds", result.latency_seconds)
            return result

    async def _run_once(self, withhold_late: bool) -> CheckResult | None:
        config = self.config
        clock = self._clock
        start = self._monotonic()
        observation: Observation | None = None
        grace = 0.0
        if withhold_late and self._schedule is not None:
            grace = self._schedule.grace(start, config.timeout)
        probe = self.probe
        if probe is not self._timed_for:  # the probe can be replaced (tests, benchmarks)
            self._timed_for = probe
            self._timed = None
            if self._probe_timer is not None and isinstance(probe, TimedProbe):
                self._timed = probe.probe_within
        timed_out = False
        if self._timed is not None:
            assert self._probe_timer is not None
            deadline = trio.current_time() + config.timeout + grace
            try:
                observation = await self._timed(deadline, self._probe_timer)
            except Exception as exc:
                observation = Observation.fail(describe_error(exc))
            timed_out = observation is None
        else:
            with trio.move_on_after(config.timeout + grace) as scope:
                try:
                    observation = await probe.probe()
                except Exception as exc:
                    observation = Observation.fail(describe_error(exc))
            deadline = scope.deadline
            timed_out = observation is None or scope.cancelled_caught
        if observation is None or timed_out:
            fired_late = trio.current_time() - deadline
            if withhold_late and self._late_timeout(start, fired_late, grace):
                return None
            self._timeouts += 1
            observation = Observation.fail(f"timed out after {format_duration(config.timeout)}")
        if self._secrets and observation.message:
            observation = replace(observation, message=redact(observation.message, self._secrets))
        elapsed = self._monotonic() - start
        latency = observation.latency if observation.latency is not None else elapsed
        failing = []
        for dep in config.depends_on:
            current = self._health.current(dep)
            if current is not None and current.status is CheckStatus.FAIL:
                failing.append(dep)
        result, self._threshold = evaluate(
            check=config.name,
            observation=observation,
            latency=latency,
            timestamp=clock.now(),
            state=self._threshold,
            failure_threshold=config.failure_threshold,
            success_threshold=config.success_threshold,
            warn_latency=config.warn_latency,
            critical=config.critical,
            failing_dependencies=failing,
        )
        self._runs += 1
        if result.status is CheckStatus.FAIL:
            self._failures += 1
        self._last = result
        self._health.publish(result)
        return result

    def _late_timeout(self, start: float, fired_late: float, grace: float) -> bool:
        """Whether a timeout is the monitor's (see `Lateness.monitor_was_late`); if so it is
        counted as a skipped run."""
        schedule = self._schedule
        if schedule is None:
            return False
        now = self._monotonic()
        if not schedule.monitor_was_late(
            start=start, now=now, fired_late=fired_late, timeout=self.config.timeout, grace=grace
        ):
            return False
        schedule.skipped(1, "late", now)
        return True


def _no_op(tracer: Tracer) -> bool:
    """Whether `tracer` is OpenTelemetry's `NoOpTracer` (imported only when a tracer is given:
    opentelemetry is then loaded already)."""
    from opentelemetry.trace import NoOpTracer

    return isinstance(tracer, NoOpTracer)


def _kind(config: CheckBase) -> str:
    return str(getattr(config, "kind", "unknown"))

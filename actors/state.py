"""The health state: the latest result of every check, read by the web actor and the rules.

Checks `publish()` their results here; readers take `HealthState.snapshot`, an immutable
`HealthSnapshot` built from the current results. One thread, one event loop, no locks: a publish
updates private per-check entries and drops the cached snapshot in one assignment; the next read
builds a new frozen snapshot (so a burst of publishes costs one rebuild, not one per publish).

Every configured check is listed from the first second: one that has not reported yet is
*pending* (`HealthSnapshot.pending`; shown as `PENDING` with the message `NOT_RUN_YET`). A
pending check counts for nothing in the overall status.

Overall status (`HealthSnapshot.status`), in the order an operator reads it:
- ``unhealthy``: at least one *critical* check reports fail;
- ``degraded``: a non-critical check reports fail, or any check reports warn;
- ``healthy``: otherwise (including when no check is configured or none has run yet).

Readiness (`HealthSnapshot.readiness()`): started (every critical check has reported at least once,
or `mark_started()` was called), no critical check fails, the process keeps up with its checks
(`set_overload`), no condition is set (`set_condition`: e.g. "storage" while the database fails)
and not draining. So a pending critical
check holds readiness only during start-up ("starting: waiting for the first run of ..."); once
started, a critical check that a reload adds is pending without failing readiness (every replica
reloads the same file at once: failing them all until the new check's first run would take the
whole service out of traffic for no observed failure). A pending non-critical check never counts.

On `configure()` (reload) a new check is pending at once and a removed one disappears; a result
that a removed check's actor still publishes while it is being stopped is ignored (until a later
configuration names the check again), so the removed check does not come back.

Each publish records, when a metric recorder is given:
- ``health_check_up{check}``: 1 for pass/warn, 0 for fail (gauge; rules alert on it);
- ``health_check_duration_seconds{check}``: run latency (histogram);
- ``health_check_runs_total{check,result}``: runs by observed outcome (counter).

They are declared with a `HEALTH_METRICS_RESOLUTION` slot: a check faster than that folds its
runs into one point per slot (the store keeps a slot's last, min, max, sum and count, so `last`,
`absent`, `min`, `max`, `avg`, `count` and `increase` stay exact; percentiles are approximated),
so 200 checks every second hold a tenth of the points over the store's retention.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from actors.clock import Clock, SystemClock
from actors.models import CheckResult, CheckStatus
from actors.telemetry.protocols import BoundSample, MetricBinder, MetricWriter

__all__ = [
    "CHECK_DURATION_BUCKETS",
    "HEALTH_METRICS_RESOLUTION",
    "NOT_RUN_YET",
    "PENDING",
    "HealthSnapshot",
    "HealthState",
    "OverallStatus",
    "Readiness",
    "ResultListener",
    "TransitionListener",
    "overall_status",
]

HEALTH_METRICS_RESOLUTION = 10.0
"""Seconds per slot of the health_check_* series (the default check interval: one point a run)."""

CHECK_DURATION_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    10.0,
)
"""Bounds of health_check_duration_seconds: below 5 ms is the local network's floor, and past
2.5 s only "slow" or "timed out" matters; 11 bucket lines per check instead of 14."""

_NAMED = 10
"""Checks named in one readiness reason; the rest are counted (thousands of names help no one)."""

PENDING = "pending"
"""The status shown for a configured check that has not reported yet (never counted as failing)."""

NOT_RUN_YET = "not run yet"
"""The message shown for a pending check."""

TransitionListener = Callable[[CheckResult, CheckResult | None], None]
"""Called with (new result, previous result or None) when a check's reported status changes."""

ResultListener = Callable[[CheckResult], None]
"""Called with every result a check publishes (the history records each run)."""


class OverallStatus:
    """The three overall states of `/api/health` (strings, as in the seed's document)."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"


def overall_status(results: Iterable[CheckResult]) -> str:
    """Aggregate check results: unhealthy > degraded > healthy (see the module docstring)."""
    degraded = False
    for result in results:
        if result.status is CheckStatus.FAIL:
            if result.critical:
                return OverallStatus.UNHEALTHY
            degraded = True
        elif result.status is CheckStatus.WARN:
            degraded = True
    return OverallStatus.DEGRADED if degraded else OverallStatus.HEALTHY


@dataclass(frozen=True, slots=True)
class Readiness:
    """Whether the process should receive traffic, and why not."""

    ready: bool
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    """An immutable view of every check at one moment.

    `results` holds the latest result per check name (only checks that have run), `history` the
    most recent results per check, oldest first (bounded by the state's `history_size`).
    `configured` maps every configured check name to its `critical` flag, in configuration order.
    `started_at` is the wall time the state was created (the monitor's start). `overload` says
    why the process cannot run its checks on time (None while it keeps up).
    """

    results: Mapping[str, CheckResult]
    history: Mapping[str, tuple[CheckResult, ...]]
    configured: Mapping[str, bool]
    started: bool
    draining: bool
    started_at: float
    version: int = 0
    overload: str | None = None
    conditions: Mapping[str, str] = field(default_factory=dict)
    status: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", overall_status(self.results.values()))

    @property
    def pending(self) -> tuple[str, ...]:
        """Configured checks that have not reported yet, in configuration order."""
        return tuple(name for name in self.configured if name not in self.results)

    @property
    def names(self) -> tuple[str, ...]:
        """Every check to list: the configured ones in order, then any other that reported."""
        others = [name for name in self.results if name not in self.configured]
        return (*self.configured, *others)

    def readiness(self) -> Readiness:
        """Ready when started, no critical check fails, the process keeps up with its checks,
        no condition is set and not draining; else the reasons (a condition as "name: reason")."""
        reasons: list[str] = []
        if self.draining:
            reasons.append("shutting down")
        if self.overload is not None:
            reasons.append(self.overload)
        reasons.extend(f"{name}: {reason}" for name, reason in self.conditions.items())
        if not self.started:
            waiting = [
                name
                for name, critical in self.configured.items()
                if critical and name not in self.results
            ]
            if waiting:
                named = ", ".join(waiting[:_NAMED])
                if len(waiting) > _NAMED:
                    named += f" and {len(waiting) - _NAMED} more"
                reasons.append("starting: waiting for the first run of " + named)
            else:
                reasons.append("starting")
        for name, result in self.results.items():
            if result.critical and result.status is CheckStatus.FAIL:
                reasons.append(f"critical check {name} fails: {result.message}")
        return Readiness(ready=not reasons, reasons=tuple(reasons))


class HealthState:
    """Keeps the latest check results and hands out immutable snapshots.

    `checks` maps each configured check name to its `critical` flag (configuration order).
    `recorder` (the metric store) receives health_check_* metrics; they are declared here.
    Listeners registered with `add_listener` are called synchronously, in the publishing task,
    when a check's reported status changes (including its first result); a listener that
    raises is a programming error and propagates to the publisher.
    """

    def __init__(
        self,
        *,
        checks: Mapping[str, bool] | None = None,
        recorder: MetricWriter | None = None,
        clock: Clock | None = None,
        history_size: int = 20,
    ) -> None:
        if history_size < 1:
            raise ValueError("history_size must be at least 1")
        self._clock: Clock = clock or SystemClock()
        self._configured: dict[str, bool] = dict(checks or {})
        self._removed: set[str] = set()
        self._recorder = recorder
        self._history_size = history_size
        self._results: dict[str, CheckResult] = {}
        self._history: dict[str, tuple[CheckResult, ...]] = {}
        # Sharded replicas: checks another replica runs, and their results as it stored them.
        self._elsewhere: frozenset[str] = frozenset()
        self._remote: dict[str, CheckResult] = {}
        self._listeners: list[TransitionListener] = []
        self._result_listeners: list[ResultListener] = []
        self._started = False
        self._draining = False
        self._overload: str | None = None
        self._conditions: dict[str, str] = {}
        self._started_at = self._clock.now()
        self._version = 0
        self._snapshot: HealthSnapshot | None = None
        # Critical checks that have not reported yet: a result removes its name, so the
        # start-up bookkeeping is O(1) per result (a scan of every check per result made the
        # first round of thousands of checks quadratic).
        self._awaited: set[str] = set()
        # Per check, its health_check_* series bound once (a store that binds: `MetricBinder`):
        # up, duration, runs by result (made on first use); forgotten with the check.
        # (a writer that cannot bind records each sample by name, through `_Unbound`).
        self._binder: MetricBinder | None = None
        if isinstance(recorder, MetricBinder):
            self._binder = recorder
        elif recorder is not None:
            self._binder = _Unbound(recorder)
        self._bound: dict[str, _CheckSeries] = {}
        self._check_started()
        if recorder is not None:
            recorder.declare(
                "health_check_up",
                "gauge",
                "1 when the check passes or warns, 0 when it fails.",
                ("check",),
                resolution=HEALTH_METRICS_RESOLUTION,
            )
            recorder.declare(
                "health_check_duration_seconds",
                "histogram",
                "Duration of health check runs in seconds.",
                ("check",),
                CHECK_DURATION_BUCKETS,
                resolution=HEALTH_METRICS_RESOLUTION,
            )
            recorder.declare(
                "health_check_runs_total",
                "counter",
                "Health check runs by observed result (pass, warn, fail).",
                ("check", "result"),
                resolution=HEALTH_METRICS_RESOLUTION,
            )

    # -- writers -------------------------------------------------------------------------------

    def configure(self, checks: Mapping[str, bool]) -> None:
        """Replace the set of configured checks (on reload).

        New checks are pending at once; removed checks go with their results and history, and
        later results published under their names are ignored until a configuration names them
        again (their actors may still publish while being stopped).
        """
        removed = set(self._configured) - set(checks)
        self._removed = (self._removed | removed) - set(checks)
        self._configured = dict(checks)
        for name in list(self._results):
            if name not in self._configured:
                del self._results[name]
                self._history.pop(name, None)
        for name in list(self._bound):
            if name not in self._configured:
                del self._bound[name]
        self._invalidate()
        self._check_started()

    def publish(self, result: CheckResult) -> None:
        """Make `result` the current one for its check, append it to the history, record metrics.

        A result of a check removed by `configure()` is ignored (see there).

        Raises whatever a transition listener or the recorder raises (programming errors).
        """
        name = result.check
        if name in self._removed:
            return
        previous = self._results.get(name)
        self._results[name] = result
        history = self._history.get(name, ())
        if len(history) >= self._history_size:
            history = history[len(history) - self._history_size + 1 :]
        self._history[name] = (*history, result)
        self._invalidate()
        if not self._started:
            self._awaited.discard(name)
            if not self._awaited:
                self._started = True
        binder = self._binder
        if binder is not None:
            bound = self._bound.get(name)
            if bound is None:
                bound = self._bound[name] = _CheckSeries(binder, name)
            bound.record(result)
        for observer in tuple(self._result_listeners):
            observer(result)
        if previous is None or previous.status is not result.status:
            for listener in tuple(self._listeners):
                listener(result, previous)

    def release(self, names: Iterable[str]) -> None:
        """Forget this process's results and history of `names`: another replica runs these
        checks now (sharded replicas), and its results (`set_remote`) stand in for them."""
        for name in names:
            self._results.pop(name, None)
            self._history.pop(name, None)
        self._invalidate()

    def set_remote(self, elsewhere: Iterable[str], results: Mapping[str, CheckResult]) -> None:
        """Sharded replicas: `elsewhere` are the configured checks another replica runs (the
        start-up does not wait for them here), `results` their latest results as that replica
        stored them. A check's own result, once published here, always wins over a remote
        one (the remote view lags)."""
        self._elsewhere = frozenset(elsewhere)
        remote = {name: r for name, r in results.items() if name in self._elsewhere}
        if remote != self._remote:
            self._remote = remote
            self._invalidate()
        if not self._started and self._awaited & self._elsewhere:
            self._awaited -= self._elsewhere
            if not self._awaited:
                self._started = True
                self._invalidate()

    def mark_started(self) -> None:
        """Declare the start-up done even if some critical check has not reported yet."""
        self._started = True
        self._invalidate()

    def set_overload(self, reason: str | None) -> None:
        """Fail readiness with `reason` while the process cannot run its checks on time
        (None: it keeps up); see `actors.checks.schedule.Lateness`."""
        self._overload = reason
        self._invalidate()

    def begin_draining(self) -> None:
        """Fail readiness from now on (graceful shutdown: traffic drains before the stop)."""
        self._draining = True
        self._invalidate()

    def set_condition(self, name: str, reason: str | None) -> None:
        """Fail readiness with "name: reason" (a component of the process itself is down, e.g.
        "storage"), or clear `name` when `reason` is None. Cheap when nothing changes."""
        if self._conditions.get(name) == reason:
            return
        if reason is None:
            del self._conditions[name]
        else:
            self._conditions[name] = reason
        self._invalidate()

    def add_listener(self, listener: TransitionListener) -> None:
        """Call `listener(new, previous)` whenever a check's reported status changes."""
        self._listeners.append(listener)

    def add_result_listener(self, listener: ResultListener) -> None:
        """Call `listener(result)` with every published result (after it became the current
        one; ignored results of removed checks are not passed on). Synchronous, in the
        publishing task: a listener must be quick and must not raise."""
        self._result_listeners.append(listener)

    # -- readers -------------------------------------------------------------------------------

    @property
    def snapshot(self) -> HealthSnapshot:
        """The current immutable snapshot (rebuilt only after a change)."""
        snap = self._snapshot
        if snap is None:
            results, history = self._results, self._history
            if self._remote:
                remote = {n: r for n, r in self._remote.items() if n not in results}
                results = {**remote, **results}
                history = {**{n: (r,) for n, r in remote.items()}, **history}
            snap = HealthSnapshot(
                results=MappingProxyType(dict(results)),
                history=MappingProxyType(dict(history)),
                configured=MappingProxyType(dict(self._configured)),
                started=self._started,
                draining=self._draining,
                started_at=self._started_at,
                version=self._version,
                overload=self._overload,
                conditions=MappingProxyType(dict(self._conditions)),
            )
            self._snapshot = snap
        return snap

    def current(self, name: str) -> CheckResult | None:
        """The latest result of check `name`, without building a snapshot (cheap); a check
        another replica runs: its latest stored result."""
        result = self._results.get(name)
        return self._remote.get(name) if result is None else result

    @property
    def started(self) -> bool:
        """True once the first round of critical checks is done (or `mark_started()`)."""
        return self._started

    @property
    def draining(self) -> bool:
        """True once `begin_draining()` was called."""
        return self._draining

    def uptime(self) -> float:
        """Seconds since this state (the monitor) started, by the wall clock."""
        return max(0.0, self._clock.now() - self._started_at)

    # -- internals -----------------------------------------------------------------------------

    def _invalidate(self) -> None:
        self._version += 1
        self._snapshot = None

    def _check_started(self) -> None:
        """Recount the critical checks still awaited (on construction and on reload)."""
        if self._started:
            return
        self._awaited = {
            name
            for name, critical in self._configured.items()
            if critical and name not in self._results and name not in self._elsewhere
        }
        if not self._awaited:
            self._started = True


class _CheckSeries:
    """One check's health_check_* series, bound once (`MetricBinder.bind`): a publish records
    its three samples without resolving metrics, labels or series."""

    __slots__ = ("_binder", "_duration", "_name", "_runs", "_up")

    def __init__(self, binder: MetricBinder, name: str) -> None:
        labels = {"check": name}
        self._binder = binder
        self._name = name
        self._up = binder.bind("health_check_up", labels)
        self._duration = binder.bind("health_check_duration_seconds", labels)
        self._runs: dict[CheckStatus, BoundSample] = {}

    def record(self, result: CheckResult) -> None:
        """The samples of `result` (as `HealthState.publish` documents), at the store's time."""
        self._up.record(0.0 if result.status is CheckStatus.FAIL else 1.0)
        latency = result.latency_seconds
        if math.isfinite(latency) and latency >= 0:
            self._duration.record(latency)
        observed = result.observed
        runs = self._runs.get(observed)
        if runs is None:
            runs = self._runs[observed] = self._binder.bind(
                "health_check_runs_total", {"check": self._name, "result": observed.value}
            )
        runs.record(1.0)


class _Unbound:
    """A `MetricBinder` over a writer that cannot bind: each sample is recorded by name and
    labels (`MetricWriter.record`)."""

    __slots__ = ("_writer",)

    def __init__(self, writer: MetricWriter) -> None:
        self._writer = writer

    def bind(self, name: str, labels: Mapping[str, str] | None = None) -> BoundSample:
        """A sample of `name` with `labels`, recorded through the writer each time."""
        return _UnboundSample(self._writer, name, labels)


class _UnboundSample:
    __slots__ = ("_labels", "_name", "_writer")

    def __init__(self, writer: MetricWriter, name: str, labels: Mapping[str, str] | None) -> None:
        self._writer = writer
        self._name = name
        self._labels = labels

    def record(self, value: float, *, timestamp: float | None = None) -> None:
        self._writer.record(self._name, value, self._labels, timestamp=timestamp)

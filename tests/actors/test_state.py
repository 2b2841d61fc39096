"""HealthState: snapshots, history, aggregation, readiness, listeners, metrics."""

from __future__ import annotations

import sys

import pytest

from actors.clock import FixedClock
from actors.models import CheckResult, CheckStatus
from actors.state import HealthState, OverallStatus, overall_status
from tests.actors.recorder import Recorder


def _result(
    name: str, status: CheckStatus, *, critical: bool = False, latency: float = 0.01
) -> CheckResult:
    return CheckResult(
        check=name,
        status=status,
        message=f"{name} {status}",
        latency_seconds=latency,
        timestamp=1_700_000_000.0,
        observed=status,
        critical=critical,
    )


P, W, F = CheckStatus.PASS, CheckStatus.WARN, CheckStatus.FAIL


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        ([], OverallStatus.HEALTHY),
        ([("a", P, True), ("b", P, False)], OverallStatus.HEALTHY),
        ([("a", P, True), ("b", W, False)], OverallStatus.DEGRADED),
        ([("a", W, True)], OverallStatus.DEGRADED),
        ([("a", P, True), ("b", F, False)], OverallStatus.DEGRADED),
        ([("a", F, True), ("b", W, False)], OverallStatus.UNHEALTHY),
    ],
)
def test_overall_status(results: list[tuple[str, CheckStatus, bool]], expected: str) -> None:
    assert overall_status(_result(n, s, critical=c) for n, s, c in results) == expected


def test_snapshot_is_immutable_and_swapped() -> None:
    state = HealthState(checks={"db": True}, clock=FixedClock())
    before = state.snapshot
    assert state.snapshot is before  # cached while nothing changes
    state.publish(_result("db", P, critical=True))
    after = state.snapshot
    assert after is not before
    assert "db" not in before.results
    assert after.results["db"].status is P
    with pytest.raises(TypeError):
        after.results["x"] = _result("x", P)  # type: ignore[index]


def test_history_is_bounded_oldest_first() -> None:
    state = HealthState(checks={"a": False}, clock=FixedClock(), history_size=3)
    for i in range(5):
        state.publish(_result("a", P, latency=float(i)))
    hist = state.snapshot.history["a"]
    assert [r.latency_seconds for r in hist] == [2.0, 3.0, 4.0]


def test_started_after_first_round_of_critical_checks() -> None:
    state = HealthState(checks={"db": True, "cache": True, "api": False}, clock=FixedClock())
    ready = state.snapshot.readiness()
    assert not ready.ready
    assert "db" in ready.reasons[0]
    assert "cache" in ready.reasons[0]
    state.publish(_result("db", P, critical=True))
    assert not state.started
    state.publish(_result("cache", P, critical=True))
    assert state.started
    assert state.snapshot.readiness().ready


def test_mark_started_without_results() -> None:
    state = HealthState(checks={"db": True}, clock=FixedClock())
    state.mark_started()
    assert state.snapshot.readiness().ready


def test_readiness_fails_on_critical_failure_and_draining() -> None:
    state = HealthState(checks={"db": True, "api": False}, clock=FixedClock())
    state.publish(_result("db", P, critical=True))
    state.publish(_result("api", F))
    assert state.snapshot.readiness().ready  # non-critical does not matter
    state.publish(_result("db", F, critical=True))
    readiness = state.snapshot.readiness()
    assert not readiness.ready
    assert any("db" in r for r in readiness.reasons)
    state.publish(_result("db", P, critical=True))
    state.begin_draining()
    assert state.snapshot.readiness().reasons == ("shutting down",)


def test_listeners_only_on_transitions() -> None:
    state = HealthState(checks={"a": False}, clock=FixedClock())
    seen: list[tuple[CheckStatus, CheckStatus | None]] = []
    state.add_listener(lambda new, old: seen.append((new.status, old.status if old else None)))
    for status in (P, P, F, F, P):
        state.publish(_result("a", status))
    assert seen == [(P, None), (F, P), (P, F)]


def test_metrics_recorded() -> None:
    recorder = Recorder()
    state = HealthState(checks={"a": False}, recorder=recorder, clock=FixedClock())
    assert recorder.declared == {
        "health_check_up": "gauge",
        "health_check_duration_seconds": "histogram",
        "health_check_runs_total": "counter",
    }
    state.publish(_result("a", F, latency=0.5))
    assert ("health_check_up", 0.0, {"check": "a"}) in recorder.records
    assert ("health_check_duration_seconds", 0.5, {"check": "a"}) in recorder.records
    assert ("health_check_runs_total", 1.0, {"check": "a", "result": "fail"}) in recorder.records
    state.publish(_result("a", W))
    assert ("health_check_up", 1.0, {"check": "a"}) in recorder.records


def test_uptime_and_configure() -> None:
    clock = FixedClock()
    state = HealthState(checks={"a": False, "b": False}, clock=clock)
    clock.advance(42)
    assert state.uptime() == 42
    state.publish(_result("a", P))
    state.publish(_result("b", P))
    state.configure({"a": False})
    assert set(state.snapshot.results) == {"a"}
    assert state.current("a") is not None
    assert state.current("b") is None


def test_pending_checks_are_listed_and_never_count_as_failing() -> None:
    state = HealthState(checks={"db": True, "api": False, "cache": False}, clock=FixedClock())
    snap = state.snapshot
    assert snap.pending == ("db", "api", "cache")
    assert snap.names == ("db", "api", "cache")
    assert snap.status == OverallStatus.HEALTHY
    state.publish(_result("db", P, critical=True))
    snap = state.snapshot
    assert snap.pending == ("api", "cache")
    assert snap.status == OverallStatus.HEALTHY
    # Started once every critical check ran: non-critical pending checks do not hold readiness.
    assert snap.readiness().ready


def test_readiness_waits_for_pending_critical_checks_only_at_start() -> None:
    state = HealthState(checks={"db": True, "api": False}, clock=FixedClock())
    assert state.snapshot.readiness().reasons == ("starting: waiting for the first run of db",)
    state.publish(_result("db", P, critical=True))
    # A reload adds a critical check: it is pending, and readiness stays (nothing failed).
    state.configure({"db": True, "api": False, "payments": True})
    snap = state.snapshot
    assert snap.pending == ("api", "payments")
    assert snap.readiness().ready
    state.publish(_result("payments", F, critical=True))
    assert not state.snapshot.readiness().ready


def test_reload_adds_pending_checks_and_removed_checks_stay_gone() -> None:
    state = HealthState(checks={"a": False, "b": False}, clock=FixedClock())
    state.publish(_result("a", F))
    state.publish(_result("b", P))
    state.configure({"a": False, "c": False})
    snap = state.snapshot
    assert snap.names == ("a", "c")
    assert snap.pending == ("c",)
    # The removed check's actor may still publish while it is being stopped: ignored.
    state.publish(_result("b", F))
    snap = state.snapshot
    assert snap.names == ("a", "c")
    assert "b" not in snap.results
    assert "b" not in snap.history
    assert snap.status == OverallStatus.DEGRADED  # a fails; c pending counts for nothing
    # Configured again later: back, pending until it reports.
    state.configure({"a": False, "b": False})
    assert state.snapshot.pending == ("b",)
    state.publish(_result("b", P))
    assert state.snapshot.results["b"].status is P


def _first_round_calls(n: int) -> int:
    """Python-level calls made while `n` critical checks publish their first result."""
    state = HealthState(checks={f"c{i}": True for i in range(n)}, clock=FixedClock(0.0))
    results = [_result(f"c{i}", P, critical=True) for i in range(n)]
    calls = 0

    def count(frame: object, event: str, arg: object) -> None:
        nonlocal calls
        if event == "call":
            calls += 1

    sys.setprofile(count)
    try:
        for result in results:
            state.publish(result)
    finally:
        sys.setprofile(None)
    assert state.started
    return calls


def test_first_round_costs_the_same_per_result_whatever_the_number_of_checks() -> None:
    # Counted, not timed: a scan of every configured check on each result (the start-up
    # bookkeeping before) makes twice the checks cost four times the calls.
    small, large = _first_round_calls(1000), _first_round_calls(2000)
    assert large <= 2.2 * small


def test_readiness_names_at_most_ten_awaited_checks_and_counts_the_rest() -> None:
    state = HealthState(checks={f"c{i}": True for i in range(25)}, clock=FixedClock(0.0))
    (reason,) = state.snapshot.readiness().reasons
    assert reason == (
        "starting: waiting for the first run of "
        + ", ".join(f"c{i}" for i in range(10))
        + " and 15 more"
    )


def test_overload_fails_readiness_with_its_reason() -> None:
    state = HealthState(checks={"db": True}, clock=FixedClock(0.0))
    state.publish(_result("db", P, critical=True))
    assert state.snapshot.readiness().ready
    state.set_overload("overloaded: 30% of the check runs started late")
    assert state.snapshot.readiness().reasons == ("overloaded: 30% of the check runs started late",)
    state.set_overload(None)
    assert state.snapshot.readiness().ready


def test_checks_run_elsewhere_show_their_stored_results_and_are_not_awaited() -> None:
    # Sharded replicas: "b" runs on another replica; its stored result stands in for it.
    recorder = Recorder()
    state = HealthState(checks={"a": True, "b": True}, recorder=recorder)
    assert not state.started
    remote = _result("b", F, critical=True)
    state.set_remote(["b"], {"b": remote, "a": _result("a", F)})  # "a" is not elsewhere
    assert not state.started  # still waiting for "a", which runs here
    assert state.current("b") == remote
    assert state.current("a") is None
    state.publish(_result("a", P, critical=True))
    assert state.started
    snapshot = state.snapshot
    assert snapshot.results["b"] == remote
    assert snapshot.history["b"] == (remote,)
    assert not snapshot.readiness().ready  # a critical check failing elsewhere fails here too
    assert [r for r in recorder.records if r[2].get("check") == "b"] == []  # not re-recorded
    # "b" moves here: its own result wins; moved away again, the stored one is back.
    local = _result("b", P, critical=True)
    state.set_remote([], {})
    state.publish(local)
    assert state.current("b") == local
    state.release(["b"])
    assert state.current("b") is None
    state.set_remote(["b"], {"b": remote})
    assert state.current("b") == remote

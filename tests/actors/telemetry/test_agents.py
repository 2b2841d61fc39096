"""The agent registry: totals, recent error ratio over slots, silence, bounds."""

from __future__ import annotations

from actors.telemetry.agents import AgentRegistry

T0 = 1_700_000_000.0


def test_recent_ratio_and_states() -> None:
    reg = AgentRegistry(window=300.0, slot=10.0, max_silence=300.0, max_error_ratio=0.1)
    for i in range(10):
        reg.execution("a", success=i != 0, t=T0 + i)
    st = reg.status("a", T0 + 10)
    assert st is not None
    assert (st.executions, st.errors, st.recent_executions, st.recent_errors) == (10, 1, 10, 1)
    assert st.status == "healthy"
    reg.execution("a", success=False, t=T0 + 20)
    st = reg.status("a", T0 + 20)
    assert st is not None
    assert st.status == "failing"
    # errors age out of the window; totals stay
    later = reg.status("a", T0 + 321)
    assert later is not None
    assert later.recent_executions == 0
    assert later.errors == 2
    assert later.status == "silent"
    reg.heartbeat("a", T0 + 330)
    st = reg.status("a", T0 + 331)
    assert st is not None
    assert st.status == "healthy"
    assert st.to_json()["lastSeen"] == T0 + 330


def test_thresholds_from_reader_and_bounds() -> None:
    reg = AgentRegistry(max_agents=2)
    reg.heartbeat("a", T0)
    reg.heartbeat("b", T0)
    reg.heartbeat("c", T0)
    assert len(reg) == 2
    assert reg.dropped == 1
    assert "c" not in reg
    snap = reg.snapshot(T0 + 100, max_silence=50.0)
    assert [s.status for s in snap.values()] == ["silent", "silent"]
    assert reg.status("zzz", T0) is None


def test_expected_agents_that_never_reported_are_missing() -> None:
    reg = AgentRegistry(expected=["carbon-hunter", "esg-chief-of-staff", "carbon-hunter"])
    assert reg.expected == ("carbon-hunter", "esg-chief-of-staff")
    reg.heartbeat("esg-chief-of-staff", T0)
    reg.heartbeat("other", T0)
    listed = reg.snapshot(T0 + 1, include_missing=True)
    assert list(listed) == ["carbon-hunter", "esg-chief-of-staff", "other"]
    missing = listed["carbon-hunter"]
    assert missing.status == "missing"
    assert missing.to_json() == {
        "agent": "carbon-hunter",
        "status": "missing",
        "lastSeen": None,
        "lastExecution": None,
        "lastError": None,
        "executions": 0,
        "errors": 0,
        "recentExecutions": 0,
        "recentErrors": 0,
        "recentErrorRatio": 0.0,
    }
    assert listed["esg-chief-of-staff"].status == "healthy"
    # Without asking for them (the agents check judges its own `expected`): reported ones only.
    assert list(reg.snapshot(T0 + 1)) == ["esg-chief-of-staff", "other"]
    assert "carbon-hunter" not in reg
    # Once it reports it is judged like any other.
    reg.execution("carbon-hunter", success=True, t=T0 + 2)
    assert reg.snapshot(T0 + 3, include_missing=True)["carbon-hunter"].status == "healthy"


def test_expect_replaces_the_expected_agents_on_reload() -> None:
    reg = AgentRegistry(expected=["a", "b"])
    reg.heartbeat("a", T0)
    reg.expect(["c"])
    listed = reg.snapshot(T0 + 1, include_missing=True)
    assert {name: st.status for name, st in listed.items()} == {"a": "healthy", "c": "missing"}


def test_expected_agents_are_tracked_beyond_max_agents() -> None:
    reg = AgentRegistry(max_agents=1, expected=["wanted"])
    reg.heartbeat("stranger", T0)
    reg.heartbeat("another", T0)
    reg.heartbeat("wanted", T0)
    assert reg.dropped == 1
    assert "wanted" in reg
    assert reg.snapshot(T0 + 1, include_missing=True)["wanted"].status == "healthy"

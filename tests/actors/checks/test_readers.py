"""agents, metric and self checks: judging state the process already keeps (no I/O)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from actors.checks import CheckContext, CheckError, build_check_actor, build_probe
from actors.checks.agents import AgentsProbe
from actors.checks.metric import MetricProbe
from actors.checks.selfcheck import SelfProbe
from actors.clock import FixedClock
from actors.models import CheckStatus
from actors.state import HealthState
from actors.telemetry.store import MetricStore

from .conftest import make_config


@dataclass(frozen=True)
class _Agent:
    status: str
    recent_error_ratio: float = 0.0


class _Registry:
    def __init__(self, agents: dict[str, _Agent]) -> None:
        self.agents = agents
        self.asked: tuple[float | None, float | None] | None = None

    def snapshot(
        self,
        now: float,
        *,
        max_silence: float | None = None,
        max_error_ratio: float | None = None,
    ) -> Mapping[str, _Agent]:
        self.asked = (max_silence, max_error_ratio)
        return self.agents


async def test_agents_all_healthy() -> None:
    registry = _Registry({n: _Agent("healthy") for n in ("a", "b", "c", "d")})
    config = make_config(name="agents", kind="agents", expected=["a", "b"], max_silence="1m")
    obs = await AgentsProbe(config, CheckContext(agents=registry, clock=FixedClock())).probe()
    assert obs.status is CheckStatus.PASS
    assert obs.message == "All 4 agents healthy"
    assert obs.details == {"activeAgents": 4, "totalAgents": 4}
    assert registry.asked == (60.0, 0.1)


async def test_agents_missing_silent_failing() -> None:
    registry = _Registry(
        {"a": _Agent("silent"), "b": _Agent("failing", 0.5), "c": _Agent("healthy")}
    )
    config = make_config(name="agents", kind="agents", expected=["a", "b", "x"])
    obs = await AgentsProbe(config, CheckContext(agents=registry, clock=FixedClock())).probe()
    assert obs.status is CheckStatus.FAIL
    assert obs.message == "3 of 4 agents unhealthy: a silent, b failing (50% errors), x missing"
    assert obs.details["activeAgents"] == 1
    assert obs.details["totalAgents"] == 4


def _store(clock: FixedClock) -> MetricStore:
    store = MetricStore(clock=clock)
    store.declare("ml_prediction_latency_seconds", "histogram", "latency", ("model",))
    return store


async def test_metric_ml_models() -> None:
    clock = FixedClock()
    store = _store(clock)
    for model, latency in (("m1", 0.1), ("m2", 0.15), ("m3", 0.1), ("m4", 0.15)):
        store.record("ml_prediction_latency_seconds", latency, {"model": model})
    config = make_config(
        name="mlModels",
        kind="metric",
        condition={
            "metric": "ml_prediction_latency_seconds",
            "aggregate": "avg",
            "window": "5m",
            "operator": ">",
            "threshold": 0.2,
        },
    )
    probe = MetricProbe(config, CheckContext(store=store, clock=clock))
    obs = await probe.probe()
    assert obs.status is CheckStatus.PASS, obs.message
    assert obs.message == "All 4 ML models healthy"
    assert obs.details["deployedModels"] == 4
    assert obs.details["avgLatency"] == 125.0
    store.record("ml_prediction_latency_seconds", 2.0, {"model": "m2"})
    obs = await probe.probe()
    assert obs.status is CheckStatus.FAIL
    assert "1 of 4 series match avg(ml_prediction_latency_seconds) > 0.2" in obs.message
    assert "model=m2" in obs.message


async def test_metric_ratio_condition() -> None:
    clock = FixedClock()
    store = MetricStore(clock=clock)
    store.declare("checkout_failures_total", "counter", "Failures.", ("region",))
    store.declare("checkout_attempts_total", "counter", "Attempts.", ("region",))
    for region, failures, attempts in (("eu", 1, 100), ("us", 5, 100), ("ap", 0, 0)):
        store.record("checkout_failures_total", failures, {"region": region})
        store.record("checkout_attempts_total", attempts, {"region": region})
    config = make_config(
        name="checkout",
        kind="metric",
        condition={
            "metric": "checkout_failures_total",
            "aggregate": "increase",
            "window": "5m",
            "divide_by": {"metric": "checkout_attempts_total"},
            "operator": ">",
            "threshold": 0.01,
        },
    )
    obs = await MetricProbe(config, CheckContext(store=store, clock=clock)).probe()
    assert obs.status is CheckStatus.FAIL
    # ap attempted nothing: no ratio, not a failure.
    assert obs.message == (
        "1 of 2 series match increase(checkout_failures_total) / increase(checkout_attempts_total)"
        " > 0.01: {region=us}=0.05"
    )


async def test_metric_unknown_metric_fails_clearly() -> None:
    clock = FixedClock()
    config = make_config(name="m", kind="metric", condition={"metric": "nope"})
    context = CheckContext(clock=clock, store=_store(clock))
    actor = build_check_actor(config, context, health=HealthState(clock=clock))
    result = await actor.run_once()
    assert result.status is CheckStatus.FAIL
    assert "nope" in result.message


@dataclass(frozen=True)
class _Child:
    state: str
    restarts: int
    supervisor: Any = None


class _Tree:
    def __init__(self, children: dict[str, _Child]) -> None:
        self.children = children

    def walk(self, prefix: str = "") -> Iterator[tuple[str, Any]]:
        yield from self.children.items()


async def test_self_check_restarts_and_failures() -> None:
    clock = FixedClock()
    tree = _Tree({"root/a": _Child("running", 0), "root/b": _Child("running", 0)})
    probe = SelfProbe(
        make_config(name="self", kind="self"), CheckContext(tree=lambda: tree, clock=clock)
    )
    obs = await probe.probe()
    assert obs.status is CheckStatus.PASS
    assert obs.message == "All 2 actors running"
    clock.advance(10)
    tree.children["root/b"] = _Child("running", 1)
    assert (await probe.probe()).status is CheckStatus.WARN
    clock.advance(10)
    tree.children["root/b"] = _Child("restarting", 3)
    obs = await probe.probe()
    assert obs.status is CheckStatus.FAIL
    assert "root/b crash-looping" in obs.message
    clock.advance(400)  # restarts age out of the window
    tree.children["root/b"] = _Child("running", 3)
    await probe.probe()
    clock.advance(1)
    assert (await probe.probe()).status is CheckStatus.PASS
    tree.children["root/a"] = _Child("failed", 0)
    assert (await probe.probe()).status is CheckStatus.FAIL


async def test_self_check_warns_while_the_process_cannot_keep_up() -> None:
    tree = _Tree({"root/a": _Child("running", 0)})
    overload: list[str | None] = [None]
    context = CheckContext(tree=lambda: tree, clock=FixedClock(), overload=lambda: overload[0])
    probe = SelfProbe(make_config(name="self", kind="self"), context)
    assert (await probe.probe()).status is CheckStatus.PASS
    overload[0] = "overloaded: 40% of the check runs in the last 10 s started more than 0.5 s late"
    obs = await probe.probe()
    assert obs.status is CheckStatus.WARN
    assert obs.message == overload[0]
    assert obs.details["overload"] == overload[0]
    tree.children["root/a"] = _Child("failed", 0)
    assert (await probe.probe()).status is CheckStatus.FAIL  # a failure still wins
    overload[0] = None
    tree.children["root/a"] = _Child("running", 0)
    assert (await probe.probe()).status is CheckStatus.PASS


def test_factory_needs_collaborators() -> None:
    with pytest.raises(CheckError, match="agent registry"):
        build_probe(make_config(name="a", kind="agents"), CheckContext())
    with pytest.raises(CheckError, match="metric store"):
        build_probe(make_config(name="m", kind="metric", condition={"metric": "x"}), CheckContext())
    with pytest.raises(CheckError, match="supervision tree"):
        build_probe(make_config(name="s", kind="self"), CheckContext())

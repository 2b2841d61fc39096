"""CheckActor scheduling, timeouts and dependencies, under the autojump clock."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from actors.checks.actor import CheckActor
from actors.checks.cadence import Cadence
from actors.checks.logic import Observation
from actors.clock import VirtualClock
from actors.models import CheckStatus
from actors.state import HealthState

from .conftest import make_config


class _Scripted:
    """Returns the scripted statuses in turn; sleeps `delay` seconds per run."""

    def __init__(self, statuses: list[CheckStatus], delay: float = 0.0) -> None:
        self.statuses = statuses
        self.delay = delay
        self.times: list[float] = []
        self.closed = False

    async def probe(self) -> Observation:
        self.times.append(trio.current_time())
        await trio.sleep(self.delay)
        status = self.statuses[min(len(self.times) - 1, len(self.statuses) - 1)]
        return Observation(status, f"run {len(self.times)}")

    async def aclose(self) -> None:
        self.closed = True


async def test_runs_on_its_grid(autojump_clock: trio.testing.MockClock) -> None:
    health = HealthState(checks={"a": True}, clock=VirtualClock())
    probe = _Scripted([CheckStatus.PASS])
    config = make_config(name="a", kind="self", interval="10s", timeout="1s", critical=True)
    actor = CheckActor(config=config, probe=probe, health=health, clock=VirtualClock())
    cadence = Cadence.of("a", 10.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        await trio.sleep(95)
        nursery.cancel_scope.cancel()
    assert probe.closed
    assert 9 <= len(probe.times) <= 10
    assert probe.times[0] < 1.0  # the first run comes within the first second
    assert probe.times[0] == cadence.first(0.0)
    # the others on the check's grid: phase + k * interval, one interval apart
    assert 5.0 <= probe.times[1] - probe.times[0] < 15.0
    for time in probe.times[1:]:
        steps = (time - cadence.phase) / 10.0
        assert steps == pytest.approx(round(steps))
    gaps = [b - a for a, b in zip(probe.times[1:], probe.times[2:], strict=False)]
    assert gaps == pytest.approx([10.0] * len(gaps))
    assert health.started
    assert actor.statistics().runs == len(probe.times)


async def test_timeout_and_overrun_skip(autojump_clock: trio.testing.MockClock) -> None:
    health = HealthState(clock=VirtualClock())
    probe = _Scripted([CheckStatus.PASS], delay=5.0)
    config = make_config(name="slow", kind="self", interval="2s", timeout="2s")
    actor = CheckActor(config=config, probe=probe, health=health, clock=VirtualClock())
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        await trio.sleep(11)
        nursery.cancel_scope.cancel()
    result = health.current("slow")
    assert result is not None
    assert result.status is CheckStatus.FAIL
    assert result.message == "timed out after 2s"
    assert actor.statistics().timeouts >= len(probe.times) - 1  # the last run was cancelled


async def test_dependency_blocks(autojump_clock: trio.testing.MockClock) -> None:
    health = HealthState(clock=VirtualClock())
    db = CheckActor(
        config=make_config(name="database", kind="self", interval="1s", timeout="1s"),
        probe=_Scripted([CheckStatus.FAIL, CheckStatus.FAIL, CheckStatus.PASS]),
        health=health,
        clock=VirtualClock(),
    )
    api = CheckActor(
        config=make_config(
            name="api", kind="self", interval="1s", timeout="1s", depends_on=["database"]
        ),
        probe=_Scripted([CheckStatus.PASS]),
        health=health,
        clock=VirtualClock(),
    )
    await db.run_once()
    blocked = await api.run_once()
    assert blocked.status is CheckStatus.FAIL
    assert blocked.details["blocked_by"] == ["database"]
    await db.run_once()
    await db.run_once()
    free = await api.run_once()
    assert free.status is CheckStatus.PASS
    assert "blocked_by" not in free.details


async def test_one_span_per_run() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    actor = CheckActor(
        config=make_config(name="db", kind="self"),
        probe=_Scripted([CheckStatus.PASS, CheckStatus.FAIL]),
        health=HealthState(clock=VirtualClock()),
        clock=VirtualClock(),
        tracer=provider.get_tracer("test"),
    )
    await actor.run_once()
    await actor.run_once()
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["check db", "check db"]
    assert [s.attributes["check.status"] for s in spans if s.attributes] == ["pass", "fail"]
    assert spans[0].attributes is not None
    assert spans[0].attributes["check.kind"] == "self"
    provider.shutdown()


async def test_no_span_with_a_no_op_tracer() -> None:
    """Tracing off (the monitor's `NoOpTracer`): a run begins no span at all."""
    from opentelemetry.trace import NoOpTracer

    class _Counting(NoOpTracer):
        spans = 0

        def start_as_current_span(self, *args: object, **kwargs: object) -> Any:
            _Counting.spans += 1
            return super().start_as_current_span(*args, **kwargs)  # type: ignore[arg-type]

    actor = CheckActor(
        config=make_config(name="db", kind="self"),
        probe=_Scripted([CheckStatus.PASS]),
        health=HealthState(clock=VirtualClock()),
        clock=VirtualClock(),
        tracer=_Counting(),
    )
    result = await actor.run_once()
    assert result.status is CheckStatus.PASS
    assert _Counting.spans == 0


class _ClosingNow(_Scripted):
    """A `ClosingNowProbe` that can (or, `can=False`, cannot) close at once."""

    def __init__(self, *, can: bool) -> None:
        super().__init__([CheckStatus.PASS])
        self.can = can
        self.closed_now = 0

    def close_now(self) -> bool:
        self.closed_now += 1
        return self.can

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()  # raises Cancelled unless shielded
        self.closed = True


@pytest.mark.parametrize("can", [True, False])
async def test_a_probe_that_closes_at_once_is_not_awaited_on_the_way_out(
    autojump_clock: trio.testing.MockClock, can: bool
) -> None:
    # Thousands of checks stop together: one that only closes sockets costs no shielded scope
    # with a deadline of its own, no checkpoint; one that cannot is still awaited, shielded.
    health = HealthState(checks={"a": True}, clock=VirtualClock())
    probe = _ClosingNow(can=can)
    config = make_config(name="a", kind="self", interval="10s", timeout="1s", critical=True)
    actor = CheckActor(config=config, probe=probe, health=health, clock=VirtualClock())
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        await trio.sleep(15)
        nursery.cancel_scope.cancel()
    assert probe.times  # it ran
    assert probe.closed_now == 1
    assert probe.closed is not can

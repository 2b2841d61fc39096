"""Recording from other threads into a monitor running in a background trio thread."""

from __future__ import annotations

import threading

import pytest
import trio

from actors.clock import SystemClock
from actors.telemetry.agents import AgentRegistry
from actors.telemetry.catalog import declare_catalog
from actors.telemetry.embed import MonitoringThread
from actors.telemetry.recording import Telemetry
from actors.telemetry.store import MetricStore


def _telemetry() -> Telemetry:
    store = MetricStore(clock=SystemClock())
    declare_catalog(store)
    return Telemetry(store=store, agents=AgentRegistry())


async def _tree(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    task_status.started()
    await trio.sleep_forever()


def test_many_threads_record_into_the_background_monitor() -> None:
    telemetry = _telemetry()
    with MonitoringThread(_tree, telemetry=telemetry) as recorder:

        def work() -> None:
            for _ in range(1000):
                recorder.record_agent_execution("carbon-hunter", 0.1, True)
                recorder.record_api_request("/x", "GET", 200, 0.01)
            recorder.record_business_metric("emissions", 2.0, {"organization": "o", "scope": "s1"})
            recorder.record_ml_prediction("m", -1.0)  # invalid: counted, not raised here
            recorder.flush()

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert recorder.errors == 4
        assert recorder.dropped == 0
    store = telemetry.store
    assert store.handle("agent_executions_total").series[("carbon-hunter", "success")].total == 4000
    assert store.handle("api_requests_total").series[("/x", "GET", "200")].total == 4000
    assert store.handle("emissions_tracked_kg_total").series[("o", "s1")].total == 8.0


def test_start_failure_is_reported() -> None:
    async def broken(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        raise ValueError("bad config")

    runner = MonitoringThread(broken, telemetry=_telemetry())
    with pytest.raises(RuntimeError, match="failed to start"):
        runner.start()

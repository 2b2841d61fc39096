"""Embedding: the monitor inside a trio host, and in a thread for synchronous and asyncio hosts."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import httpx
import pytest
import trio

from actors.rules.exceptions import InvalidRule, RuleNotFound
from actors.telemetry.exceptions import MetricDeclarationError
from supervisor.app import (
    BackgroundMonitoring,
    initialize_monitoring,
    resolve_config,
    start_monitoring_thread,
)
from supervisor.config import ConfigError
from supervisor.runtime import RestartIntensityExceeded

SOURCE = """
[server]
listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:0"

[storage]
path = "{db}"

[[checks]]
name = "tree"
kind = "self"

[channels.console]
kind = "console"
"""

RULE = {
    "id": "slow-chat",
    "name": "Slow Chat",
    "condition": {
        "metric": "api_request_duration_seconds",
        "aggregate": "p95",
        "window": 300,
        "operator": ">",
        "threshold": 2,
    },
    "severity": "warning",
    "channels": ["console"],
}


def _source(tmp_path: Path) -> str:
    return SOURCE.format(db=tmp_path / "m.db")


def _metrics_text(port: int | None) -> str:
    return httpx.get(f"http://127.0.0.1:{port}/metrics").text


def test_config_is_a_path_a_toml_string_or_a_config(tmp_path: Path) -> None:
    path = tmp_path / "monitor.toml"
    path.write_text(_source(tmp_path))
    from_text, no_file = resolve_config(_source(tmp_path), env={})
    from_path, file = resolve_config(str(path), env={})
    assert (no_file, file) == (None, path)
    assert from_text == from_path == resolve_config(from_path)[0]
    assert resolve_config(path, env={})[0] == from_path
    with pytest.raises(ConfigError, match="no such file"):
        resolve_config(str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="<config>:2:"):
        resolve_config('[server]\nlisten = "x"\n', env={})


async def test_trio_host_records_into_the_running_monitor(tmp_path: Path) -> None:
    async with initialize_monitoring(_source(tmp_path), env={}) as monitoring:
        telemetry = monitoring.telemetry
        telemetry.record_agent_execution("carbon-hunter", 0.4, success=False)
        telemetry.record_ml_prediction("esg-scorer", 0.05, 0.9)
        telemetry.record_business_metric("network_connections", 120, {"organization": "org-1"})
        telemetry.record_api_request("/api/chat", "post", 200, 0.2)
        jobs = telemetry.counter("jobs_done_total", "Jobs done.", ["queue"])
        jobs.add(3, {"queue": "reports"})

        async def work() -> str:
            return "done"

        assert await telemetry.trace_async("host.work", work, {"k": "v"}) == "done"
        store = monitoring.app.metrics
        assert store.aggregate("agent_errors_total", {}, "increase", 60) == {
            (("agent", "carbon-hunter"),): 1.0
        }
        rule = monitoring.alerting.add_rule(RULE)
        assert rule.id in {r.id for r in monitoring.alerting.rules()}
        monitoring.alerting.remove_rule("slow-chat")
        with pytest.raises(RuleNotFound):
            monitoring.alerting.remove_rule("slow-chat")
        with pytest.raises(InvalidRule):
            monitoring.alerting.add_rule({"id": "bad"})
        port = monitoring.app.metrics_server.port
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
        assert 'network_connections_active{organization="org-1"} 120.0' in text
        assert 'jobs_done_total{queue="reports"} 3.0' in text
        assert 'api_requests_total{endpoint="/api/chat",method="POST",status="200"} 1.0' in text
        health = monitoring.app.health
    assert health.draining  # stopped gracefully on exit


def _record_from_threads(monitoring: BackgroundMonitoring, threads: int, calls: int) -> None:
    def work(n: int) -> None:
        for _ in range(calls):
            monitoring.telemetry.record_agent_execution(f"agent-{n}", 0.01, True)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    monitoring.telemetry.flush()


def _executions(monitoring: BackgroundMonitoring) -> dict[str, float]:
    values = monitoring.run_sync(
        monitoring.app.metrics.aggregate, "agent_executions_total", {}, "increase", 600.0
    )
    return {dict(labels)["agent"]: value for labels, value in values.items()}


def test_synchronous_program_records_from_several_threads(tmp_path: Path) -> None:
    with start_monitoring_thread(_source(tmp_path), env={}) as monitoring:
        telemetry = monitoring.telemetry
        telemetry.record_business_metric("organizations", 7)
        queue = telemetry.gauge("queue_depth", "Jobs waiting.")
        queue.set(4)
        with pytest.raises(MetricDeclarationError):
            telemetry.gauge("queue_depth", "Jobs waiting.", ["other"])
        with telemetry.span("sync.block", {"k": "v"}):
            telemetry.record_api_request("/api/chat", "GET", 503, 1.5)
        _record_from_threads(monitoring, threads=4, calls=250)
        assert _executions(monitoring) == {f"agent-{n}": 250.0 for n in range(4)}
        text = _metrics_text(monitoring.app.metrics_server.port)
        assert "organizations_active 7.0" in text
        assert "queue_depth 4.0" in text
        assert 'api_errors_total{endpoint="/api/chat",method="GET"} 1.0' in text
        monitoring.alerting.add_rule(RULE)
        assert "slow-chat" in {rule.id for rule in monitoring.alerting.rules()}
        assert telemetry.errors == telemetry.dropped == 0
        thread = monitoring._thread._thread
    assert thread is not None
    assert not thread.is_alive()
    assert monitoring.app.health.draining
    monitoring.stop()  # idempotent


def test_asyncio_program_records_and_traces(tmp_path: Path) -> None:
    async def host() -> dict[str, float]:
        monitoring = await asyncio.to_thread(start_monitoring_thread, _source(tmp_path), env={})
        try:
            telemetry = monitoring.telemetry

            async def handle(n: int) -> None:
                await asyncio.sleep(0)
                telemetry.record_agent_execution(f"agent-{n % 3}", 0.02, True)

            @telemetry.traced("host.handler")
            async def traced_handler() -> int:
                await asyncio.sleep(0)
                return 1

            await asyncio.gather(*(handle(n) for n in range(30)))
            assert await traced_handler() == 1
            assert await telemetry.trace_async("host.op", traced_handler) == 1
            await asyncio.to_thread(_record_from_threads, monitoring, 3, 10)
            return _executions(monitoring)
        finally:
            await asyncio.to_thread(monitoring.stop)

    assert asyncio.run(host()) == {"agent-0": 20.0, "agent-1": 20.0, "agent-2": 20.0}


async def test_a_failing_start_is_reported(tmp_path: Path) -> None:
    # The monitor cannot bind its listener: the trio host sees the tree give up.
    with trio.socket.socket() as taken:
        await taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        source = _source(tmp_path).replace(
            'listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{port}"', 1
        )
        with pytest.raises(ExceptionGroup) as caught:
            async with initialize_monitoring(source, env={}):
                pass
    assert caught.group_contains(RestartIntensityExceeded)


ANONYMISE = """
[security]
anonymize_labels = ["organization"]
anonymize_key = "embed-key"
"""


def _token(value: str) -> str:
    import hashlib
    import hmac

    return hmac.new(b"embed-key", value.encode(), hashlib.sha256).hexdigest()[:16]


async def test_the_trio_api_records_anonymised_labels(tmp_path: Path) -> None:
    async with initialize_monitoring(_source(tmp_path) + ANONYMISE, env={}) as monitoring:
        telemetry = monitoring.telemetry
        telemetry.record_business_metric("network_connections", 120, {"organization": "org-123"})
        telemetry.record_user_message("esg_analysis", "org-123")
        port = monitoring.app.metrics_server.port
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    token = _token("org-123")
    assert f'network_connections_active{{organization="{token}"}} 120.0' in text
    assert f'user_messages_total{{intent="esg_analysis",organization="{token}"}} 1.0' in text
    assert "org-123" not in text


def test_the_thread_recorder_records_anonymised_labels(tmp_path: Path) -> None:
    with start_monitoring_thread(_source(tmp_path) + ANONYMISE, env={}) as monitoring:
        telemetry = monitoring.telemetry
        telemetry.record_business_metric("network_connections", 5, {"organization": "org-123"})
        reports = telemetry.counter("reports_total", "Reports.", ["organization"])
        reports.add(2, {"organization": "org-123"})
        telemetry.flush()
        text = _metrics_text(monitoring.app.metrics_server.port)
        assert telemetry.errors == telemetry.dropped == 0
    token = _token("org-123")
    assert f'network_connections_active{{organization="{token}"}} 5.0' in text
    assert f'reports_total{{organization="{token}"}} 2.0' in text
    assert "org-123" not in text

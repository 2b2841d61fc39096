"""The composition root: the tree built from a configuration, and hot reload."""

from __future__ import annotations

import socket
import ssl
import textwrap
from functools import partial
from pathlib import Path

import httpx
import pytest
import trio
import trustme

from actors.clock import VirtualClock
from actors.models import CheckStatus
from actors.telemetry.agents import MISSING
from supervisor.app import RELOAD_METRIC, App
from supervisor.config import Config, parse_config
from supervisor.runtime import ChildSpec, current_child
from tests.actors.checks.conftest import RecordingContexts

BASE = """
[server]
listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:0"

[storage]
path = "{db}"

[[checks]]
name = "tree"
kind = "self"
interval = "1s"
timeout = "1s"

[[checks]]
name = "errors"
kind = "metric"
interval = "2s"
condition = {{ metric = "api_errors_total", aggregate = "increase", window = "1m", threshold = 5 }}

[[checks]]
name = "agents"
kind = "agents"
interval = "5s"

[[rules]]
id = "r1"
name = "R1"
channels = ["console"]
condition = {{ metric = "agent_errors_total", aggregate = "increase", threshold = 10 }}

[[rules]]
id = "r2"
name = "R2"
channels = ["console"]
condition = {{ metric = "ml_model_accuracy", operator = "<", threshold = 0.8 }}

[channels.console]
kind = "console"
"""

CHANGED = """
[server]
listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:0"

[storage]
path = "{db}"

[[checks]]
name = "tree"
kind = "self"
interval = "1s"
timeout = "1s"

[[checks]]
name = "errors"
kind = "metric"
interval = "3s"
condition = {{ metric = "api_errors_total", aggregate = "increase", window = "1m", threshold = 5 }}

[[checks]]
name = "latency"
kind = "metric"
condition = {{ metric = "api_request_duration_seconds", aggregate = "avg", threshold = 2 }}

[[rules]]
id = "r1"
name = "R1"
channels = ["console"]
condition = {{ metric = "agent_errors_total", aggregate = "increase", threshold = 10 }}

[[rules]]
id = "r2"
name = "R2"
channels = ["console"]
condition = {{ metric = "ml_model_accuracy", operator = "<", threshold = 0.5 }}

[[rules]]
id = "r3"
name = "R3"
channels = ["console", "hooks"]
condition = {{ metric = "organizations_active", operator = "<", threshold = 1 }}

[channels.console]
kind = "console"

[channels.hooks]
kind = "webhook"
url = "http://127.0.0.1:9/alerts"

[channels.slack]
kind = "slack"
"""


def _config(template: str, tmp_path: Path) -> Config:
    return parse_config(template.format(db=tmp_path / "m.db"), env={})


def _starts(app: App) -> dict[str, int]:
    return {info.id: info.starts for info in app.checks.supervisor.which_children()}


def _reloads(app: App, result: str) -> float:
    values = app.metrics.aggregate(RELOAD_METRIC, {"result": result}, "last", 3600.0)
    return sum(values.values())


async def test_tree_holds_one_actor_per_check(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(BASE.format(db=tmp_path / "m.db"))
    app = App(_config(BASE, tmp_path), path=path, env={})
    async with trio.open_nursery() as nursery:
        await nursery.start(app.run)
        root = [child.id for child in app.root.which_children()]
        assert root == [
            "storage",
            "metrics",
            "web",
            "notify",
            "routing",
            "rules",
            "slos",
            "history",
            "timer",
            "checks",
        ]
        base = f"http://127.0.0.1:{app.api_server.port}"
        async with httpx.AsyncClient() as client:
            live = await client.get(f"{base}/api/health/live")
            assert live.status_code == 200
            path.write_text(CHANGED.format(db=tmp_path / "m.db"))
            answer = await client.post(f"{base}/api/v1/reload")
            assert answer.status_code == 200, answer.text
            assert answer.json()["started"] == ["check:latency", "deliver:hooks"]
            path.write_text('[server]\nlisten = "x"\n')
            answer = await client.post(f"{base}/api/v1/reload")
            assert answer.status_code == 422
            assert answer.json()["errors"] == [
                f"{path}:2:1: server.listen: expected 'host:port', e.g. '0.0.0.0:3000', got 'x'"
            ]
            metrics = await client.get(f"http://127.0.0.1:{app.metrics_server.port}/metrics")
            assert 'config_reload_total{result="failure"} 1.0' in metrics.text
            # the rules -> routing mailbox is there (alerts are never dropped: it blocks)
            assert 'mailbox_dropped_total{mailbox="alerts"} 0.0' in metrics.text
        assert [c.id for c in app.notify.supervisor.which_children()] == [
            "deliver:console",
            "deliver:hooks",
        ]
        assert _starts(app) == {"check:tree": 1, "check:latency": 1, "check:errors": 2}
        await app.stop()
    assert app.health.draining


SELF_CHECKED = """
[server]
listen = "127.0.0.1:{port}"
metrics_listen = "127.0.0.1:0"

[storage]
path = "{db}"

[supervisor]
shutdown_timeout = "10s"

[[checks]]
name = "own-api"
kind = "http"
url = "http://127.0.0.1:{port}/api/health/live"
interval = "100ms"
timeout = "100ms"
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_listeners_answer_while_deliveries_drain_and_stop_without_waiting(
    tmp_path: Path,
) -> None:
    port = _free_port()
    config = parse_config(SELF_CHECKED.format(port=port, db=tmp_path / "m.db"), env={})
    app = App(config, env={})
    release = trio.Event()
    draining = trio.Event()

    async def delivery_in_flight(
        *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        await current_child().wait_stop_requested()
        draining.set()
        await release.wait()  # traps the stop request, like a delivery finishing its send

    stopped = trio.Event()

    async def stop() -> None:
        await app.stop()
        stopped.set()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(app.run)
            await app.notify.supervisor.start_child(
                ChildSpec("held", delivery_in_flight, shutdown=5.0)
            )
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=base) as client:
                # The check of the monitor's own API holds a kept-alive connection to it.
                while app.health.snapshot.results.get("own-api") is None:
                    await trio.sleep(0.02)
                assert (await client.get("/api/health/ready")).status_code == 200
                nursery.start_soon(stop)
                await draining.wait()
                # The checks have stopped, the delivery drains: readiness says 503, the
                # listeners still answer (not "connection refused").
                ready = await client.get("/api/health/ready")
                assert ready.status_code == 503
                assert (await client.get("/api/health/live")).status_code == 200
                metrics = f"http://127.0.0.1:{app.metrics_server.port}/metrics"
                assert (await client.get(metrics)).status_code == 200
                assert not app.checks.supervisor.running
                release.set()
                # Then the listeners stop promptly: no kept-alive connection (the client's
                # here, the check's before) holds them for the graceful timeout (5 s).
                with trio.fail_after(2):
                    await stopped.wait()
            with pytest.raises(httpx.ConnectError):
                async with httpx.AsyncClient() as fresh:
                    await fresh.get(f"{base}/api/health/live")


async def test_reload_touches_only_what_changed(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    app = App(_config(BASE, tmp_path), clock=VirtualClock(), serve_http=False)
    async with trio.open_nursery() as nursery:
        await nursery.start(app.run)
        await trio.sleep(5)
        report = await app.apply(_config(CHANGED, tmp_path))
        assert report.started == ("check:latency", "deliver:hooks")
        assert report.stopped == ("check:agents",)
        assert report.restarted == ("check:errors",)
        routing_starts = {c.id: c.starts for c in app.root.which_children()}["routing"]
        assert routing_starts == 1
        assert (report.rules_added, report.rules_removed, report.rules_changed) == (
            ("r3",),
            (),
            ("r2",),
        )
        # The unchanged check kept running: its start counter did not move.
        assert _starts(app) == {"check:tree": 1, "check:errors": 2, "check:latency": 1}
        assert sorted(rule.id for rule in app.rules.rules()) == ["r1", "r2", "r3"]
        assert _reloads(app, "success") == 1
        # Applying the same configuration again changes nothing.
        again = await app.apply(_config(CHANGED, tmp_path))
        assert not again.changed
        assert _starts(app) == {"check:tree": 1, "check:errors": 2, "check:latency": 1}
        await app.stop()


async def test_invalid_file_on_reload_leaves_the_tree_alone(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(BASE.format(db=tmp_path / "m.db"))
    app = App(_config(BASE, tmp_path), path=path, clock=VirtualClock(), env={}, serve_http=False)
    async with trio.open_nursery() as nursery:
        await nursery.start(app.run)
        before = _starts(app)
        path.write_text(
            textwrap.dedent(
                """\
                [[checks]]
                name = "tree"
                kind = "self"
                interval = "soon"
                """
            )
        )
        assert await app.reload() is None
        assert _starts(app) == before
        assert app.config.checks[1].name == "errors"
        assert _reloads(app, "failure") == 1
        # A valid file is applied through the same path.
        path.write_text(CHANGED.format(db=tmp_path / "m.db"))
        report = await app.reload()
        assert report is not None
        assert report.started == ("check:latency", "deliver:hooks")
        await app.stop()


async def test_routing_change_restarts_only_routing(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    app = App(_config(BASE, tmp_path), clock=VirtualClock(), serve_http=False)
    async with trio.open_nursery() as nursery:
        await nursery.start(app.run)
        changed = BASE + '\n[routing]\ngroup_interval = "5m"\n'
        report = await app.apply(_config(changed, tmp_path))
        assert report.restarted == ("routing",)
        assert (report.started, report.stopped) == ((), ())
        assert _starts(app) == {"check:tree": 1, "check:errors": 1, "check:agents": 1}
        assert {c.id: c.starts for c in app.root.which_children()}["routing"] == 2
        await app.stop()


def _expecting(*agents: str) -> str:
    """BASE with its agents check expecting `agents`."""
    listed = ", ".join(f'"{agent}"' for agent in agents)
    plain = 'kind = "agents"\ninterval = "5s"\n'
    assert plain in BASE
    return BASE.replace(plain, f"{plain}expected = [{listed}]\n")


async def test_reload_lists_the_newly_expected_agents_as_missing(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    clock = VirtualClock()
    app = App(_config(_expecting("planner"), tmp_path), clock=clock, serve_http=False)

    def missing() -> list[str]:
        agents = app._telemetry.agents.snapshot(clock.now(), include_missing=True)
        return [name for name, agent in agents.items() if agent.status == MISSING]

    async with trio.open_nursery() as nursery:
        await nursery.start(app.run)
        assert missing() == ["planner"]
        await app.apply(_config(_expecting("auditor", "planner"), tmp_path))
        assert missing() == ["auditor", "planner"]
        await app.apply(_config(_expecting("auditor"), tmp_path))
        assert missing() == ["auditor"]
        await app.stop()


async def test_otlp_export_runs_as_an_actor_when_configured(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    source = BASE + '\n[telemetry]\notlp_endpoint = "http://127.0.0.1:9"\n'
    app = App(_config(source, tmp_path), clock=VirtualClock(), serve_http=False)
    assert app.otel.enabled
    async with trio.open_nursery() as nursery:
        await nursery.start(app.run)
        assert app.root.which_children()[0].id == "otlp"
        await app.stop()


async def test_limits_size_the_metric_store(tmp_path: Path) -> None:
    source = BASE + "\n[limits]\nmax_series = 500\nmax_points = 9000\n"
    source += "max_series_per_metric = 50\nmax_points_per_series = 600\n"
    app = App(_config(source, tmp_path), clock=VirtualClock(), serve_http=False)
    try:
        store = app.metrics
        assert (store.max_total_series, store.max_total_points) == (500, 9000)
        assert (store.max_series, store.max_points) == (50, 600)
    finally:
        app.database.close()


async def test_staleness_is_configured_per_metric(tmp_path: Path) -> None:
    source = BASE + '\n[limits]\nstaleness = "2m"\n'
    source += '[limits.staleness_by_metric]\nagent_errors_total = "1h"\nhealth_check_up = "30s"\n'
    app = App(_config(source, tmp_path), clock=VirtualClock(), serve_http=False)
    try:
        staleness = app.metrics.staleness
        assert staleness.of("ml_model_accuracy", external=True) == 120.0
        assert staleness.of("agent_errors_total", external=True) == 3600.0
        assert staleness.of("health_check_up", external=False) == 30.0
        assert staleness.of("alerts_firing", external=False) == 0.0
    finally:
        app.database.close()


HTTPS_CHECKS = """
[storage]
path = "{db}"

[supervisor]
shutdown_timeout = "5s"
{checks}
"""

HTTPS_CHECK = """
[[checks]]
name = "{name}"
kind = "http"
url = "https://127.0.0.1:{port}/ok"
interval = "2s"
timeout = "2s"
"""


async def _answer_ok(stream: trio.abc.Stream) -> None:
    try:
        while request := await stream.receive_some(65536):
            if request.endswith(b"\r\n\r\n"):
                await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    except (trio.BrokenResourceError, ssl.SSLError):
        return


def _https_config(tmp_path: Path, port: int, *names: str) -> Config:
    checks = "".join(HTTPS_CHECK.format(name=name, port=port) for name in names)
    return parse_config(HTTPS_CHECKS.format(db=tmp_path / "m.db", checks=checks), env={})


async def test_every_check_connects_with_the_apps_one_tls_context(tmp_path: Path) -> None:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    trusted = ssl.create_default_context()
    ca.configure_trust(trusted)
    tls = RecordingContexts(trusted)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                partial(trio.serve_ssl_over_tcp, _answer_ok, 0, server, host="127.0.0.1")
            )
            port = listeners[0].transport_listener.socket.getsockname()[1]
            app = App(_https_config(tmp_path, port, "a", "b"), env={}, serve_http=False, tls=tls)
            assert app.tls is tls
            await nursery.start(app.run)

            async def passed(*names: str) -> None:
                results = app.health.snapshot.results
                while any(results.get(name) is None for name in names):
                    await trio.sleep(0.02)
                    results = app.health.snapshot.results
                for name in names:
                    assert results[name].status is CheckStatus.PASS, results[name].message

            # Only `trusted` knows this CA: passing means the check connected with it.
            await passed("a", "b")
            # A check a reload starts gets the same contexts.
            report = await app.apply(_https_config(tmp_path, port, "a", "b", "c"))
            assert report.started == ("check:c",)
            await passed("c")
            await app.stop()
            nursery.cancel_scope.cancel()
    assert len(tls.handed) == 3  # one per check: each keeps its connection
    assert all(context is trusted for context in tls.handed)


async def test_the_status_page_shows_the_slo_actors_statuses(tmp_path: Path) -> None:
    port = _free_port()
    text = SELF_CHECKED.format(port=port, db=tmp_path / "m.db") + textwrap.dedent(
        """
        [[slos]]
        name = "own-api-availability"
        objective = 0.999
        bad = { metric = "api_requests_total", labels = { status = "5.." } }
        total = { metric = "api_requests_total" }
        """
    )
    app = App(parse_config(text, env={}), env={})
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(app.run)
            while not app.routing.slos.statuses():
                await trio.sleep(0.02)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                page = (await client.get("/")).text
            await app.stop()
    assert "<h2>SLOs</h2>" in page
    assert 'data-slo="own-api-availability"' in page
    assert "99.90%" in page
    for window in ("5m", "30m", "1h", "6h", "2h", "1d", "3d"):
        assert f'title="burn rate over {window}"' in page

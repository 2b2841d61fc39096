"""The server actor on real sockets: port 0, TLS, bind errors, probe semantics under an outage."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest
import trio
import trustme

from actors.checks.actor import CheckActor
from actors.checks.postgres import PostgresProbe
from actors.checks.probe import CheckContext
from actors.models import CheckResult
from actors.state import HealthState
from actors.web.app import create_app
from actors.web.errors import ServerStartError
from actors.web.server import HttpServer

from ..checks.conftest import make_config
from .conftest import free_port


async def test_serves_on_port_zero_and_stops_gracefully() -> None:
    state = HealthState()
    server = HttpServer(app=create_app(health=state), listen="127.0.0.1:0")
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        assert server.port
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{server.port}/api/health/live")
        assert response.status_code == 200
        assert response.json() == {"status": "pass"}
        assert response.headers["cache-control"] == "no-store"  # answered by the fast path
        server.stop()
    # run() returned by itself after the graceful stop


async def test_shutdown_trigger() -> None:
    stop = trio.Event()
    server = HttpServer(
        app=create_app(health=HealthState()), listen="127.0.0.1:0", shutdown_trigger=stop.wait
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        stop.set()


async def test_bind_error_is_clear() -> None:
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        server = HttpServer(app=create_app(health=HealthState()), listen=f"127.0.0.1:{port}")
        with pytest.raises(ServerStartError, match=f"cannot listen on 127.0.0.1:{port}"):
            await server.run()


async def test_reuse_port_shares_the_address_between_listeners() -> None:
    """Two servers with `reuse_port` bind the same address (as the processes of `run --workers`
    do) and both serve it; one without it is refused with the usual error."""
    first = HttpServer(app=create_app(health=HealthState()), listen="127.0.0.1:0", reuse_port=True)
    async with trio.open_nursery() as nursery:
        await nursery.start(first.run)
        listen = f"127.0.0.1:{first.port}"
        second = HttpServer(app=create_app(health=HealthState()), listen=listen, reuse_port=True)
        await nursery.start(second.run)
        assert second.port == first.port
        async with httpx.AsyncClient() as client:
            for _ in range(4):  # new connections, spread by the kernel
                response = await client.get(
                    f"http://{listen}/api/health/live", headers={"Connection": "close"}
                )
                assert response.status_code == 200
        plain = HttpServer(app=create_app(health=HealthState()), listen=listen)
        with pytest.raises(ServerStartError, match=f"cannot listen on {listen}"):
            await plain.run()
        first.stop()
        second.stop()


async def test_tls(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    server = HttpServer(
        app=create_app(health=HealthState()),
        listen="127.0.0.1:0",
        tls_cert=str(cert_file),
        tls_key=str(key_file),
    )
    context = ssl.create_default_context()
    ca.configure_trust(context)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        assert server.urls[0].startswith("https://")
        async with httpx.AsyncClient(verify=context) as client:
            response = await client.get(f"https://127.0.0.1:{server.port}/api/health/live")
        assert response.status_code == 200
        server.stop()


async def test_database_outage_fails_readiness_never_liveness() -> None:
    config = make_config(
        name="database",
        kind="postgres",
        dsn=f"postgresql://postgres@127.0.0.1:{free_port()}/test",
        interval="1s",
        timeout="1s",
        critical=True,
    )
    state = HealthState(checks={"database": True})
    first = trio.Event()

    def on_change(new: CheckResult, old: CheckResult | None) -> None:
        first.set()

    state.add_listener(on_change)
    actor = CheckActor(config=config, probe=PostgresProbe(config, CheckContext()), health=state)
    server = HttpServer(app=create_app(health=state, render_interval=0), listen="127.0.0.1:0")
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        base = f"http://127.0.0.1:{server.port}"
        async with httpx.AsyncClient(base_url=base) as client:
            assert (await client.get("/api/health/ready")).status_code == 503  # not started
            assert (await client.get("/api/health/live")).status_code == 200
            await nursery.start(actor.run)
            with trio.fail_after(5):
                await first.wait()
            ready = await client.get("/api/health/ready")
            assert ready.status_code == 503
            assert "critical check database fails: postgres:" in ready.json()["reasons"][0]
            health = await client.get("/api/health")
            assert health.status_code == 503
            assert health.json()["checks"]["database"]["status"] == "fail"
            assert (await client.get("/api/health/live")).status_code == 200
        nursery.cancel_scope.cancel()


async def test_keep_alive_survives_an_answer_that_skips_the_body() -> None:
    from pydantic import SecretStr
    from quart import Blueprint, Response, jsonify

    from actors.web.access import AccessGuard, Scope, requires
    from actors.web.config import SecurityConfig

    blueprint = Blueprint("writes", __name__)

    @blueprint.post("/api/v1/things")
    @requires(Scope.EVENTS_WRITE)
    async def things() -> Response:
        return jsonify({"ok": True})

    # 30 refusals from one address: no limit on failed authentications here.
    security = SecurityConfig(api_token=SecretStr("tok"), max_body_bytes=2048, auth_failures=0)
    access = AccessGuard(security, listen="127.0.0.1:0")
    app = create_app(health=HealthState(), blueprints=[blueprint], access=access)
    server = HttpServer(app=app, listen="127.0.0.1:0")
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        base = f"http://127.0.0.1:{server.port}"

        def client() -> list[str]:
            stalls = []
            for i in range(30):
                with httpx.Client(base_url=base, timeout=2.0) as http:
                    assert http.post("/api/v1/things", json={"events": []}).status_code == 401
                    path = "/api/v1/checks" if i % 2 else "/api/health/live"
                    try:
                        assert http.get(path).status_code == 200
                    except httpx.ReadTimeout:
                        stalls.append(path)
            return stalls

        assert await trio.to_thread.run_sync(client) == []
        server.stop()

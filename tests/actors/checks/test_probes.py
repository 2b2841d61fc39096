"""Probes against real local servers: HTTP(S) made slow/failing/resetting, TCP, Redis, Postgres."""

from __future__ import annotations

import datetime as dt
import ssl
from typing import Any

import httpx
import pytest
import trio
import trustme

from actors.checks.actor import CheckActor
from actors.checks.errors import ProbeError
from actors.checks.http import HttpProbe, cert_not_after
from actors.checks.logic import Observation
from actors.checks.postgres import PostgresProbe
from actors.checks.probe import CheckContext, ClosingNowProbe, Probe
from actors.checks.redis import RedisProbe, parse_redis_url
from actors.checks.tcp import TcpProbe
from actors.checks.tlscontext import ClientContexts
from actors.models import CheckResult, CheckStatus
from actors.state import HealthState

from .conftest import LocalServer, make_config, require_service, start_tls_server

P, W, F = CheckStatus.PASS, CheckStatus.WARN, CheckStatus.FAIL


async def _once(config: Any, probe: Probe) -> CheckResult:
    actor = CheckActor(config=config, probe=probe, health=HealthState())
    try:
        return await actor.run_once()
    finally:
        await probe.aclose()


def _http(port: int, path: str, **extra: object) -> Any:
    values: dict[str, object] = {"timeout": "1s", **extra}
    return make_config(name="api", kind="http", url=f"http://127.0.0.1:{port}{path}", **values)


async def test_http_pass_and_expectations(http_server: LocalServer) -> None:
    port = http_server.port
    config = _http(port, "/ok", body_contains="ok")
    result = await _once(config, HttpProbe(config, CheckContext()))
    assert result.status is P, result.message
    assert result.details["status_code"] == 200
    config = _http(port, "/json", json_path="$.status", json_equals="up")
    assert (await _once(config, HttpProbe(config, CheckContext()))).status is P
    config = _http(port, "/status/503")
    result = await _once(config, HttpProbe(config, CheckContext()))
    assert result.status is F
    assert "HTTP 503" in result.message
    config = _http(port, "/echo", method="POST", body="hello", body_contains='"body": "hello"')
    assert (await _once(config, HttpProbe(config, CheckContext()))).status is P


async def test_http_keeps_the_connection_and_retries_a_stale_one(
    http_server: LocalServer,
) -> None:
    config = _http(http_server.port, "/ok")
    probe = HttpProbe(config, CheckContext())
    actor = CheckActor(config=config, probe=probe, health=HealthState())
    try:
        for _ in range(5):
            assert (await actor.run_once()).status is P
        assert http_server.connections == 1
    finally:
        await probe.aclose()
    config = _http(http_server.port, "/close")
    probe = HttpProbe(config, CheckContext())
    actor = CheckActor(config=config, probe=probe, health=HealthState())
    try:
        for _ in range(3):
            result = await actor.run_once()
            assert result.status is P, result.message
    finally:
        await probe.aclose()


async def test_http_and_tcp_probes_close_their_kept_connection_at_once(
    http_server: LocalServer,
) -> None:
    # `close_now` (a `ClosingNowProbe`): the kept socket closed without a checkpoint, as the
    # actor does on its way out.
    config = _http(http_server.port, "/ok")
    probe = HttpProbe(config, CheckContext())
    assert isinstance(probe, ClosingNowProbe)
    assert (await CheckActor(config=config, probe=probe, health=HealthState()).run_once()).status
    kept = probe.watched_socket()
    assert kept is not None
    assert probe.close_now()
    assert kept.fileno() == -1
    assert probe.watched_socket() is None
    await probe.aclose()  # nothing left to close
    config = make_config(name="t", kind="tcp", host="127.0.0.1", port=http_server.port, watch=True)
    tcp = TcpProbe(config, CheckContext())
    assert (await CheckActor(config=config, probe=tcp, health=HealthState()).run_once()).status
    socket_kept = tcp.watched_socket()
    assert socket_kept is not None
    assert tcp.close_now()
    assert socket_kept.fileno() == -1
    # With a test transport, the client is closed by `aclose` only.
    mocked = HttpProbe(
        _http(1, "/ok"), CheckContext(transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    )
    assert not mocked.close_now()
    await mocked.aclose()


async def test_http_redirect_policy(http_server: LocalServer) -> None:
    config = _http(http_server.port, "/redirect")
    assert (await _once(config, HttpProbe(config, CheckContext()))).status is P
    config = _http(http_server.port, "/redirect", follow_redirects=False)
    result = await _once(config, HttpProbe(config, CheckContext()))
    assert result.status is F
    assert "302" in result.message


async def test_http_slow_reset_garbage_refused(http_server: LocalServer) -> None:
    port = http_server.port
    config = _http(port, "/slow", timeout="200ms", interval="1s")
    result = await _once(config, HttpProbe(config, CheckContext()))
    assert result.status is F
    assert result.message == "timed out after 200ms"
    config = _http(port, "/reset")
    result = await _once(config, HttpProbe(config, CheckContext()))
    assert result.status is F
    assert result.message
    config = _http(port, "/garbage")
    result = await _once(config, HttpProbe(config, CheckContext()))
    assert result.status is F
    assert result.message
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    config = _http(closed, "/ok")
    result = await _once(config, HttpProbe(config, CheckContext()))
    assert result.status is F
    assert "refused" in result.message.lower()


async def test_http_mock_transport() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"a": {"b": 3}})

    config = make_config(
        name="m", kind="http", url="https://example.invalid/x", json_path="a.b", json_equals=3
    )
    probe = HttpProbe(config, CheckContext(transport=httpx.MockTransport(handler)))
    assert (await _once(config, probe)).status is P


async def test_https_self_signed_fails_and_trusted_passes(
    nursery: trio.Nursery, ca: trustme.CA
) -> None:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    _, port = await start_tls_server(nursery, cert)
    url = f"https://127.0.0.1:{port}/ok"
    config = make_config(name="tls", kind="http", url=url, timeout="2s", interval="10s")
    result = await _once(config, HttpProbe(config, CheckContext()))
    assert result.status is F
    assert "certificate verify failed" in result.message
    trusted = ssl.create_default_context()
    ca.configure_trust(trusted)
    result = await _once(config, HttpProbe(config, CheckContext(tls=ClientContexts(trusted))))
    assert result.status is P, result.message
    assert float(result.details["cert_days_left"]) > 14  # type: ignore[arg-type]
    insecure = make_config(name="tls", kind="http", url=url, tls_verify=False)
    result = await _once(insecure, HttpProbe(insecure, CheckContext()))
    assert result.status is P, result.message


async def test_https_expiring_and_expired(nursery: trio.Nursery, ca: trustme.CA) -> None:
    now = dt.datetime.now(dt.UTC)
    soon = ca.issue_cert("127.0.0.1", not_after=now + dt.timedelta(days=3))
    _, port = await start_tls_server(nursery, soon)
    config = make_config(
        name="tls", kind="http", url=f"https://127.0.0.1:{port}/ok", cert_expiry_warn_days=14
    )
    trusted = ssl.create_default_context()
    ca.configure_trust(trusted)
    result = await _once(config, HttpProbe(config, CheckContext(tls=ClientContexts(trusted))))
    assert result.status is W, result.message
    assert "certificate expires in 2 days" in result.message

    expired = ca.issue_cert(
        "127.0.0.1",
        not_before=now - dt.timedelta(days=30),
        not_after=now - dt.timedelta(days=2),
    )
    _, port = await start_tls_server(nursery, expired)
    config = make_config(name="tls", kind="http", url=f"https://127.0.0.1:{port}/ok")
    result = await _once(config, HttpProbe(config, CheckContext(tls=ClientContexts(trusted))))
    assert result.status is F
    assert "expired" in result.message
    insecure = make_config(
        name="tls", kind="http", url=f"https://127.0.0.1:{port}/ok", tls_verify=False
    )
    result = await _once(insecure, HttpProbe(insecure, CheckContext()))
    assert result.status is F
    assert "certificate expired 2 days ago" in result.message


def test_cert_not_after_parses_der(ca: trustme.CA) -> None:
    when = dt.datetime(2031, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
    cert = ca.issue_cert("example.com", not_after=when)
    pem = cert.cert_chain_pems[0].bytes()
    der = ssl.PEM_cert_to_DER_cert(pem.decode())
    assert cert_not_after(der) == when.timestamp()
    with pytest.raises(ValueError):
        cert_not_after(b"\x30\x82\xff")


async def test_tcp(http_server: LocalServer) -> None:
    config = make_config(name="port", kind="tcp", host="127.0.0.1", port=http_server.port)
    result = await _once(config, TcpProbe(config, CheckContext()))
    assert result.status is P
    assert result.latency_seconds < 1
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    config = make_config(name="port", kind="tcp", host="127.0.0.1", port=closed)
    result = await _once(config, TcpProbe(config, CheckContext()))
    assert result.status is F
    assert result.message == "connection refused"


def test_parse_redis_url() -> None:
    target = parse_redis_url("rediss://user:p%40ss@cache:6380/2")
    assert (target.host, target.port, target.db, target.tls) == ("cache", 6380, 2, True)
    assert (target.username, target.password) == ("user", "p@ss")
    with pytest.raises(ProbeError):
        parse_redis_url("redis://h/x")


async def test_redis_real_server() -> None:
    require_service("127.0.0.1", 6379)
    config = make_config(name="cache", kind="redis", url="redis://127.0.0.1:6379/1")
    probe = RedisProbe(config, CheckContext())
    actor = CheckActor(config=config, probe=probe, health=HealthState())
    try:
        for _ in range(3):  # the connection is reused
            result = await actor.run_once()
            assert result.status is P, result.message
            assert result.latency_seconds < 0.5
    finally:
        await probe.aclose()
    wrong = make_config(name="cache", kind="redis", url="redis://:wrong@127.0.0.1:6379/0")
    result = await _once(wrong, RedisProbe(wrong, CheckContext()))
    assert result.status is F
    assert "AUTH" in result.message
    assert "wrong" not in result.message


async def test_redis_against_http_server_is_garbage(http_server: LocalServer) -> None:
    config = make_config(name="cache", kind="redis", url=f"redis://127.0.0.1:{http_server.port}")
    result = await _once(config, RedisProbe(config, CheckContext()))
    assert result.status is F
    assert result.message


async def test_postgres_real_server_and_outage() -> None:
    require_service("127.0.0.1", 5432)
    config = make_config(
        name="database",
        kind="postgres",
        dsn="postgresql://postgres@127.0.0.1:5432/test",
        query="SELECT 1",
    )
    probe = PostgresProbe(config, CheckContext())
    actor = CheckActor(config=config, probe=probe, health=HealthState())
    try:
        first = await actor.run_once()
        assert first.status is P, first.message
        assert first.message == "Database healthy"
        second = await actor.run_once()
        assert second.status is P
        assert second.latency_seconds < first.latency_seconds + 0.5  # connection reused
    finally:
        await probe.aclose()
    bad = make_config(
        name="database",
        kind="postgres",
        dsn="postgresql://postgres@127.0.0.1:5432/test",
        query="SELECT * FROM no_such_table",
    )
    result = await _once(bad, PostgresProbe(bad, CheckContext()))
    assert result.status is F
    assert "no_such_table" in result.message
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    down = make_config(
        name="database",
        kind="postgres",
        dsn=f"postgresql://postgres:secretpw@127.0.0.1:{closed}/test",
    )
    result = await _once(down, PostgresProbe(down, CheckContext()))
    assert result.status is F
    assert result.message.startswith("postgres:")
    assert "secretpw" not in result.message


class _Boom:
    async def probe(self) -> Observation:
        raise RuntimeError("probe bug")

    async def aclose(self) -> None:
        return None


async def test_actor_turns_exceptions_into_failures() -> None:
    config = make_config(name="x", kind="self")
    result = await _once(config, _Boom())
    assert result.status is F
    assert result.message == "RuntimeError: probe bug"

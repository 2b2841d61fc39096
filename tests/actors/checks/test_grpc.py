"""grpc checks against a real grpcio server on 127.0.0.1 serving grpc.health.v1."""

from __future__ import annotations

import textwrap
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
import trustme
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from actors.checks import CheckContext, build_probe
from actors.checks.grpc import GrpcProbe, describe_rpc_error, judge_status
from actors.models import CheckStatus
from supervisor.config import ConfigError, parse_config

from .conftest import loaded_when, make_config, run_check

P, F = CheckStatus.PASS, CheckStatus.FAIL
Status = health_pb2.HealthCheckResponse.ServingStatus


class Health(health.HealthServicer):  # type: ignore[misc]
    """The stock servicer; a Check of the service "slow" answers only once `release` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.calls: list[str] = []

    def Check(self, request: Any, context: Any) -> Any:
        self.calls.append(request.service)
        if request.service == "slow":
            self.release.wait(30)
        return super().Check(request, context)


class Server:
    """A grpcio server with the health service on 127.0.0.1; `port` is its port."""

    def __init__(self, port: int = 0, credentials: Any = None) -> None:
        self.health = Health()
        self.health.set("", Status.SERVING)
        self.health.set("orders", Status.SERVING)
        self.health.set("billing", Status.NOT_SERVING)
        self.health.set("legacy", Status.SERVICE_UNKNOWN)
        self.health.set("slow", Status.SERVING)
        self._server = grpc.server(ThreadPoolExecutor(max_workers=4))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        address = f"127.0.0.1:{port}"
        if credentials is None:
            self.port = self._server.add_insecure_port(address)
        else:
            self.port = self._server.add_secure_port(address, credentials)
        self._server.start()

    def stop(self) -> None:
        self.health.release.set()
        self._server.stop(None).wait()


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    yield running
    running.stop()


def _grpc(target: str, **keys: Any) -> Any:
    values: dict[str, Any] = {"timeout": "2s", "interval": "10s", **keys}
    return make_config(name="rpc", kind="grpc", target=target, **values)


async def test_serving_passes(server: Server) -> None:
    target = f"127.0.0.1:{server.port}"
    result = await run_check(_grpc(target, service="orders"))
    assert result.status is P, result.message
    assert result.message == f"{target} service 'orders' is SERVING"
    assert result.details["status"] == "SERVING"
    result = await run_check(_grpc(target))
    assert (result.status, result.message) == (P, f"{target} (server) is SERVING")
    assert server.health.calls == ["orders", ""]


@pytest.mark.parametrize("status", ["NOT_SERVING", "SERVICE_UNKNOWN"])
async def test_a_status_other_than_serving_fails_naming_it(server: Server, status: str) -> None:
    target = f"127.0.0.1:{server.port}"
    service = {"NOT_SERVING": "billing", "SERVICE_UNKNOWN": "legacy"}[status]
    result = await run_check(_grpc(target, service=service))
    assert result.status is F
    assert result.message == f"{target} service {service!r} is {status}"
    assert result.details["status"] == status


async def test_a_service_the_server_does_not_know_fails(server: Server) -> None:
    target = f"127.0.0.1:{server.port}"
    result = await run_check(_grpc(target, service="nope"))
    assert result.status is F
    assert result.message == f"{target} service 'nope' is unknown to the health service (NOT_FOUND)"


async def test_a_server_without_the_health_service_fails() -> None:
    bare = grpc.server(ThreadPoolExecutor(max_workers=1))
    port = bare.add_insecure_port("127.0.0.1:0")
    bare.start()
    try:
        result = await run_check(_grpc(f"127.0.0.1:{port}"))
    finally:
        bare.stop(None).wait()
    assert result.status is F
    assert result.message == (
        f"127.0.0.1:{port} (server): the server has no grpc.health.v1 service (UNIMPLEMENTED)"
    )


async def test_an_unreachable_server_fails_then_a_restarted_one_passes() -> None:
    first = Server()
    port = first.port
    first.stop()
    config = _grpc(f"127.0.0.1:{port}")
    probe = build_probe(config, CheckContext())
    assert isinstance(probe, GrpcProbe)
    try:
        result = await run_check(config)
        assert result.status is F
        assert result.message.startswith(f"127.0.0.1:{port} (server): UNAVAILABLE: ")
        assert "Connection refused" in result.message, result.message
        with pytest.raises(Exception, match="UNAVAILABLE"):
            await probe.probe()
        again = Server(port)  # the same port: the failed channel is not reused
        try:
            observation = await probe.probe()
        finally:
            again.stop()
        assert observation.status is P, observation.message
        assert observation.latency is not None
    finally:
        await probe.aclose()


async def test_a_server_that_does_not_answer_times_out(server: Server) -> None:
    result = await run_check(_grpc(f"127.0.0.1:{server.port}", service="slow", timeout="300ms"))
    assert result.status is F
    assert result.message == "timed out after 300ms"


async def test_tls_with_a_private_ca(tmp_path: Path) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    chain = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
    credentials = grpc.ssl_server_credentials([(leaf.private_key_pem.bytes(), chain)])
    secure = Server(credentials=credentials)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    try:
        target = f"127.0.0.1:{secure.port}"
        result = await run_check(_grpc(target, tls=True, ca_file=str(ca_file)))
        assert result.status is P, result.message
        # the system roots do not trust the private CA
        result = await run_check(_grpc(target, tls=True))
        assert result.status is F
        assert result.message.startswith(f"{target} (server): UNAVAILABLE: "), result.message
    finally:
        secure.stop()


def test_judging_is_pure() -> None:
    passing = judge_status("h:1 (server)", "SERVING", latency=0.01)
    assert (passing.status, passing.latency, passing.message) == (
        P,
        0.01,
        "h:1 (server) is SERVING",
    )
    failing = judge_status("h:1 service 'a'", "NOT_SERVING")
    assert (failing.status, failing.message) == (F, "h:1 service 'a' is NOT_SERVING")
    assert describe_rpc_error("s", "UNAVAILABLE", "down") == "s: UNAVAILABLE: down"
    assert describe_rpc_error("s", "PERMISSION_DENIED", "") == "s: PERMISSION_DENIED"


def test_bad_grpc_tables_are_explained() -> None:
    source = textwrap.dedent(
        """\
        [[checks]]
        name = "a"
        kind = "grpc"
        target = "https://api.example.com"

        [[checks]]
        name = "b"
        kind = "grpc"
        target = " "
        ca_file = "/nonexistent/ca.pem"
        """
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(source, file="c.toml", env={})
    lines = str(caught.value).splitlines()
    assert any(
        line.startswith("c.toml:4:1: checks[0].target")
        and "expected host:port, got the URL 'https://api.example.com'; set tls = true" in line
        for line in lines
    ), lines
    assert any("checks[1].target" in line and "target is empty" in line for line in lines)
    assert any("checks[1].ca_file" in line and "cannot read" in line for line in lines)


def test_grpc_is_loaded_by_the_first_probe_not_by_the_configuration() -> None:
    source = '[[checks]]\nname = "g"\nkind = "grpc"\ntarget = "127.0.0.1:9"\n'
    assert loaded_when(source, "grpc") == (False, True)

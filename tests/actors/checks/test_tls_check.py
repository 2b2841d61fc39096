"""tls checks against a real TLS server on 127.0.0.1 serving trustme certificates."""

from __future__ import annotations

import datetime as dt
import ssl
import textwrap
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
import trustme

from actors.checks import CheckContext, build_probe
from actors.checks.tls import TlsProbe, ca_context, judge_expiry, verify_failure
from actors.checks.tlscontext import ClientContexts
from actors.models import CheckStatus
from supervisor.config import ConfigError, parse_config

from .conftest import make_config, run_check

P, W, F = CheckStatus.PASS, CheckStatus.WARN, CheckStatus.FAIL
NAME = "tls.example.test"
DAY = 86400.0


async def _hold(stream: trio.abc.Stream) -> None:
    """Shake hands (the first receive does) and wait for the client to close."""
    try:
        while await stream.receive_some(4096):
            pass
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return


class Servers:
    """Starts TLS servers in the test's nursery, each with its certificate chain."""

    def __init__(self, nursery: trio.Nursery, directory: Path) -> None:
        self._nursery = nursery
        self._directory = directory
        self._count = 0

    async def serve(self, chain_pem: bytes, key_pem: bytes) -> int:
        """Serve TLS with the certificate chain `chain_pem`; returns the port."""
        self._count += 1
        chain = self._directory / f"chain{self._count}.pem"
        chain.write_bytes(chain_pem)
        key = self._directory / f"key{self._count}.pem"
        key.write_bytes(key_pem)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(chain, key)
        listeners = await self._nursery.start(
            partial(trio.serve_ssl_over_tcp, _hold, 0, context, host="127.0.0.1")
        )
        return int(listeners[0].transport_listener.socket.getsockname()[1])

    async def serve_leaf(self, leaf: trustme.LeafCert) -> int:
        chain = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
        return await self.serve(chain, leaf.private_key_pem.bytes())


@pytest.fixture
def servers(nursery: trio.Nursery, tmp_path: Path) -> Servers:
    return Servers(nursery, tmp_path)


def _leaf(ca: trustme.CA, days: float) -> trustme.LeafCert:
    not_after = dt.datetime.now(dt.UTC) + dt.timedelta(days=days)
    return ca.issue_cert(NAME, "127.0.0.1", common_name=NAME, not_after=not_after)


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def _tls(port: int, **keys: Any) -> Any:
    values: dict[str, Any] = {"timeout": "2s", "interval": "10s", **keys}
    return make_config(name="cert", kind="tls", host="127.0.0.1", port=port, **values)


async def test_a_valid_certificate_far_from_expiry_passes(
    servers: Servers, ca: trustme.CA, ca_file: str
) -> None:
    port = await servers.serve_leaf(_leaf(ca, 400))
    result = await run_check(_tls(port, server_name=NAME, ca_file=ca_file))
    assert result.status is P, result.message
    assert result.message.startswith(f"127.0.0.1:{port} ({NAME}): certificate valid for 39")
    assert result.details["days_left"] == pytest.approx(400, abs=0.1)
    assert result.details["subject"] == NAME
    assert str(result.details["issuer"]).startswith("trustme")  # no commonName: the organization
    assert str(result.details["tls_version"]).startswith("TLS")
    assert str(result.details["not_after"]).endswith("Z")


async def test_the_shared_verifying_context_is_used_without_ca_file(
    servers: Servers, ca: trustme.CA
) -> None:
    port = await servers.serve_leaf(_leaf(ca, 400))
    verifying = ssl.create_default_context()
    ca.configure_trust(verifying)
    context = CheckContext(tls=ClientContexts(verifying))
    probe = build_probe(_tls(port), context)  # the address is in the certificate too
    assert isinstance(probe, TlsProbe)
    observation = await probe.probe()
    assert observation.status is P, observation.message
    assert observation.latency is not None
    assert observation.message.startswith(f"127.0.0.1:{port}: certificate valid for")


async def test_a_certificate_expiring_soon_warns_then_fails(
    servers: Servers, ca: trustme.CA, ca_file: str
) -> None:
    port = await servers.serve_leaf(_leaf(ca, 10))
    result = await run_check(_tls(port, server_name=NAME, ca_file=ca_file))
    assert result.status is W
    assert result.message.startswith(f"127.0.0.1:{port} ({NAME}): certificate valid for 9 more")
    assert result.message.endswith("; warn_days is 14")
    assert result.details["days_left"] == pytest.approx(10, abs=0.1)
    port = await servers.serve_leaf(_leaf(ca, 1.5))
    result = await run_check(_tls(port, server_name=NAME, ca_file=ca_file))
    assert result.status is F
    assert result.message.endswith("; fail_days is 3")
    assert result.message.startswith(f"127.0.0.1:{port} ({NAME}): certificate valid for 1 more")


async def test_an_expired_certificate_fails(servers: Servers, ca: trustme.CA, ca_file: str) -> None:
    now = dt.datetime.now(dt.UTC)
    leaf = ca.issue_cert(
        NAME, not_before=now - dt.timedelta(days=30), not_after=now - dt.timedelta(days=1)
    )
    port = await servers.serve_leaf(leaf)
    result = await run_check(_tls(port, server_name=NAME, ca_file=ca_file))
    assert result.status is F
    assert result.message == (
        f"127.0.0.1:{port} ({NAME}): certificate verify failed: certificate has expired"
    )


async def test_a_wrong_hostname_fails(servers: Servers, ca: trustme.CA, ca_file: str) -> None:
    port = await servers.serve_leaf(_leaf(ca, 400))
    result = await run_check(_tls(port, server_name="other.example.test", ca_file=ca_file))
    assert result.status is F
    assert result.message == (
        f"127.0.0.1:{port} (other.example.test): certificate is not valid for"
        " other.example.test (hostname mismatch)"
    )


async def test_a_self_signed_certificate_fails(servers: Servers, ca: trustme.CA) -> None:
    # the CA's own certificate, served as the server's: self-signed, unknown to the system store
    port = await servers.serve(ca.cert_pem.bytes(), ca.private_key_pem.bytes())
    result = await run_check(_tls(port, server_name=NAME))
    assert result.status is F
    assert result.message == (
        f"127.0.0.1:{port} ({NAME}): certificate verify failed: self-signed certificate"
    )


async def test_a_certificate_of_another_ca_fails(servers: Servers, ca_file: str) -> None:
    port = await servers.serve_leaf(_leaf(trustme.CA(), 400))
    result = await run_check(_tls(port, server_name=NAME, ca_file=ca_file))
    assert result.status is F
    assert result.message == (
        f"127.0.0.1:{port} ({NAME}): certificate verify failed:"
        " unable to get local issuer certificate"
    )


async def test_a_server_that_does_not_speak_tls_fails(nursery: trio.Nursery) -> None:
    async def plain(stream: trio.abc.Stream) -> None:
        await stream.send_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await stream.aclose()

    listeners = await nursery.start(partial(trio.serve_tcp, plain, 0, host="127.0.0.1"))
    port = listeners[0].socket.getsockname()[1]
    result = await run_check(_tls(port))
    assert result.status is F
    assert result.message.startswith(f"127.0.0.1:{port}: TLS handshake failed: "), result.message


async def test_a_closed_port_fails() -> None:
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: refused
        result = await run_check(_tls(port))
    assert result.status is F
    assert result.message == "connection refused"


async def test_a_server_that_never_answers_times_out(nursery: trio.Nursery) -> None:
    async def silent(stream: trio.abc.Stream) -> None:
        await trio.sleep_forever()

    listeners = await nursery.start(partial(trio.serve_tcp, silent, 0, host="127.0.0.1"))
    port = listeners[0].socket.getsockname()[1]
    result = await run_check(_tls(port, timeout="300ms"))
    assert result.status is F
    assert result.message == "timed out after 300ms"


def test_judge_expiry_is_pure() -> None:
    now = 1_700_000_000.0
    passing = judge_expiry("h:443", now + 30 * DAY, now, warn_days=14, fail_days=3, latency=0.1)
    assert (passing.status, passing.latency) == (P, 0.1)
    assert passing.message == (
        "h:443: certificate valid for 30 more days (until 2023-12-14T22:13:20Z)"
    )
    assert passing.details == {"days_left": 30.0, "not_after": "2023-12-14T22:13:20Z"}
    assert judge_expiry("h", now + 13.9 * DAY, now, warn_days=14, fail_days=3).status is W
    assert judge_expiry("h", now + 2.9 * DAY, now, warn_days=14, fail_days=3).status is F
    assert judge_expiry("h", now + 2.9 * DAY, now, warn_days=0, fail_days=0).status is P
    expired = judge_expiry("h", now - DAY, now, warn_days=0, fail_days=0)
    assert expired.status is F
    assert expired.message == "h: certificate expired on 2023-11-13T22:13:20Z"


def test_verify_failure_names_the_name_on_a_mismatch() -> None:
    mismatch = ssl.SSLCertVerificationError(1, "x")
    mismatch.verify_message = "Hostname mismatch, certificate is not valid for 'a.test'."
    assert verify_failure("h:443", "a.test", mismatch) == (
        "h:443: certificate is not valid for a.test (hostname mismatch)"
    )
    expired = ssl.SSLCertVerificationError(1, "x")
    expired.verify_message = "certificate has expired"
    assert verify_failure("h:443", "a.test", expired) == (
        "h:443: certificate verify failed: certificate has expired"
    )


def test_ca_context_refuses_files_without_a_certificate(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read"):
        ca_context(str(tmp_path / "missing.pem"))
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")
    with pytest.raises(ValueError, match="holds no"):
        ca_context(str(empty))


def test_bad_tls_tables_are_explained(tmp_path: Path) -> None:
    source = textwrap.dedent(
        f"""\
        [[checks]]
        name = "a"
        kind = "tls"
        host = "example.com"
        warn_days = 5
        fail_days = 7

        [[checks]]
        name = "b"
        kind = "tls"
        host = " "
        port = 70000
        ca_file = "{tmp_path / "missing.pem"}"
        """
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(source, file="c.toml", env={})
    lines = str(caught.value).splitlines()
    assert any(
        line.startswith("c.toml:6:1: checks[0].fail_days")
        and "fail_days (7) must not be more than warn_days (5)" in line
        for line in lines
    ), lines
    assert any("checks[1].host" in line and "host is empty" in line for line in lines), lines
    assert any("checks[1].port" in line for line in lines), lines
    assert any("checks[1].ca_file" in line and "cannot read" in line for line in lines), lines


def test_defaults() -> None:
    config = make_config(name="t", kind="tls", host="example.com")
    assert (config.port, config.server_name, config.ca_file) == (443, "", "")
    assert (config.warn_days, config.fail_days) == (14, 3)
    config = make_config(name="t", kind="tls", host="example.com", warn_days=2)
    assert (config.warn_days, config.fail_days) == (2, 2)

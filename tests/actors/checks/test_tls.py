"""TLS client contexts: one per verification mode, shared by the checks given the same object."""

from __future__ import annotations

import ssl
from functools import partial

import trio
import trustme

from actors.checks import CheckContext, build_check_actor
from actors.checks.tlscontext import ClientContexts
from actors.models import CheckStatus
from actors.state import HealthState

from .conftest import RecordingContexts, make_config, start_tls_server


def _trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def test_one_context_per_mode() -> None:
    contexts = ClientContexts()
    verifying = contexts.get()
    assert contexts.get() is verifying
    assert contexts.get(verify=True) is verifying
    assert verifying.verify_mode is ssl.CERT_REQUIRED
    assert verifying.check_hostname
    lax = contexts.get(verify=False)
    assert contexts.get(verify=False) is lax
    assert lax is not verifying
    assert lax.verify_mode is ssl.CERT_NONE
    assert not lax.check_hostname
    # no process-wide state: another object has contexts of its own
    assert ClientContexts().get() is not verifying


def test_a_given_verifying_context_is_used(ca: trustme.CA) -> None:
    trusted = _trusting(ca)
    contexts = ClientContexts(trusted)
    assert contexts.get() is trusted
    assert contexts.get() is trusted
    lax = contexts.get(verify=False)
    assert lax is not trusted
    assert lax.verify_mode is ssl.CERT_NONE


async def test_checks_built_with_one_object_share_its_contexts(
    nursery: trio.Nursery, ca: trustme.CA
) -> None:
    _, port = await start_tls_server(nursery, ca.issue_cert("127.0.0.1"))
    url = f"https://127.0.0.1:{port}/ok"
    trusted = _trusting(ca)
    tls = RecordingContexts(trusted)
    configs = [
        make_config(name="a", kind="http", url=url, timeout="2s"),
        make_config(name="b", kind="http", url=url, timeout="2s"),
        make_config(name="c", kind="http", url=url, timeout="2s", tls_verify=False),
        make_config(name="d", kind="http", url=url, timeout="2s", tls_verify=False),
    ]
    health = HealthState()
    actors = [build_check_actor(config, CheckContext(tls=tls), health=health) for config in configs]
    try:
        for actor in actors:
            result = await actor.run_once()
            # a and b pass only with `trusted`: the system CA store does not know this CA
            assert result.status is CheckStatus.PASS, (actor.config.name, result.message)
    finally:
        for actor in actors:
            await actor.probe.aclose()
    assert len(tls.handed) == 4
    assert tls.handed[0] is trusted
    assert tls.handed[1] is trusted
    assert tls.handed[2] is tls.handed[3] is tls.get(verify=False)


async def _pong(stream: trio.abc.Stream) -> None:
    try:
        while await stream.receive_some(4096):
            await stream.send_all(b"+PONG\r\n")
    except (trio.BrokenResourceError, ssl.SSLError):
        return


async def test_rediss_checks_use_the_given_contexts(nursery: trio.Nursery, ca: trustme.CA) -> None:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    listeners = await nursery.start(
        partial(trio.serve_ssl_over_tcp, _pong, 0, server, host="127.0.0.1")
    )
    port = listeners[0].transport_listener.socket.getsockname()[1]
    trusted = _trusting(ca)
    tls = RecordingContexts(trusted)
    config = make_config(name="cache", kind="redis", url=f"rediss://127.0.0.1:{port}", timeout="2s")
    actor = build_check_actor(config, CheckContext(tls=tls), health=HealthState())
    try:
        result = await actor.run_once()
    finally:
        await actor.probe.aclose()
    assert result.status is CheckStatus.PASS, result.message
    assert tls.handed == [trusted]


async def test_a_given_verifying_context_replaces_the_verification(
    nursery: trio.Nursery, ca: trustme.CA
) -> None:
    _, port = await start_tls_server(nursery, ca.issue_cert("127.0.0.1"))
    config = make_config(name="a", kind="http", url=f"https://127.0.0.1:{port}/ok", timeout="2s")
    context = CheckContext(tls=ClientContexts(_trusting(ca)))
    actor = build_check_actor(config, context, health=HealthState())
    try:
        result = await actor.run_once()
    finally:
        await actor.probe.aclose()
    assert result.status is CheckStatus.PASS, result.message

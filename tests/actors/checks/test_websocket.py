"""websocket checks against a real trio-websocket server on 127.0.0.1."""

from __future__ import annotations

import ssl
import textwrap
from functools import partial
from typing import Any

import pytest
import trio
import trustme
from trio_websocket import ConnectionClosed, WebSocketRequest, serve_websocket

from actors.checks import CheckContext, build_probe
from actors.checks.tlscontext import ClientContexts
from actors.checks.websocket import WebSocketProbe, judge_message, shown_url
from actors.models import CheckStatus
from supervisor.config import ConfigError, parse_config

from .conftest import loaded_when, make_config, run_check

P, F = CheckStatus.PASS, CheckStatus.FAIL


class Server:
    """The path picks the behaviour: /echo echoes, /wrong answers "nope", /forbidden refuses the
    upgrade with 403, /close closes without answering, /silent never answers."""

    def __init__(self) -> None:
        self.port = 0
        self.received: list[str | bytes] = []
        self.paths: list[str] = []

    async def handle(self, request: WebSocketRequest) -> None:
        self.paths.append(request.path)
        if request.path == "/forbidden":
            await request.reject(403, body=b"no")
            return
        ws = await request.accept()
        try:
            if request.path == "/close":
                await ws.aclose(1001, "going away")
                return
            message = await ws.get_message()
            self.received.append(message)
            if request.path == "/echo":
                await ws.send_message(message)
            elif request.path == "/wrong":
                await ws.send_message("nope")
            else:
                await trio.sleep_forever()
            await ws.get_message()  # until the client closes
        except ConnectionClosed:
            return


async def _start(nursery: trio.Nursery, context: ssl.SSLContext | None = None) -> Server:
    server = Server()
    listening = await nursery.start(
        partial(serve_websocket, server.handle, "127.0.0.1", 0, context, handler_nursery=nursery)
    )
    server.port = listening.port
    return server


@pytest.fixture
async def server(nursery: trio.Nursery) -> Server:
    return await _start(nursery)


def _ws(url: str, **keys: Any) -> Any:
    values: dict[str, Any] = {"timeout": "2s", "interval": "10s", **keys}
    return make_config(name="socket", kind="websocket", url=url, **values)


async def test_an_echo_holding_expect_passes(server: Server) -> None:
    url = f"ws://127.0.0.1:{server.port}/echo"
    result = await run_check(_ws(url, send="ping 42", expect="42"))
    assert result.status is P, result.message
    assert result.message == f"{url} answered '42'"
    assert result.details["answer"] == "ping 42"
    assert server.received == ["ping 42"]


async def test_opening_alone_passes_without_expect(server: Server) -> None:
    url = f"ws://127.0.0.1:{server.port}/echo"
    probe = build_probe(_ws(url), CheckContext())
    assert isinstance(probe, WebSocketProbe)
    observation = await probe.probe()
    assert (observation.status, observation.message) == (P, f"{url} opened")
    assert observation.latency is not None
    assert server.paths == ["/echo"]


async def test_a_wrong_answer_fails(server: Server) -> None:
    url = f"ws://127.0.0.1:{server.port}/wrong"
    result = await run_check(_ws(url, send="ping", expect="pong"))
    assert result.status is F
    assert result.message == f"{url} answered 'nope'; expected 'pong'"


async def test_a_refused_upgrade_fails_with_its_status(server: Server) -> None:
    url = f"ws://127.0.0.1:{server.port}/forbidden"
    result = await run_check(_ws(url, expect="pong"))
    assert result.status is F
    assert result.message == f"{url}: upgrade refused: HTTP 403"


async def test_a_server_closing_without_an_answer_fails(server: Server) -> None:
    url = f"ws://127.0.0.1:{server.port}/close"
    result = await run_check(_ws(url, expect="pong"))
    assert result.status is F
    assert result.message == (f"{url}: closed without an answer (code 1001 GOING_AWAY: going away)")


async def test_a_server_dropping_the_connection_before_the_upgrade_fails(
    nursery: trio.Nursery,
) -> None:
    async def drop(stream: trio.abc.Stream) -> None:
        await stream.receive_some(65536)  # the upgrade request
        await stream.aclose()

    listeners = await nursery.start(partial(trio.serve_tcp, drop, 0, host="127.0.0.1"))
    url = f"ws://127.0.0.1:{listeners[0].socket.getsockname()[1]}/"
    result = await run_check(_ws(url, expect="pong"))
    assert result.status is F
    assert result.message == f"{url}: closed before answering the upgrade"


async def test_a_server_that_never_answers_times_out(server: Server) -> None:
    url = f"ws://127.0.0.1:{server.port}/silent"
    result = await run_check(_ws(url, send="ping", expect="pong", timeout="300ms"))
    assert result.status is F
    assert result.message == "timed out after 300ms"
    assert server.paths == ["/silent"]  # upgraded, then silent


async def test_a_closed_port_fails() -> None:
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        result = await run_check(_ws(f"ws://127.0.0.1:{port}/", expect="x"))
    assert result.status is F
    assert result.message == "connection refused"


async def test_wss_is_verified_with_the_shared_context(nursery: trio.Nursery) -> None:
    ca = trustme.CA()
    serving = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(serving)
    server = await _start(nursery, serving)
    url = f"wss://127.0.0.1:{server.port}/echo"
    verifying = ssl.create_default_context()
    ca.configure_trust(verifying)
    trusting = CheckContext(tls=ClientContexts(verifying))
    result = await run_check(_ws(url, send="ping", expect="ping"), trusting)
    assert result.status is P, result.message
    result = await run_check(_ws(url, send="ping", expect="ping"))  # the system store
    assert result.status is F
    assert result.message == (
        f"{url}: certificate verify failed: unable to get local issuer certificate"
    )


def test_judge_message_is_pure() -> None:
    assert judge_message("u", b'{"ok": true}', '"ok"', latency=0.1).status is P
    failing = judge_message("u", "x" * 100, "y")
    assert failing.status is F
    assert failing.message == f"u answered {'x' * 80 + '...'!r}; expected 'y'"


def test_urls_are_shown_without_query_or_user_info() -> None:
    assert shown_url("wss://user:secret@example.com:8443/feed?token=abc") == (
        "wss://example.com:8443/feed"
    )
    assert shown_url("ws://[::1]/") == "ws://[::1]/"
    assert shown_url("ws://example.com") == "ws://example.com/"


def test_bad_websocket_tables_are_explained() -> None:
    source = textwrap.dedent(
        """\
        [[checks]]
        name = "a"
        kind = "websocket"
        url = "http://example.com/socket?token=hunter2"

        [[checks]]
        name = "b"
        kind = "websocket"
        url = "ws://example.com:99999/"
        """
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(source, file="c.toml", env={})
    text = str(caught.value)
    lines = text.splitlines()
    assert any(
        line.startswith("c.toml:4:1: checks[0].url")
        and "expected a ws:// or wss:// URL, got 'http://example.com/socket'" in line
        for line in lines
    ), lines
    assert any("checks[1].url" in line and "expected 1-65535" in line for line in lines), lines
    assert "hunter2" not in text


def test_trio_websocket_is_loaded_by_the_first_probe_not_by_the_configuration() -> None:
    source = '[[checks]]\nname = "w"\nkind = "websocket"\nurl = "ws://127.0.0.1:9/"\n'
    assert loaded_when(source, "trio_websocket") == (False, True)

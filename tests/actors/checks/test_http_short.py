"""The http client's short way for plain answers: it reads what h11 reads, hands h11 the rest,
and waits on the process's `CheckTimer` until the run's deadline instead of a cancel scope."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
import trio

from actors.checks import http11
from actors.checks.actor import CheckActor
from actors.checks.http import HttpProbe
from actors.checks.http11 import UNUSUAL, Http11Client, parse_simple
from actors.checks.logic import Observation
from actors.checks.probe import CheckContext
from actors.checks.schedule import Lateness
from actors.checks.timer import CheckTimer
from actors.clock import VirtualClock
from actors.models import CheckStatus
from actors.state import HealthState

from .conftest import LocalServer, make_config

_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Tag: a b\r\n\r\nok"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_OK, (200, "OK", ((b"content-length", b"2"), (b"x-tag", b"a b")), b"ok")),
        (
            b"HTTP/1.1 503\r\nContent-Length: 0\r\n\r\n",
            (503, "", ((b"content-length", b"0"),), b""),
        ),
        (
            b"HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-length: 0\r\n\r\n",
            (302, "Found", ((b"location", b"/x"), (b"content-length", b"0")), b""),
        ),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: Keep-Alive\r\n\r\nok", tuple),
        (b"HTTP/1.1 200 OK\r\nContent-Le", None),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok", None),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", UNUSUAL),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", UNUSUAL),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", UNUSUAL),
        (b"HTTP/1.1 200 OK\r\n\r\nuntil the end", UNUSUAL),
        (b"HTTP/1.1 204 No Content\r\n\r\n", UNUSUAL),
        (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 2\r\n\r\n", UNUSUAL),
        (b"HTTP/1.1 100 Continue\r\n\r\n", UNUSUAL),
        (b"HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 2\r\n\r\nok", UNUSUAL),
        (b"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\nContent-Length: 2\r\n\r\nok", UNUSUAL),
        (b"HTTP/1.1 200 OK\r\nX: a\x01b\r\nContent-Length: 2\r\n\r\nok", UNUSUAL),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", UNUSUAL),
        (b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok", UNUSUAL),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA", UNUSUAL),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\n", UNUSUAL),
        (b"NOT HTTP\r\n\r\n", UNUSUAL),
    ],
)
def test_parse_simple_takes_plain_answers_only(data: bytes, expected: Any) -> None:
    parsed = parse_simple(data)
    if expected is tuple:
        assert isinstance(parsed, tuple)
    else:
        assert parsed == expected


def test_parse_simple_leaves_head_answers_to_h11() -> None:
    assert parse_simple(_OK, head=True) is UNUSUAL


# Canned answers: (pieces sent with a pause between, close after answering); a list of such
# lists answers the requests in turn.
_CANNED: dict[str, tuple[list[bytes] | list[list[bytes]], bool]] = {
    "plain": ([_OK], False),
    "split": ([b"HTTP/1.1 200 OK\r\nContent-Le", b"ngth: 5\r\n\r\nhel", b"lo"], False),
    "no reason": ([b"HTTP/1.1 503\r\nContent-Length: 0\r\n\r\n"], False),
    "redirect": ([b"HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n"], False),
    "chunked": (
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"2\r\nok\r\n0\r\n\r\n"],
        False,
    ),
    "connection close": (
        [b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"],
        True,
    ),
    "http/1.0": ([b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"], True),
    "until close": ([b"HTTP/1.1 200 OK\r\n\r\nthe body"], True),
    "204": ([b"HTTP/1.1 204 No Content\r\n\r\n"], False),
    "continue": (
        [b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"],
        False,
    ),
    "big body": ([b"HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\n" + b"x" * 70000], False),
    "extra bytes": ([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA"], False),
    "extra bytes, then a plain answer": (
        [[b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokJUNK"], [_OK]],
        False,
    ),
    "bad header": ([b"HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 2\r\n\r\nok"], False),
    "garbage": ([b"NOT HTTP AT ALL\r\n\r\n"], True),
    "closed in mid-answer": ([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok"], True),
    "closed without answering": ([], True),
}


class _Canned:
    """Answers every request with the canned answer; counts connections."""

    def __init__(self, pieces: list[bytes] | list[list[bytes]], close: bool) -> None:
        turns = pieces if pieces and isinstance(pieces[0], list) else [pieces]
        self.turns: list[list[bytes]] = turns  # type: ignore[assignment]
        self.close = close
        self.connections = 0

    async def handle(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        buffer = b""
        turn = 0
        try:
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        return
                    buffer += chunk
                buffer = buffer.partition(b"\r\n\r\n")[2]
                pieces = self.turns[turn % len(self.turns)]
                turn += 1
                for i, piece in enumerate(pieces):
                    if i:
                        await trio.sleep(0.02)
                    await stream.send_all(piece)
                if self.close:
                    return
        except trio.BrokenResourceError:
            return
        finally:
            await stream.aclose()


async def _twice(client: Http11Client, url: str) -> list[tuple[Any, ...]]:
    """The outcomes of two requests in a row (the second on the kept connection, if any)."""
    outcomes: list[tuple[Any, ...]] = []
    for _ in range(2):
        try:
            with trio.fail_after(5):
                raw = await client.request("GET", url, [], None, follow_redirects=False)
        except Exception as exc:
            outcomes.append(("error", type(exc).__name__, str(exc).split(":")[0]))
        else:
            outcomes.append((raw.status, raw.reason, raw.headers, raw.body, raw.truncated))
    await client.aclose()
    return outcomes


@pytest.mark.parametrize("case", sorted(_CANNED))
async def test_answers_read_as_h11_reads_them(
    case: str, nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The short way (a connection to an IP address) gives what h11 alone gives (a connection
    opened by name: trio's socket, read by h11), and keeps the connection as h11 does."""
    pieces, close = _CANNED[case]
    short: list[object] = []

    def spy(data: bytes | bytearray, *, head: bool = False) -> object:
        answer = parse_simple(data, head=head)
        short.append(answer)
        return answer

    monkeypatch.setattr(http11, "parse_simple", spy)
    servers = []
    for _ in range(2):
        server = _Canned(pieces, close)
        listeners = await nursery.start(partial(trio.serve_tcp, server.handle, 0, host="127.0.0.1"))
        servers.append((server, listeners[0].socket.getsockname()[1]))
    (by_ip, ip_port), (by_name, name_port) = servers
    new: Callable[[], Http11Client] = partial(Http11Client, ssl_context=_no_tls, max_body=1024)
    got = await _twice(new(), f"http://127.0.0.1:{ip_port}/")
    read_short = [a for a in short if isinstance(a, tuple)]
    short.clear()
    expected = await _twice(new(), f"http://localhost:{name_port}/")
    assert not short  # the reference never went the short way
    assert got == expected
    assert by_ip.connections == by_name.connections
    if case in ("plain", "split", "no reason", "redirect"):
        assert len(read_short) == 2  # and these two did, on one connection
        assert by_ip.connections == 1


def _no_tls() -> Any:
    raise AssertionError("no TLS here")


async def test_a_run_waits_on_the_timer_until_its_deadline(
    http_server: LocalServer, nursery: trio.Nursery
) -> None:
    """With the timer, a hung answer ends at the run's deadline (the timer wakes the wait: no
    cancel scope of the run's own) and the connection is given up; the next run connects
    again and passes."""
    timer = CheckTimer()
    await nursery.start(timer.run)
    url = f"http://127.0.0.1:{http_server.port}"
    ok = HttpProbe(make_config(name="a", kind="http", url=url + "/ok"), CheckContext())
    first = await ok.probe_within(trio.current_time() + 5, timer)
    assert first is not None
    assert first.status is CheckStatus.PASS
    slow = HttpProbe(make_config(name="b", kind="http", url=url + "/slow"), CheckContext())
    start = trio.current_time()
    assert await slow.probe_within(start + 0.2, timer) is None
    assert 0.2 <= trio.current_time() - start < 1.0
    assert timer.statistics().timed >= 1
    assert slow.watched_socket() is None  # given up
    assert (await ok.probe_within(trio.current_time() + 5, timer)) is not None
    await ok.aclose()
    await slow.aclose()


async def test_a_timed_out_run_through_the_timer_reads_as_before(
    http_server: LocalServer, nursery: trio.Nursery
) -> None:
    timer = CheckTimer()
    await nursery.start(timer.run)
    config = make_config(
        name="api", kind="http", url=f"http://127.0.0.1:{http_server.port}/slow", timeout="200ms"
    )
    probe = HttpProbe(config, CheckContext())
    actor = CheckActor(config=config, probe=probe, health=HealthState(), timer=timer)
    try:
        result = await actor.run_once()
    finally:
        await probe.aclose()
    assert result.status is CheckStatus.FAIL
    assert result.message == "timed out after 200ms"
    assert actor.statistics().timeouts == 1


class _HangsOnTimer:
    """A `TimedProbe` that never answers: it waits on the timer until the deadline."""

    def __init__(self) -> None:
        self.runs = 0
        self.deadlines: list[float] = []

    async def probe(self) -> Observation:
        raise AssertionError("the actor has a timer: probe_within is called")

    async def probe_within(self, deadline: float, timer: CheckTimer) -> Observation | None:
        self.runs += 1
        self.deadlines.append(deadline - trio.current_time())
        assert not await timer.wait(deadline)
        return None

    async def aclose(self) -> None:
        pass


async def test_a_timeout_on_the_timer_keeps_the_lateness_contract(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A run timed out on the timer while the monitor was late is withheld, one on time is
    reported; the deadline carries the grace of recent lateness as the cancel scope did."""
    lateness = Lateness()
    health = HealthState(checks={"target": True}, clock=VirtualClock())
    config = make_config(name="target", kind="self", interval="10s", timeout="2s")
    probe = _HangsOnTimer()
    timer = CheckTimer()
    actor = CheckActor(
        config=config,
        probe=probe,
        health=health,
        clock=VirtualClock(),
        schedule=lateness,
        timer=timer,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(timer.run)
        await nursery.start(actor.run)
        while probe.runs < 1:
            await trio.sleep(0.01)
        lateness.ran(0.5, trio.current_time())  # another check started late meanwhile
        while probe.runs < 2:
            await trio.sleep(0.01)
        assert health.current("target") is None  # the first timeout: withheld
        while health.current("target") is None:
            await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    result = health.current("target")
    assert result is not None
    assert result.message == "timed out after 2s"
    assert actor.statistics().timeouts == 1
    assert probe.deadlines[0] == 2.0
    assert math.isclose(probe.deadlines[1], 2.0)

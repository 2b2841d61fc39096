"""Connection watch: a check whose kept connection the target closes or resets runs at once.

The targets are real servers on 127.0.0.1: an in-process HTTP/1.1 keep-alive server (run under
the autojump clock, so "at once" and "the next interval" are exact virtual times) that can die
(listener and connections closed, with FIN or RST) or close idle connections by policy, and a
separate process killed with SIGKILL (real time, a 60 s interval, a bounded wait).
"""

from __future__ import annotations

import signal
import socket
import ssl
import struct
import subprocess
import sys
from functools import partial
from typing import Any

import pytest
import trio
import trio.testing
import trustme

from actors.checks.actor import CheckActor
from actors.checks.factory import build_check_actor
from actors.checks.http import HttpProbe
from actors.checks.logic import Observation
from actors.checks.probe import CheckContext, SocketWatchingProbe, WatchingProbe
from actors.checks.tcp import TcpProbe
from actors.checks.timer import CheckTimer
from actors.checks.tlscontext import ClientContexts
from actors.clock import VirtualClock
from actors.models import CheckResult, CheckStatus
from actors.state import HealthState

from .conftest import make_config

P, F = CheckStatus.PASS, CheckStatus.FAIL
_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class Target:
    """An HTTP/1.1 keep-alive server (any request: 200 "ok") that can die or close idle
    connections after `idle_close` seconds (a keep-alive timeout, as nginx's), or close each
    connection right after its first answer without saying so (`close_after_answer`). With `tls`,
    it speaks HTTPS with that context."""

    def __init__(
        self,
        *,
        idle_close: float | None = None,
        close_after_answer: bool = False,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.idle_close = idle_close
        self.close_after_answer = close_after_answer
        self.tls = tls
        self.port = 0
        self.requests = 0
        self.connections = 0
        self.idle_closes = 0
        self._listeners: list[trio.SocketListener] = []
        self._streams: set[trio.SocketStream] = set()
        self._serving = trio.CancelScope()

    async def start(self, nursery: trio.Nursery) -> None:
        self._listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = self._listeners[0].socket.getsockname()[1]
        listeners: list[Any] = list(self._listeners)
        if self.tls is not None:
            listeners = [trio.SSLListener(item, self.tls) for item in listeners]
        nursery.start_soon(self._serve, listeners)

    async def _serve(self, listeners: list[Any]) -> None:
        with self._serving:
            await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, stream: trio.abc.Stream) -> None:
        raw = stream.transport_stream if isinstance(stream, trio.SSLStream) else stream
        assert isinstance(raw, trio.SocketStream)
        self.connections += 1
        self._streams.add(raw)
        buffer = b""
        try:
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk: bytes | bytearray = b""
                    with trio.move_on_after(self.idle_close or float("inf")) as idle:
                        chunk = await stream.receive_some(65536)
                    if idle.cancelled_caught:
                        self.idle_closes += 1
                        return
                    if not chunk:
                        return
                    buffer += chunk
                _, _, buffer = buffer.partition(b"\r\n\r\n")
                self.requests += 1
                await stream.send_all(_ANSWER)
                if self.close_after_answer:
                    return
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return
        finally:
            self._streams.discard(raw)
            await trio.aclose_forcefully(stream)

    async def die(self, *, reset: bool = False) -> None:
        """Stop listening and close every connection (with RST when `reset`), as the kernel does
        for a process that exits (or is killed)."""
        for stream in list(self._streams):
            if reset:
                linger = struct.pack("ii", 1, 0)
                stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            await trio.aclose_forcefully(stream)
        self._serving.cancel()
        for listener in self._listeners:
            await listener.aclose()


def _http(port: int, **keys: Any) -> Any:
    values: dict[str, Any] = {"interval": "60s", "timeout": "2s", **keys}
    return make_config(name="api", kind="http", url=f"http://127.0.0.1:{port}/health", **values)


def _tcp(port: int, **keys: Any) -> Any:
    values: dict[str, Any] = {"interval": "60s", "timeout": "2s", **keys}
    return make_config(name="port", kind="tcp", host="127.0.0.1", port=port, **values)


@pytest.fixture(params=["own deadline", "timer"])
async def timer(request: pytest.FixtureRequest, nursery: trio.Nursery) -> CheckTimer | None:
    """Each watch test twice: the actor waiting with a deadline of its own, and on a running
    `CheckTimer` that watches the probe's socket."""
    if request.param == "own deadline":
        return None
    timer = CheckTimer()
    await nursery.start(timer.run)
    return timer


def _actor(
    config: Any, context: CheckContext | None = None, timer: CheckTimer | None = None
) -> CheckActor:
    context = context or CheckContext(clock=VirtualClock())
    return build_check_actor(config, context, health=HealthState(clock=context.clock), timer=timer)


async def _wait_run(actor: CheckActor, after: int) -> CheckResult:
    """The result of the first run after `after` runs (polled every 10 ms of the clock, bounded)."""
    with trio.fail_after(120):
        while actor.statistics().runs <= after:
            await trio.sleep(0.01)
    result = actor.statistics().last_result
    assert result is not None
    return result


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
@pytest.mark.parametrize("kind", ["http", "tcp"])
async def test_target_dying_runs_the_check_at_once(
    timer: CheckTimer | None,
    autojump_clock: trio.testing.MockClock,
    nursery: trio.Nursery,
    kind: str,
    reset: bool,
) -> None:
    target = Target()
    await target.start(nursery)
    config = _http(target.port) if kind == "http" else _tcp(target.port, watch=True)
    actor = _actor(config, timer=timer)
    await nursery.start(actor.run)
    assert (await _wait_run(actor, 0)).status is P
    assert target.connections == 1  # kept open
    await trio.sleep(25)  # idle on the kept connection, mid-interval
    died = trio.current_time()
    await target.die(reset=reset)
    result = await _wait_run(actor, 1)
    assert trio.current_time() - died < 0.1  # not 35 s later, at the next interval
    assert result.status is F
    assert result.message == "connection refused"
    assert actor.statistics().early_runs == 1
    # the schedule is unchanged: the next run comes at its slot on the check's grid
    assert (await _wait_run(actor, 2)).status is F
    slot = actor.cadence.grid_at_or_after(died)
    assert slot > died + 10
    assert slot <= trio.current_time() < slot + 1
    assert actor.statistics().early_runs == 1  # a failed run left nothing to watch


async def test_http_target_killed_with_sigkill(
    timer: CheckTimer | None, nursery: trio.Nursery
) -> None:
    """A real process serving HTTP/1.1 keep-alive, killed: the check fails within moments,
    though its interval is 60 s."""
    script = (
        "import http.server\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    protocol_version = 'HTTP/1.1'\n"
        "    def do_GET(self):\n"
        "        self.send_response(200)\n"
        "        self.send_header('Content-Length', '2')\n"
        "        self.end_headers()\n"
        "        self.wfile.write(b'ok')\n"
        "    def log_message(self, *args):\n"
        "        pass\n"
        "server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)\n"
        "print(server.server_address[1], flush=True)\n"
        "server.serve_forever()\n"
    )
    process = await trio.lowlevel.open_process(
        [sys.executable, "-c", script], stdout=subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        line = b""
        with trio.fail_after(60):
            while not line.endswith(b"\n"):
                chunk = await process.stdout.receive_some(64)
                assert chunk, "the target exited before it listened"
                line += chunk
        actor = _actor(_http(int(line)), CheckContext(), timer)
        await nursery.start(actor.run)
        assert (await _wait_run(actor, 0)).status is P
        process.send_signal(signal.SIGKILL)
        killed = trio.current_time()
        result = await _wait_run(actor, 1)
        assert trio.current_time() - killed < 30  # the next scheduled run is 60 s away
        assert result.status is F
        # refused, or reset when the early run's connection reached the listening socket
        # before the exiting process's kernel closed it
        assert result.message in ("connection refused", "connection reset by peer")
        assert actor.statistics().early_runs == 1
    finally:
        process.kill()
        with trio.move_on_after(10):
            await process.wait()


async def test_idle_close_by_policy_is_no_failure_and_no_loop(
    timer: CheckTimer | None, autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    """A server that closes connections idle for 3 s (shorter than the 10 s interval): every
    early run passes, and there is one at most per interval."""
    target = Target(idle_close=3.0)
    await target.start(nursery)
    actor = _actor(_http(target.port, interval="10s"), timer=timer)
    await nursery.start(actor.run)
    results: list[CheckResult] = []
    while len(results) < 20:
        results.append(await _wait_run(actor, len(results)))
    elapsed = trio.current_time()
    stats = actor.statistics()
    assert [r.status for r in results] == [P] * 20
    assert target.idle_closes >= 10  # the policy was exercised
    assert 1 <= stats.early_runs <= elapsed / 10 + 1  # one early run per interval at most
    # the schedule is unchanged (the first two runs may be half an interval apart)
    assert stats.runs - stats.early_runs <= elapsed / 10 + 2


async def test_a_server_closing_after_every_answer_is_no_loop(
    timer: CheckTimer | None, autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    """Closing right after each answer (without saying so) is a loss at once after every run;
    the early runs still come one per interval at most."""
    target = Target(close_after_answer=True)
    await target.start(nursery)
    actor = _actor(_http(target.port, interval="10s"), timer=timer)
    await nursery.start(actor.run)
    with trio.fail_after(60):  # virtual
        while trio.current_time() < 50:
            await trio.sleep(1)
    stats = actor.statistics()
    assert stats.failures == 0
    assert 1 <= stats.early_runs <= 6
    assert stats.runs <= 12


async def test_https_session_tickets_are_no_loss(
    timer: CheckTimer | None, autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    """TLS 1.3 servers send session tickets after the handshake; the watch reads past them."""
    ca = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_tls)
    client_tls = ssl.create_default_context()
    ca.configure_trust(client_tls)
    target = Target(tls=server_tls)
    await target.start(nursery)
    config = make_config(
        name="tls", kind="http", url=f"https://127.0.0.1:{target.port}/", interval="10s"
    )
    actor = _actor(
        config, CheckContext(clock=VirtualClock(), tls=ClientContexts(client_tls)), timer
    )
    await nursery.start(actor.run)
    for runs in range(4):
        assert (await _wait_run(actor, runs)).status is P
    assert actor.statistics().early_runs == 0
    assert target.connections == 1
    await target.die()
    result = await _wait_run(actor, 4)
    assert result.status is F
    assert actor.statistics().early_runs == 1


@pytest.mark.parametrize("kind", ["http", "tcp"])
async def test_without_watch_the_next_slot_finds_it(
    timer: CheckTimer | None,
    autojump_clock: trio.testing.MockClock,
    nursery: trio.Nursery,
    kind: str,
) -> None:
    """`watch = false` on http; tcp's default, which keeps no connection."""
    target = Target()
    await target.start(nursery)
    config = _http(target.port, watch=False) if kind == "http" else _tcp(target.port)
    assert config.watch is False
    actor = _actor(config, timer=timer)
    await nursery.start(actor.run)
    assert (await _wait_run(actor, 0)).status is P
    if kind == "tcp":
        with trio.fail_after(5):  # the server sees the connection closed
            while target.connections == 0 or target._streams:
                await trio.sleep(0.01)
    await target.die()
    assert (await _wait_run(actor, 1)).status is F
    assert trio.current_time() >= actor.cadence.grid_at_or_after(30)  # the next slot
    assert actor.statistics().early_runs == 0


async def test_tcp_watch_drops_a_greeting_and_replaces_the_kept_connection(
    timer: CheckTimer | None, autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    """A server that greets (as SMTP does) is not a loss; each run opens a new connection and
    closes the one before."""
    open_streams: list[trio.SocketStream] = []

    async def greet(stream: trio.SocketStream) -> None:
        open_streams.append(stream)
        await stream.send_all(b"220 ready\r\n")
        try:
            while await stream.receive_some(1024):
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        open_streams.remove(stream)  # closed by the client

    listeners = await nursery.start(partial(trio.serve_tcp, greet, 0, host="127.0.0.1"))
    port = listeners[0].socket.getsockname()[1]
    actor = _actor(_tcp(port, watch=True, interval="10s"), timer=timer)
    await nursery.start(actor.run)
    for runs in range(3):
        assert (await _wait_run(actor, runs)).status is P
    assert actor.statistics().early_runs == 0
    with trio.fail_after(5):
        while len(open_streams) != 1:
            await trio.sleep(0.01)


async def test_probes_are_watching_probes() -> None:
    assert isinstance(HttpProbe(_http(9), CheckContext()), WatchingProbe)
    assert isinstance(TcpProbe(_tcp(9), CheckContext()), WatchingProbe)
    # which name their socket, for the one watch of a `CheckTimer`
    assert isinstance(HttpProbe(_http(9), CheckContext()), SocketWatchingProbe)
    assert isinstance(TcpProbe(_tcp(9), CheckContext()), SocketWatchingProbe)
    assert not isinstance(_Scripted(), SocketWatchingProbe)


class _Scripted:
    """Passes; `lose()` makes `wait_lost` return once, as a lost connection."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._lost = trio.Event()

    def lose(self) -> None:
        self._lost.set()

    async def probe(self) -> Observation:
        self.times.append(trio.current_time())
        return Observation.ok("up")

    async def wait_lost(self) -> None:
        await self._lost.wait()
        self._lost = trio.Event()

    async def aclose(self) -> None:
        pass


async def test_actor_runs_at_once_once_per_interval(
    timer: CheckTimer | None, autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    """Also with a timer: a watching probe that names no socket keeps the actor's own wait."""
    probe = _Scripted()
    config = make_config(name="b", kind="self", interval="60s", timeout="1s")
    actor = CheckActor(
        config=config, probe=probe, health=HealthState(), clock=VirtualClock(), timer=timer
    )
    await nursery.start(actor.run)
    await _wait_run(actor, 0)
    first = probe.times[0]
    await trio.sleep(10 - trio.current_time())
    probe.lose()
    await _wait_run(actor, 1)
    assert probe.times[1] == 10.0  # at once
    await trio.sleep(20 - trio.current_time())
    probe.lose()  # 10 s after the last early run: within the interval, so no early run
    await _wait_run(actor, 2)
    # the scheduled run, on the check's grid
    assert probe.times[2] == actor.cadence.grid_at_or_after(first + 30)
    assert probe.times[2] < 75  # (check b's slot: 31 s)
    assert actor.statistics().early_runs == 1
    await trio.sleep(75 - trio.current_time())
    probe.lose()  # 65 s after the last early run
    await _wait_run(actor, 3)
    assert probe.times[3] == 75.0
    assert actor.statistics().early_runs == 2

"""Connection hygiene on a real listener with real sockets: descriptors of closed connections
are released at once, a connection stays usable (or is closed) after a 413 or a 401, the
connection limit refuses gracefully, and /api/health/live answers at the descriptor limit."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from pydantic import SecretStr
from quart import Blueprint, Response, jsonify

from actors.state import HealthState
from actors.web.access import AccessGuard, Scope, requires
from actors.web.app import create_app
from actors.web.config import SecurityConfig
from actors.web.server import HttpServer

ROOT = Path(__file__).resolve().parents[3]
LIMIT = 2048


def _app() -> object:
    blueprint = Blueprint("writes", __name__)

    @blueprint.post("/api/v1/things")
    @requires(Scope.EVENTS_WRITE)
    async def things() -> Response:
        return jsonify({"ok": True})

    security = SecurityConfig(api_token=SecretStr("tok"), max_body_bytes=LIMIT)
    access = AccessGuard(security, listen="127.0.0.1:0")
    return create_app(health=HealthState(), blueprints=[blueprint], access=access)


def _read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes] | None:
    """One HTTP/1.1 answer read off `sock` (None: the server closed the connection)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body[:length]


@contextmanager
def _connected(port: int) -> Iterator[socket.socket]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        yield sock
    finally:
        sock.close()


async def _wait_open(server: HttpServer, count: int) -> None:
    with trio.fail_after(30):  # a condition: the old behaviour held them for 75 s
        while server.connections[0].open != count:
            await trio.sleep(0.01)


async def test_connections_closed_by_the_peer_are_released_at_once() -> None:
    server = HttpServer(app=_app(), listen="127.0.0.1:0", keep_alive_timeout=75.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        port = server.port
        assert port is not None

        def open_and_close() -> None:
            socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(200)]
            for sock in socks[:100]:  # half after one request, half without any
                sock.sendall(b"GET /api/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
                assert _read_answer(sock) is not None
            for sock in socks:
                sock.close()

        await trio.to_thread.run_sync(open_and_close)
        await _wait_open(server, 0)
        server.stop()


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ("Authorization: Bearer tok\r\n", b"x" * (3 * LIMIT), 413),
        ("Authorization: Bearer tok\r\n", b"x" * (LIMIT + 1), 413),
        ("", b"{}" + b" " * (3 * LIMIT), 401),
        ("Authorization: Bearer nope\r\n", b"{}", 401),
    ],
    ids=["413-3x", "413-just-over", "401-large", "401"],
)
async def test_the_next_request_after_a_refusal_is_answered_or_closed(
    headers: str, body: bytes, status: int
) -> None:
    server = HttpServer(app=_app(), listen="127.0.0.1:0")
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        port = server.port
        assert port is not None

        def exchange() -> tuple[int, object]:
            with _connected(port) as sock:
                head = (
                    "POST /api/v1/things HTTP/1.1\r\nHost: x\r\n"
                    f"Content-Type: application/json\r\n{headers}"
                    f"Content-Length: {len(body)}\r\n\r\n"
                )
                sock.sendall(head.encode() + body)
                first = _read_answer(sock)
                assert first is not None
                try:
                    sock.sendall(b"GET /api/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
                    second = _read_answer(sock)
                except (ConnectionResetError, BrokenPipeError):
                    second = None  # closed: as good as an answer
                return first[0], second and second[0]

        with trio.fail_after(30):  # a hang is the failure
            first, second = await trio.to_thread.run_sync(exchange)
        assert first == status
        assert second in (200, None)
        server.stop()


@pytest.mark.parametrize(
    ("request_head", "status"),
    [
        ("GET /api/health/live HTTP/1.1\r\n", 200),
        ("GET /api/v1/nope HTTP/1.1\r\n", 404),
        ("POST /api/v1/things HTTP/1.1\r\nContent-Type: application/json\r\n", 401),
        (
            "POST /api/v1/things HTTP/1.1\r\nContent-Type: application/json\r\n"
            "Authorization: Bearer tok\r\n",
            200,
        ),
    ],
    ids=["live", "404", "401", "200"],
)
async def test_an_answer_sent_before_the_body_arrived_keeps_the_connection(
    request_head: str, status: int
) -> None:
    """The server may answer before it has read the body (a route that ignores it, a refusal).
    The connection then stays usable once the body has arrived, or the answer says
    `Connection: close`: never a close the client cannot foresee (its next request would be
    lost)."""
    server = HttpServer(app=_app(), listen="127.0.0.1:0")
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        port = server.port
        assert port is not None

        def exchange() -> tuple[int, dict[str, str], int | None]:
            body = b"{}" + b" " * 30
            with _connected(port) as sock:
                head = f"{request_head}Host: x\r\nContent-Length: {len(body)}\r\n\r\n"
                sock.sendall(head.encode())
                if "things" not in request_head:  # answered before the body is sent
                    first = _read_answer(sock)
                    sock.sendall(body)
                else:  # the guard reads the body first (413); sent apart all the same
                    sock.sendall(body)
                    first = _read_answer(sock)
                assert first is not None
                try:
                    sock.sendall(b"GET /api/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
                    second = _read_answer(sock)
                except (ConnectionResetError, BrokenPipeError):
                    second = None
                return first[0], first[1], second and second[0]

        with trio.fail_after(30):
            first, headers, second = await trio.to_thread.run_sync(exchange)
        assert first == status
        assert headers.get("connection") != "close"
        assert second == 200
        server.stop()


async def test_a_response_ended_before_the_body_was_read_keeps_the_connection() -> None:
    """The same, made certain: the client sends the body only once the server has done all it
    does after the application's last message, before the body (its tasks all wait)."""
    ended = threading.Event()

    async def ignores_the_body(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b"{}" if scope["path"] == "/first" else b"[]"
        headers = [(b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send, {"type": "http.response.body", "body": body})
            await trio.testing.wait_all_tasks_blocked()
            ended.set()

    server = HttpServer(app=ignores_the_body, listen="127.0.0.1:0")
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        port = server.port
        assert port is not None

        def exchange() -> tuple[dict[str, str], object]:
            with _connected(port) as sock:
                sock.sendall(b"POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
                first = _read_answer(sock)
                assert first is not None
                assert ended.wait(10)
                try:
                    sock.sendall(b"hello")
                    sock.sendall(b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n")
                    second = _read_answer(sock)
                except (ConnectionResetError, BrokenPipeError):
                    second = None
                return first[1], second and second[2]

        with trio.fail_after(30):
            headers, second = await trio.to_thread.run_sync(exchange)
        assert headers.get("connection") != "close"
        assert second == b"[]"
        server.stop()


async def test_an_answer_before_a_large_body_says_it_closes() -> None:
    """A body the server will not wait for (declared larger than it drains) gets an answer
    with `Connection: close`, and the connection is closed after it."""
    server = HttpServer(app=_app(), listen="127.0.0.1:0")
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        port = server.port
        assert port is not None

        def exchange() -> tuple[int, dict[str, str], bytes]:
            with _connected(port) as sock:
                sock.sendall(
                    b"POST /api/v1/things HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n{"
                )
                first = _read_answer(sock)
                assert first is not None
                rest = b""
                while chunk := sock.recv(65536):
                    rest += chunk
                return first[0], first[1], rest

        with trio.fail_after(30):
            status, headers, rest = await trio.to_thread.run_sync(exchange)
        assert status in (401, 413)
        assert headers["connection"] == "close"
        assert rest == b""
        server.stop()


async def test_the_connection_limit_refuses_gracefully_but_not_liveness() -> None:
    server = HttpServer(app=_app(), listen="127.0.0.1:0", max_connections=3)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        port = server.port
        assert port is not None
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
        try:
            await _wait_open(server, 3)

            def ask(path: str) -> tuple[int, dict[str, str], bytes] | None:
                with _connected(port) as sock:
                    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                    return _read_answer(sock)

            refused = await trio.to_thread.run_sync(ask, "/api/v1/checks")
            assert refused is not None
            status, headers, body = refused
            assert status == 503
            assert headers["retry-after"] == "1"
            assert headers["connection"] == "close"
            assert "server.max_connections" in json.loads(body)["error"]
            live = await trio.to_thread.run_sync(ask, "/api/health/live")
            assert live is not None
            assert live[0] == 200
            assert json.loads(live[2]) == {"status": "pass"}
            assert server.connections[0].refused == 2
        finally:
            for sock in held:
                sock.close()
        await _wait_open(server, 0)
        assert (await trio.to_thread.run_sync(ask, "/api/v1/checks"))[0] == 200  # type: ignore[index]
        server.stop()


_AT_THE_LIMIT = """
import resource, sys, trio
from actors.state import HealthState
from actors.web.app import create_app
from actors.web.server import HttpServer

async def main():
    server = HttpServer(app=create_app(health=HealthState()), listen="127.0.0.1:0")
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
        print(server.port, flush=True)
        await trio.to_thread.run_sync(sys.stdin.read)  # until the test closes stdin
        server.stop()

trio.run(main)
"""


def test_liveness_answers_at_the_descriptor_limit() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", _AT_THE_LIMIT],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdin is not None
        assert child.stdout is not None
        held: list[socket.socket] = []
        try:
            port = int(child.stdout.readline())
            # Requests begun but never finished: each holds a descriptor of the server.
            for _ in range(80):
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                sock.sendall(b"GET /api/v1/checks HTTP/1.1\r\n")
                held.append(sock)
            for path, expected in (("/api/health/live", 200), ("/api/v1/checks", 503)) * 3:
                with _connected(port) as sock:
                    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                    answer = _read_answer(sock)  # the socket's 10 s timeout: a hang fails
                assert answer is not None, path
                assert answer[0] == expected, (path, answer)
        finally:
            for sock in held:
                sock.close()
            child.stdin.close()
            child.wait(timeout=30)

"""Fixtures: a local HTTP(S) server that can be made slow, failing, resetting or garbled."""

from __future__ import annotations

import json
import os
import socket
import ssl
import struct
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
import trustme
from pydantic import TypeAdapter

from actors.checks import CheckContext, build_probe
from actors.checks.actor import CheckActor
from actors.checks.kinds import CheckConfig
from actors.checks.probe import Probe
from actors.checks.tlscontext import ClientContexts
from actors.models import CheckResult
from actors.state import HealthState

_ADAPTER: TypeAdapter[Any] = TypeAdapter(CheckConfig)


class RecordingContexts(ClientContexts):
    """Remembers every context it hands out."""

    def __init__(self, verifying: ssl.SSLContext | None = None) -> None:
        super().__init__(verifying)
        self.handed: list[ssl.SSLContext] = []

    def get(self, *, verify: bool = True) -> ssl.SSLContext:
        context = super().get(verify=verify)
        self.handed.append(context)
        return context


def make_config(**values: Any) -> Any:
    """Validate a check configuration the way the config loader does."""
    return _ADAPTER.validate_python(values)


_LOADED_WHEN = """
import json, sys
from supervisor.config import parse_config
from actors.checks import CheckContext, build_probe

config = parse_config(sys.argv[1], env={})
parsed = sys.argv[2] in sys.modules
build_probe(config.checks[0], CheckContext())
print(json.dumps([parsed, sys.argv[2] in sys.modules]))
"""


def loaded_when(source: str, module: str) -> tuple[bool, bool]:
    """Whether `module` is imported after parsing the TOML `source` (its first check), and after
    building that check's probe, in a fresh interpreter (this one imported everything long ago).
    """
    done = subprocess.run(
        [sys.executable, "-c", _LOADED_WHEN, source, module],
        cwd=Path(__file__).resolve().parents[3],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    parsed, built = json.loads(done.stdout.splitlines()[-1])
    return bool(parsed), bool(built)


async def run_check(
    config: Any, context: CheckContext | None = None, *, probe: Probe | None = None
) -> CheckResult:
    """Run the check of `config` once the way its actor does (timeout included) and release the
    probe: the probe of its kind built with `context` (default: a new `CheckContext`), or
    `probe` when given."""
    if probe is None:
        probe = build_probe(config, context or CheckContext())
    actor = CheckActor(config=config, probe=probe, health=HealthState())
    try:
        return await actor.run_once()
    finally:
        await probe.aclose()


def require_service(host: str, port: int) -> None:
    """Skip when a service is down, except under CI=true where that is a failure."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return
    except OSError:
        if os.environ.get("CI") == "true":
            pytest.fail(f"service {host}:{port} is not running (required under CI)")
        pytest.skip(f"service {host}:{port} is not running")


class LocalServer:
    """A tiny HTTP/1.1 server; the path picks the behaviour.

    /ok -> 200 "ok"; /json -> {"status": "up", "items": [1, 2]}; /status/<n> -> that status;
    /slow -> answers after 10 s; /reset -> RST; /garbage -> non-HTTP bytes; /redirect -> 302 /ok.
    """

    def __init__(self) -> None:
        self.port = 0
        self.requests = 0
        self.connections = 0

    async def handle(self, stream: trio.abc.Stream) -> None:
        self.connections += 1
        try:
            buffer = b""
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                while len(buffer) < length:
                    buffer += await stream.receive_some(65536)
                body, buffer = buffer[:length], buffer[length:]
                self.requests += 1
                if not await self.respond(stream, method, path, body):
                    return
        except (trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError):
            return

    async def respond(self, stream: trio.abc.Stream, method: str, path: str, body: bytes) -> bool:
        status, payload, headers = 200, b"ok", {"Content-Type": "text/plain"}
        if path == "/json":
            payload = json.dumps({"status": "up", "items": [1, 2]}).encode()
            headers = {"Content-Type": "application/json"}
        elif path == "/echo":
            payload = json.dumps({"method": method, "body": body.decode()}).encode()
        elif path.startswith("/status/"):
            status = int(path.rsplit("/", 1)[1])
            payload = b"nope"
        elif path == "/slow":
            await trio.sleep(10)
        elif path == "/reset":
            sock = getattr(stream, "socket", None)
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            await trio.aclose_forcefully(stream)
            return False
        elif path == "/garbage":
            await stream.send_all(b"\x00\x01garbage, not http\r\n\r\n")
            await trio.aclose_forcefully(stream)
            return False
        elif path == "/close":  # answers, then closes the connection without saying so
            await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await trio.aclose_forcefully(stream)
            return False
        elif path == "/redirect":
            status, payload, headers = 302, b"", {"Location": "/ok"}
        head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(payload)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        await stream.send_all(head.encode() + b"\r\n" + payload)
        return True


@pytest.fixture
async def http_server(nursery: trio.Nursery) -> LocalServer:
    server = LocalServer()
    listeners = await nursery.start(partial(trio.serve_tcp, server.handle, 0, host="127.0.0.1"))
    server.port = listeners[0].socket.getsockname()[1]
    return server


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


async def start_tls_server(
    nursery: trio.Nursery, cert: trustme.LeafCert
) -> tuple[LocalServer, int]:
    server = LocalServer()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    listeners = await nursery.start(
        partial(trio.serve_ssl_over_tcp, server.handle, 0, context, host="127.0.0.1")
    )
    port = listeners[0].transport_listener.socket.getsockname()[1]
    server.port = port
    return server, port

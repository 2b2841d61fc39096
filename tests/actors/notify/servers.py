"""Local receivers for the notify tests: a scripted HTTP server (hypercorn on trio) that speaks
the answers Slack and PagerDuty document, and a free-port helper."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio
from hypercorn.config import Config
from hypercorn.trio import serve

__all__ = [
    "Answer",
    "Received",
    "ScriptedReceiver",
    "free_port",
    "require_binary",
    "serve_receiver",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_binary(path: str) -> str:
    """The binary's path; skip when missing, except under CI=true where that is a failure."""
    found = shutil.which(path)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{path} is not installed (required under CI)")
        pytest.skip(f"{path} is not installed")
    return found


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes = b"ok"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class ScriptedReceiver:
    """ASGI app: answers from `script` in order, then `default`; records every request."""

    script: list[Answer] = field(default_factory=list)
    default: Answer = field(default_factory=Answer)
    received: list[Received] = field(default_factory=list)

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        self.received.append(Received(scope["method"], scope["path"], headers, body))
        answer = self.script.pop(0) if self.script else self.default
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [(k.encode(), v.encode()) for k, v in answer.headers],
            }
        )
        await send({"type": "http.response.body", "body": answer.body})


async def serve_receiver(nursery: trio.Nursery, app: ScriptedReceiver, port: int = 0) -> str:
    """Serve `app` on 127.0.0.1 (`port`, default a free one) inside `nursery`; return its URL."""
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = None
    binds: list[str] = await nursery.start(serve, app, config)
    return binds[0]

"""`HttpServer`: a supervised actor serving an ASGI app with Hypercorn (`serving.serve_http`).

`run()` reports started only once the socket is bound (`port` then holds the bound port, useful
with "host:0"). A graceful stop happens when `shutdown_trigger()` returns (e.g. the runtime's
`current_child().wait_stop_requested`, called inside the actor's task) or `stop()` is called:
no new connections, in-flight requests get `graceful_timeout` seconds. Cancellation stops at once.
TLS is on when `tls_cert` and `tls_key` are given. With `reuse_port` the socket is bound with
SO_REUSEPORT: processes of the same user share the address and the kernel spreads new
connections over their listeners (`run --workers`). At most `max_connections` connections are
served at once; one more, or one accepted at the descriptor limit, is refused with a 503 (a
liveness probe still gets its 200); `connections` counts them per listener (see `serving`).
Idle keep-alive connections close after `keep_alive_timeout` (75 s: longer than the idle
timeout of the load balancers in front, which must close first, or a request they send on a
connection we are closing fails).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import trio
from hypercorn.config import Config

from actors.web.errors import ServerStartError
from actors.web.serving import ConnectionCounts, serve_http

__all__ = ["HttpServer"]


class HttpServer:
    """Serves `app` on `listen` ("host:port") until stopped."""

    def __init__(
        self,
        *,
        app: Any,
        listen: str,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
        graceful_timeout: float = 5.0,
        max_connections: int = 1000,
        keep_alive_timeout: float = 75.0,
        reuse_port: bool = False,
        name: str = "api",
        logger: logging.Logger | None = None,
    ) -> None:
        self._app = app
        self.listen = listen
        self._tls = (tls_cert, tls_key) if tls_cert and tls_key else None
        self._trigger = shutdown_trigger
        self._graceful = graceful_timeout
        self._max_connections = max_connections
        self._keep_alive = keep_alive_timeout
        self._reuse_port = reuse_port
        self.connections: list[ConnectionCounts] = []
        self.name = name
        self._log = logger or logging.getLogger(f"blipee_monitor.web.{name}")
        self._stop = trio.Event()
        self.port: int | None = None
        self.urls: list[str] = []

    def _config(self) -> Config:
        config = Config()
        config.bind = [self.listen]
        config.graceful_timeout = self._graceful
        config.accesslog = None
        config.errorlog = self._log
        config.keep_alive_timeout = self._keep_alive
        config.include_server_header = False
        if self._reuse_port:
            # Hypercorn sets SO_REUSEPORT on the sockets it binds when it runs several workers;
            # `serve_http` runs none of them (it serves in this task), so this only shares the
            # port with the other processes (tests/actors/web/test_server.py pins it).
            config.workers = 2
        if self._tls is not None:
            config.certfile, config.keyfile = self._tls
        return config

    @property
    def app(self) -> Any:
        """The ASGI app served."""
        return self._app

    def stop(self) -> None:
        """Begin a graceful shutdown (idempotent)."""
        self._stop.set()

    async def _wait_stop(self) -> None:
        if self._trigger is None:
            await self._stop.wait()
            return
        async with trio.open_nursery() as nursery:

            async def trigger() -> None:
                assert self._trigger is not None
                await self._trigger()
                nursery.cancel_scope.cancel()

            async def local() -> None:
                await self._stop.wait()
                nursery.cancel_scope.cancel()

            nursery.start_soon(trigger)
            nursery.start_soon(local)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until a graceful stop completes.

        Raises:
            ServerStartError: the address cannot be bound or the TLS files cannot be loaded.
        """
        config = self._config()
        _check_bind(self.listen, reuse_port=self._reuse_port)
        started = False
        try:
            async with trio.open_nursery() as nursery:
                self.connections = []
                urls: list[str] = await nursery.start(
                    partial(
                        serve_http,
                        self._app,
                        config,
                        max_connections=self._max_connections,
                        shutdown_trigger=self._wait_stop,
                        counts=self.connections,
                    )
                )
                started = True
                self.urls = urls
                if urls:
                    self.port = urlsplit(urls[0]).port
                task_status.started()
        except (OSError, ValueError) as exc:
            if started:
                raise
            raise ServerStartError(self.listen, _reason(exc)) from None
        except BaseExceptionGroup as group:
            if started:
                raise
            matched, rest = group.split((OSError, ValueError))
            if matched is None or rest is not None:
                raise
            raise ServerStartError(self.listen, _reason(_first_leaf(matched))) from None


def _check_bind(listen: str, *, reuse_port: bool = False) -> None:
    """Bind (and release) the address first: hypercorn leaks its socket when binding fails.
    `reuse_port`: as the listener will (processes sharing the port are no conflict)."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    try:
        infos = socket.getaddrinfo(host or None, int(port), type=socket.SOCK_STREAM)
    except (OSError, ValueError) as exc:
        raise ServerStartError(listen, _reason(exc)) from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            raise ServerStartError(listen, _reason(exc)) from None


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror if not exc.filename else f"{exc.strerror}: {exc.filename}"
    return str(exc) or type(exc).__name__

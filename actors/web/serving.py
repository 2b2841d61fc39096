"""`serve_http`: Hypercorn's HTTP protocol on our own accept loop, for connection hygiene.

`hypercorn.trio.serve` is used as it is everywhere but at the edges of a connection:

- A connection the peer closes while it is idle between requests is released at once.
  Hypercorn leaves that connection's keep-alive timer running and waits for it, so each such
  descriptor stayed in CLOSE-WAIT for `keep_alive_timeout` (75 s); `_Connection` stops the
  timer when the read side ends.
- At most `max_connections` connections are served at once per listener. One more is answered
  by `refuse` without the application: `GET`/`HEAD /api/health/live` gets its usual 200 (so
  liveness never fails because clients crowd the listener), anything else a 503 JSON error with
  `Retry-After: 1` and `Connection: close`.
- At the process's descriptor limit (accept fails with EMFILE/ENFILE) the accept loop frees a
  descriptor it keeps in reserve, accepts one connection with it and answers it the same way,
  then takes the reserve again; so `/api/health/live` still answers and the others learn to
  come back, rather than waiting in the backlog.

- An answer the application gives before the request's body has arrived (a route that ignores
  the body, a refusal) no longer ends the connection unannounced: Hypercorn closes a connection
  whose request is unfinished when its response ends, so the client's next request on it was
  lost. `_SettleBody` holds the end of such a response until the body is read and discarded
  (up to `_DRAIN_BYTES` declared, for `_DRAIN_TIME`); a larger or chunked body gets
  `Connection: close` on the answer instead, so the client knows.

The rest (lifespan, graceful shutdown: no new connections, in-flight requests get
`graceful_timeout`) is Hypercorn's `worker_serve`, on the same objects.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import AppWrapper, ConnectionState, LifespanState
from hypercorn.utils import ShutdownError, raise_shutdown, repr_socket_addr, wrap_app

__all__ = ["ConnectionCounts", "refuse", "serve_http"]

_LIVE_PATH = b"/api/health/live"
_LIVE_BODY = json.dumps({"status": "pass"}).encode()
_EXHAUSTED = frozenset((errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM))
_TRANSIENT = frozenset((errno.ECONNABORTED, errno.EPROTO, errno.EPERM))
_REFUSE_READ = 2.0  # seconds a refused client has to send its request line
_DRAIN_BYTES = 1_048_576  # largest unread body drained to keep a connection (max_body_bytes)
_DRAIN_TIME = 10.0  # seconds the rest of such a body has to arrive


class _SettleBody:
    """ASGI middleware: a response ends only once its request's body is read (see the module
    docstring), so that Hypercorn can keep the connection alive after it."""

    def __init__(self, app: Any) -> None:
        self._app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        read = trio.Event()  # the body is complete (or the client left)
        closing = False

        async def tracked_receive() -> Any:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                read.set()
            return message

        async def settled_send(message: Any) -> None:
            nonlocal closing
            if read.is_set():
                await send(message)
                return
            if message["type"] == "http.response.start" and not _drainable(scope):
                closing = True
                headers = [*message.get("headers", ()), (b"connection", b"close")]
                message = {**message, "headers": headers}
            elif (
                message["type"] == "http.response.body"
                and not message.get("more_body", False)
                and not closing
            ):
                if message.get("body"):
                    await send({**message, "more_body": True})
                with trio.move_on_after(_DRAIN_TIME):
                    await _drain(tracked_receive, read)
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self._app(scope, tracked_receive, settled_send)


async def _drain(receive: Any, read: trio.Event) -> None:
    """Receive (and drop) body messages until `read` is set, by this task or by another that
    reads the same channel (Quart's own request reader does): a receive is cancelled as soon as
    the other reader took the last chunk (a cancelled channel receive loses no message)."""

    async def discard() -> None:
        while not read.is_set():
            await receive()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(discard)
        await read.wait()
        nursery.cancel_scope.cancel()


def _drainable(scope: Any) -> bool:
    """Whether the request's body is small enough, and of a declared length, to be drained."""
    length = None
    for name, value in scope.get("headers", ()):
        if name.lower() == b"transfer-encoding":
            return False
        if name.lower() == b"content-length":
            length = value
    try:
        return length is None or int(length) <= _DRAIN_BYTES
    except ValueError:
        return False


class _Connection(TCPServer):
    """Hypercorn's connection, releasing its descriptor as soon as the peer has closed."""

    async def _read_data(self) -> None:
        await super()._read_data()
        # The read side ended (EOF, error or read timeout). Hypercorn's idle timer would keep
        # the connection's task group, and so the descriptor, for keep_alive_timeout more.
        await self.idle_task.stop()

    async def _close(self) -> None:
        try:
            await super()._close()
        finally:
            # Cancelled while saying goodbye (send_eof checkpoints first): close anyway.
            await trio.aclose_forcefully(self.stream)


class ConnectionCounts:
    """Connections of one listener: `open` now, `refused` so far (over the limit or at the
    descriptor limit)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0
        self.refused = 0


def _answer(status: str, body: bytes, *extra: str, head: bool = False) -> bytes:
    lines = [
        f"HTTP/1.1 {status}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Cache-Control: no-store",
        "Connection: close",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (b"" if head else body)


async def refuse(stream: trio.abc.Stream, reason: str) -> None:
    """Answer one connection without the application and close it: 200 to a liveness probe,
    503 with `reason` (and `Retry-After: 1`) to anything else. Never raises but Cancelled."""
    try:
        request = b""
        with trio.move_on_after(_REFUSE_READ):
            while b"\r\n" not in request and len(request) < 8192:
                chunk = await stream.receive_some(8192)
                if not chunk:
                    break
                request += chunk
        method, _, rest = request.partition(b" ")
        target = rest.partition(b" ")[0].partition(b"?")[0]
        head = method == b"HEAD"
        if method in (b"GET", b"HEAD") and target == _LIVE_PATH:
            answer = _answer("200 OK", _LIVE_BODY, head=head)
        else:
            body = json.dumps({"error": reason}).encode()
            answer = _answer("503 Service Unavailable", body, "Retry-After: 1", head=head)
        with trio.move_on_after(_REFUSE_READ):
            await stream.send_all(answer)
    except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        await trio.aclose_forcefully(stream)


class _Reserve:
    """One descriptor held back, freed to accept a connection at the descriptor limit."""

    def __init__(self) -> None:
        self._fd: int | None = None
        self._back = trio.Event()
        self.take()

    def take(self) -> None:
        """Hold a descriptor again (if the process has one to spare now)."""
        if self._fd is None:
            try:
                self._fd = os.open(os.devnull, os.O_RDONLY)
            except OSError:
                return
        self._back.set()

    def release(self) -> bool:
        """Free the descriptor; False when none was held."""
        if self._fd is None:
            return False
        os.close(self._fd)
        self._fd = None
        self._back = trio.Event()
        return True

    async def wait_taken(self) -> None:
        """Until `take` is called after a `release`."""
        await self._back.wait()

    def close(self) -> None:
        """Free the descriptor for good."""
        self.release()


async def _accept_loop(
    listener: trio.socket.SocketType,
    handle: Callable[[trio.socket.SocketType], Awaitable[None]],
    nursery: trio.Nursery,
    counts: ConnectionCounts,
) -> None:
    reserve = _Reserve()
    try:
        while True:
            try:
                sock, _ = await listener.accept()
            except OSError as exc:
                if exc.errno in _TRANSIENT:
                    continue
                if exc.errno not in _EXHAUSTED:
                    raise
                if not reserve.release():
                    await trio.sleep(0.05)  # nothing in reserve: let descriptors come back
                    reserve.take()
                    continue
                try:
                    sock, _ = await listener.accept()
                except OSError:
                    reserve.take()
                    await trio.sleep(0.05)
                    continue
                counts.refused += 1
                nursery.start_soon(_shed, sock, reserve)
                await reserve.wait_taken()
                continue
            nursery.start_soon(handle, sock)
    finally:
        reserve.close()


async def _shed(sock: trio.socket.SocketType, reserve: _Reserve) -> None:
    try:
        await refuse(
            trio.SocketStream(sock),
            "the server is at its descriptor limit; try again",
        )
    finally:
        reserve.take()


async def serve_http(
    app: Any,
    config: Config,
    *,
    max_connections: int,
    shutdown_trigger: Callable[[], Awaitable[None]],
    counts: list[ConnectionCounts] | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the ASGI `app` on `config.bind` until `shutdown_trigger()` returns (see the module
    docstring); reports the bound URLs with `task_status.started`. `counts`, when given,
    receives one `ConnectionCounts` per listener.

    Raises:
        OSError: an address cannot be bound; ssl.SSLError, OSError: the TLS files cannot be
            loaded.
    """
    wrapped: AppWrapper = wrap_app(_SettleBody(app), config.wsgi_max_body_size, "asgi")
    lifespan_state: LifespanState = {}
    lifespan = Lifespan(wrapped, config, lifespan_state)
    context = WorkerContext(None)
    async with trio.open_nursery() as lifespan_nursery:
        await lifespan_nursery.start(lifespan.handle_lifespan)
        await lifespan.wait_for_startup()
        async with trio.open_nursery() as server_nursery:
            sockets = config.create_sockets()
            ssl_context = config.create_ssl_context()
            listening: list[tuple[trio.socket.SocketType, bool]] = []
            binds: list[str] = []
            for secure, group in (
                (True, sockets.secure_sockets),
                (False, sockets.insecure_sockets),
            ):
                for sock in group:
                    sock.listen(config.backlog)
                    listening.append((trio.socket.from_stdlib_socket(sock), secure))
                    address = repr_socket_addr(sock.family, sock.getsockname())
                    binds.append(f"{'https' if secure else 'http'}://{address}")
                    await config.log.info(f"Running on {binds[-1]} (CTRL + C to quit)")

            async def handle(
                counted: ConnectionCounts, secure: bool, sock: trio.socket.SocketType
            ) -> None:
                stream: Any = trio.SocketStream(sock)
                if counted.open >= counted.limit:
                    counted.refused += 1
                    if secure:  # no handshake for a refusal: the client sees the close
                        await trio.aclose_forcefully(stream)
                        return
                    limit = counted.limit
                    await refuse(stream, f"more than {limit} connections (server.max_connections)")
                    return
                if secure:
                    assert ssl_context is not None
                    stream = trio.SSLStream(
                        stream, ssl_context, server_side=True, https_compatible=True
                    )
                counted.open += 1
                try:
                    await _Connection(
                        wrapped, config, context, ConnectionState(lifespan_state.copy()), stream
                    )
                finally:
                    counted.open -= 1

            task_status.started(binds)
            try:
                async with trio.open_nursery(strict_exception_groups=True) as nursery:
                    nursery.start_soon(raise_shutdown, shutdown_trigger)
                    nursery.start_soon(raise_shutdown, context.terminate.wait)
                    for listener, secure in listening:
                        counted = ConnectionCounts(max_connections)
                        if counts is not None:
                            counts.append(counted)
                        accept = partial(handle, counted, secure)
                        nursery.start_soon(_accept_loop, listener, accept, server_nursery, counted)
            except BaseExceptionGroup as error:
                _, others = error.split(ShutdownError)
                if others is not None:
                    raise others from None
            finally:
                for listener, _ in listening:
                    listener.close()
                await context.terminated.set()
                server_nursery.cancel_scope.deadline = trio.current_time() + config.graceful_timeout
        await lifespan.wait_for_shutdown()
        lifespan_nursery.cancel_scope.cancel()

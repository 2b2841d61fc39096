"""kind = "websocket": a WebSocket opens, and answers `send` with a message holding `expect`.

Every run opens `url` (ws://, or wss:// verified with the process's shared TLS context) with
trio-websocket, sends `send` as a text message when it is set, and, when `expect` is set, reads
the next message: it must contain `expect` (text, or bytes decoded as UTF-8). Without `expect`
the run passes once the upgrade succeeded (and `send` was sent). The check fails when the
connection cannot be made, the server refuses the upgrade (the HTTP status), closes before
answering (the close code and reason), or the answer lacks `expect` (the start of the answer is
shown). Latency is the upgrade plus the answer. The connection is closed at the end of each run.
A server that drops the connection before answering the upgrade request fails the run at once
("closed before answering the upgrade"): trio-websocket itself would wait for the answer until
the run is cancelled, so the probe watches its stream for the end.

The TLS handshake of wss:// is the `tls` kind's (`open_tls_stream`), so that a certificate that
does not verify fails the run with its reason; trio-websocket then speaks over that stream.

Messages name the URL without its query and user info, where tokens tend to live.
trio-websocket (and wsproto) are imported when the first probe is built.
"""

from __future__ import annotations

import importlib
from typing import Literal, cast
from urllib.parse import urlsplit

import trio
from pydantic import field_validator

from actors.checks.config import CheckBase
from actors.checks.errors import ProbeError
from actors.checks.logic import Observation
from actors.checks.probe import CheckContext, KindProbe
from actors.checks.tls import open_tls_stream

__all__ = ["WebSocketCheckConfig", "WebSocketProbe", "judge_message", "shown_url"]

_SHOWN = 80  # characters of a wrong answer shown in a message
_CLOSE_WAIT = 1.0  # at most this long for the closing handshake once the run is judged


def shown_url(url: str) -> str:
    """`url` as messages show it: scheme, host, port and path, without user info and query."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path or '/'}"


def judge_message(
    target: str, message: str | bytes, expect: str, *, latency: float | None = None
) -> Observation:
    """Pass when `message` holds `expect`, else fail showing the start of the answer. Pure."""
    text = message.decode("utf-8", errors="replace") if isinstance(message, bytes) else message
    details = {"answer": text[:_SHOWN]}
    if expect in text:
        return Observation.ok(f"{target} answered {expect!r}", details, latency=latency)
    shown = text if len(text) <= _SHOWN else text[:_SHOWN] + "..."
    return Observation.fail(f"{target} answered {shown!r}; expected {expect!r}", details)


class WebSocketCheckConfig(CheckBase):
    """kind = "websocket": `url` upgrades, and answers `send` with a message holding `expect`."""

    kind: Literal["websocket"]
    url: str
    send: str = ""
    expect: str = ""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        url = value.strip()
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise ValueError(f"invalid port in {shown_url(url)!r}; expected 1-65535") from None
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise ValueError(f"expected a ws:// or wss:// URL, got {shown_url(url)!r}")
        if port == 0:
            raise ValueError(f"invalid port in {shown_url(url)!r}; expected 1-65535")
        return url


class _Watched(trio.abc.Stream):
    """A stream that sets `ended` when the peer closes or breaks it (trio-websocket, which reads
    it, does not tell a caller still waiting for the upgrade's answer)."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.ended = trio.Event()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.stream.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        try:
            data = await self.stream.receive_some(max_bytes)
        except trio.BrokenResourceError:
            self.ended.set()
            raise
        if not data:
            self.ended.set()
        return data

    async def aclose(self) -> None:
        await self.stream.aclose()


class WebSocketProbe(KindProbe[WebSocketCheckConfig]):
    """Opens the WebSocket on every run; see the module docstring."""

    def __init__(self, config: WebSocketCheckConfig, context: CheckContext) -> None:
        super().__init__(config, context)
        # loaded with the first websocket probe, not with the config model
        importlib.import_module("trio_websocket")
        parts = urlsplit(config.url)
        self._host = parts.hostname or ""
        self._secure = parts.scheme == "wss"
        self._port = parts.port or (443 if self._secure else 80)
        self._resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._target = shown_url(config.url)

    async def probe(self) -> Observation:
        """Open, send and read; raises ProbeError (TLS, refused upgrade, closed before the
        answer) or OSError (refused, unknown host) to fail the run."""
        from trio_websocket import ConnectionRejected

        start = trio.current_time()
        stream: trio.abc.Stream
        if self._secure:
            stream = await open_tls_stream(
                self._host, self._port, self.context.tls.get(), self._host, target=self._target
            )
        else:
            stream = await trio.open_tcp_stream(self._host, self._port)
        try:
            return await self._converse(_Watched(stream), start)
        except BaseExceptionGroup as group:
            # raised in the nursery of `_converse`: by trio-websocket's reader task, or by the
            # watch of a stream that ended before the upgrade
            rejected = group.subgroup(ConnectionRejected)
            if rejected is not None:
                status = getattr(rejected.exceptions[0], "status_code", None)
                raise ProbeError(f"{self._target}: upgrade refused: HTTP {status}") from None
            failed = group.subgroup(ProbeError)
            if failed is not None:
                raise failed.exceptions[0] from None
            raise
        finally:
            await trio.aclose_forcefully(stream)

    async def _converse(self, stream: _Watched, start: float) -> Observation:
        from trio_websocket import ConnectionClosed, wrap_client_stream

        config = self.config
        host = self._host if self._port in (80, 443) else f"{self._host}:{self._port}"
        opened = False

        async def watch() -> None:
            await stream.ended.wait()
            if not opened:
                raise ProbeError(f"{self._target}: closed before answering the upgrade")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch)
            # any trio stream will do; trio-websocket's annotation names its own two
            socket_stream = cast("trio.SocketStream", stream)
            ws = await wrap_client_stream(nursery, socket_stream, host, self._resource)
            opened = True
            try:
                if config.send:
                    await ws.send_message(config.send)
                if not config.expect:
                    latency = trio.current_time() - start
                    return Observation.ok(f"{self._target} opened", latency=latency)
                message = await ws.get_message()
                latency = trio.current_time() - start
                return judge_message(self._target, message, config.expect, latency=latency)
            except ConnectionClosed as exc:
                reason = exc.reason
                why = f"code {reason.code} {reason.name}" if reason is not None else "no code"
                if reason is not None and reason.reason:
                    why += f": {reason.reason}"
                failure = f"{self._target}: closed without an answer ({why})"
            finally:
                with trio.move_on_after(_CLOSE_WAIT):
                    await ws.aclose()
                nursery.cancel_scope.cancel()
        raise ProbeError(failure)

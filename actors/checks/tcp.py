"""kind = "tcp": a TCP connection to host:port can be opened; latency is the connect time.

Every run opens a new connection. With `watch = true` the probe keeps it open until the next run
(closing the one before) and is a `WatchingProbe`: when the server closes or resets it (the
process died), the check runs at once rather than at its next interval (see
`actors.checks.actor`). Bytes the server sends unasked (a greeting) are read and dropped. Off by
default: a kept connection holds a slot on the server, and some servers (databases, mail servers)
greet it or time it out after a while, which then costs an extra run.
"""

from __future__ import annotations

from typing import Literal

import trio
from pydantic import Field

from actors.checks.config import CheckBase
from actors.checks.logic import Observation
from actors.checks.probe import CheckContext, KindProbe, close_stream_now

__all__ = ["TcpCheckConfig", "TcpProbe"]


class TcpCheckConfig(CheckBase):
    """kind = "tcp": a TCP connection can be opened."""

    kind: Literal["tcp"]
    host: str
    port: int = Field(ge=1, le=65535)
    watch: bool = False
    """Keep the connection open and run at once when the server closes it (module docstring)."""


class TcpProbe(KindProbe[TcpCheckConfig]):
    """Opens a TCP connection on every run; closes it at once, or keeps it until the next run
    with `watch`."""

    def __init__(self, config: TcpCheckConfig, context: CheckContext) -> None:
        super().__init__(config, context)
        self._kept: trio.SocketStream | None = None

    async def probe(self) -> Observation:
        """Connect; raises OSError (refused, unreachable, unknown host) to fail the run."""
        host, port = self.config.host, self.config.port
        await self.aclose()  # the connection of the run before
        start = trio.current_time()
        stream = await trio.open_tcp_stream(host, port)
        latency = trio.current_time() - start
        if self.config.watch:
            self._kept = stream
        else:
            await trio.aclose_forcefully(stream)
        return Observation.ok(f"connected to {host}:{port}", latency=latency)

    async def wait_lost(self) -> None:
        """Return once the server closed or reset the kept connection, and close it (see
        `WatchingProbe`); sleep until cancelled when none is kept."""
        stream = self._kept
        if stream is None:
            await trio.sleep_forever()
        try:
            while True:
                # readiness first: the wait is cancelled at every run, and costs less so
                await trio.lowlevel.wait_readable(stream.socket)
                if not await stream.receive_some(65536):
                    break  # closed
                # sent unasked (a greeting): dropped
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # reset: lost all the same
        if self._kept is stream:
            self._kept = None
        await trio.aclose_forcefully(stream)

    def watched_socket(self) -> trio.socket.SocketType | None:
        """The socket `wait_lost` waits on (see `SocketWatchingProbe`), or None when none is
        kept."""
        return None if self._kept is None else self._kept.socket

    async def aclose(self) -> None:
        """Close the kept connection, if any."""
        stream, self._kept = self._kept, None
        if stream is not None:
            await trio.aclose_forcefully(stream)

    def close_now(self) -> bool:
        """Close the kept connection, if any, at once (see `ClosingNowProbe`)."""
        stream, self._kept = self._kept, None
        if stream is not None:
            close_stream_now(stream)
        return True

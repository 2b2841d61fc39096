"""kind = "tcp": a TCP connection to host:port can be opened; latency is the connect time."""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from actors.checks.logic import Observation

if TYPE_CHECKING:
    from actors.checks.config import TcpCheckConfig

__all__ = ["TcpProbe"]


class TcpProbe:
    """Opens (and at once closes) a TCP connection on every run."""

    def __init__(self, *, config: TcpCheckConfig) -> None:
        self._host = config.host
        self._port = config.port

    async def probe(self) -> Observation:
        """Connect; raises OSError (refused, unreachable, unknown host) to fail the run."""
        start = trio.current_time()
        stream = await trio.open_tcp_stream(self._host, self._port)
        latency = trio.current_time() - start
        await trio.aclose_forcefully(stream)
        return Observation.ok(f"connected to {self._host}:{self._port}", latency=latency)

    async def aclose(self) -> None:
        """Nothing to release."""

"""kind = "tcp": a TCP connection to host:port can be opened; latency is the connect time."""

from __future__ import annotations

from typing import Literal

import trio
from pydantic import Field

from actors.checks.config import CheckBase
from actors.checks.logic import Observation
from actors.checks.probe import KindProbe

__all__ = ["TcpCheckConfig", "TcpProbe"]


class TcpCheckConfig(CheckBase):
    """kind = "tcp": a TCP connection can be opened."""

    kind: Literal["tcp"]
    host: str
    port: int = Field(ge=1, le=65535)


class TcpProbe(KindProbe[TcpCheckConfig]):
    """Opens (and at once closes) a TCP connection on every run."""

    async def probe(self) -> Observation:
        """Connect; raises OSError (refused, unreachable, unknown host) to fail the run."""
        host, port = self.config.host, self.config.port
        start = trio.current_time()
        stream = await trio.open_tcp_stream(host, port)
        latency = trio.current_time() - start
        await trio.aclose_forcefully(stream)
        return Observation.ok(f"connected to {host}:{port}", latency=latency)

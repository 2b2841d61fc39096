"""kind = "postgres": connect and run `query` with psycopg 3, reusing one connection.

psycopg's async connection needs asyncio, so the probe runs the synchronous connection in a worker
thread (`trio.to_thread.run_sync`), one run at a time. The connection is kept between runs and
replaced after any error. A run cut short by the timeout abandons its thread; that thread closes
the connection itself when the driver returns, so a hung server never leaks it into a later run.
The reported latency is the query's round trip (plus the connect when one was needed).

psycopg and libpq cost about 8 MB of RSS that a configuration without a postgres check need not
pay: this module is imported with the configuration (its config model parses the table), so it
imports psycopg only when a probe is built.
"""

from __future__ import annotations

import importlib
import math
import threading
import time
from typing import TYPE_CHECKING, Literal

import trio
from pydantic import SecretStr, field_validator

from actors.checks.config import CheckBase
from actors.checks.errors import ProbeError
from actors.checks.logic import Observation
from actors.checks.probe import CheckContext, KindProbe
from actors.configtypes import Secret

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresCheckConfig", "PostgresProbe"]


class PostgresCheckConfig(CheckBase):
    """kind = "postgres": connect and run `query`."""

    kind: Literal["postgres"]
    dsn: Secret
    query: str = "SELECT 1"

    @field_validator("dsn")
    @classmethod
    def _dsn(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("dsn is empty")
        return value


class _Job:
    """One run handed to a worker thread; `abandoned` is set when the caller gave up on it."""

    __slots__ = ("abandoned", "lock")

    def __init__(self) -> None:
        self.abandoned = False
        self.lock = threading.Lock()


class PostgresProbe(KindProbe[PostgresCheckConfig]):
    """Runs `query` over a kept connection; the DSN is never shown in messages."""

    def __init__(self, config: PostgresCheckConfig, context: CheckContext) -> None:
        super().__init__(config, context)
        # loaded with the first postgres probe, not with the config model (module docstring)
        importlib.import_module("psycopg")
        self._connect_timeout = max(1, math.ceil(config.timeout))
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._limiter = trio.CapacityLimiter(1)

    def _work(
        self, job: _Job, conn: psycopg.Connection[tuple[object, ...]] | None
    ) -> tuple[psycopg.Connection[tuple[object, ...]], float, int]:
        import psycopg  # loaded by __init__

        start = time.perf_counter()
        try:
            if conn is None or conn.closed or conn.broken:
                conn = psycopg.connect(
                    self.config.dsn.get_secret_value(),
                    autocommit=True,
                    connect_timeout=self._connect_timeout,
                )
            with conn.cursor() as cur:
                cur.execute(self.config.query.encode())
                rows = len(cur.fetchall()) if cur.description is not None else cur.rowcount
        except psycopg.Error as exc:
            if conn is not None:
                conn.close()
            raise ProbeError(_describe(exc)) from None
        latency = time.perf_counter() - start
        with job.lock:
            if job.abandoned:
                conn.close()
        return conn, latency, rows

    async def probe(self) -> Observation:
        """Run the query; raises ProbeError with the server's or driver's message on failure."""
        conn, self._conn = self._conn, None
        job = _Job()
        try:
            conn, latency, rows = await trio.to_thread.run_sync(
                self._work, job, conn, abandon_on_cancel=True, limiter=self._limiter
            )
        except BaseException:
            with job.lock:
                job.abandoned = True
            raise
        self._conn = conn
        return Observation.ok("Database healthy", {"rows": rows}, latency=latency)

    async def aclose(self) -> None:
        """Close the kept connection (in a thread: closing may block on the network)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await trio.to_thread.run_sync(conn.close, abandon_on_cancel=True)


def _describe(exc: psycopg.Error) -> str:
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    if primary:
        text = str(primary)
    else:
        lines = str(exc).strip().splitlines()
        text = lines[0] if lines else type(exc).__name__
    # libpq messages may carry the host but never the password; keep the first line only.
    return f"postgres: {text}"

"""kind = "redis": PING answers PONG; the latency is the PING round trip.

redis-py's asyncio client does not run on trio, and a health check needs two commands, so the probe
speaks RESP itself over one kept-open connection: on connect it sends AUTH (password, or user and
password, from the URL) and SELECT (the database number in the URL path), then PING on every run.
`rediss://` uses TLS.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import unquote, urlsplit

import trio
from pydantic import SecretStr, field_validator

from actors.checks.config import CheckBase
from actors.checks.errors import ProbeError
from actors.checks.logic import Observation
from actors.checks.probe import CheckContext, KindProbe, close_stream_now
from actors.configtypes import Secret

__all__ = ["RedisCheckConfig", "RedisProbe", "RedisTarget", "parse_redis_url"]

_MAX_LINE = 64 * 1024


class RedisCheckConfig(CheckBase):
    """kind = "redis": PING answers PONG."""

    kind: Literal["redis"]
    url: Secret

    @field_validator("url")
    @classmethod
    def _url(cls, value: SecretStr) -> SecretStr:
        if not re.match(r"^rediss?://", value.get_secret_value()):
            raise ValueError("expected a redis:// or rediss:// URL")
        return value


class RedisTarget:
    """Where and how to connect, parsed from a redis:// URL."""

    __slots__ = ("db", "host", "password", "port", "tls", "username")

    def __init__(
        self, host: str, port: int, db: int, username: str | None, password: str | None, tls: bool
    ) -> None:
        self.host = host
        self.port = port
        self.db = db
        self.username = username
        self.password = password
        self.tls = tls


def parse_redis_url(url: str) -> RedisTarget:
    """Parse redis[s]://[[user]:password@]host[:port][/db].

    Raises:
        ProbeError: the URL is malformed (the message never contains the password).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise ProbeError("redis URL must start with redis:// or rediss://")
    try:
        port = parts.port or 6379
    except ValueError as exc:
        raise ProbeError("redis URL has an invalid port") from exc
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise ProbeError("redis URL path must be a database number, e.g. /0")
    return RedisTarget(
        host=parts.hostname or "127.0.0.1",
        port=port,
        db=int(path) if path else 0,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        tls=parts.scheme == "rediss",
    )


def _command(*args: str) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


_PING = _command("PING")


class _Connection:
    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    async def reply(self) -> bytes:
        """Read one simple reply line (+OK, -ERR ..., :1); bulk replies are not expected."""
        while True:
            end = self.buffer.find(b"\r\n")
            if end >= 0:
                line = bytes(self.buffer[:end])
                del self.buffer[: end + 2]
                return line
            if len(self.buffer) > _MAX_LINE:
                raise ProbeError("redis answered an over-long line: not a Redis server?")
            chunk = await self.stream.receive_some(4096)
            if not chunk:
                raise ProbeError("redis closed the connection")
            self.buffer += chunk


def _check_reply(line: bytes, command: str) -> None:
    if line.startswith(b"-"):
        text = line[1:].decode("utf-8", errors="replace")[:200]
        raise ProbeError(f"redis {command} failed: {text}")
    if not line.startswith((b"+", b":")):
        raise ProbeError(f"redis answered {command} with {line[:40]!r}: not a Redis server?")


class RedisProbe(KindProbe[RedisCheckConfig]):
    """PING over one kept connection, reconnecting after any error.

    A `rediss://` URL uses the verifying TLS client context of the `CheckContext`'s `tls`.

    Raises:
        ProbeError: (at construction) the URL is malformed (never showing the password).
    """

    def __init__(self, config: RedisCheckConfig, context: CheckContext) -> None:
        super().__init__(config, context)
        self._target = parse_redis_url(config.url.get_secret_value())
        self._conn: _Connection | None = None

    async def _connect(self) -> _Connection:
        target = self._target
        stream: trio.abc.Stream
        if target.tls:
            stream = await trio.open_ssl_over_tcp_stream(
                target.host, target.port, ssl_context=self.context.tls.get()
            )
        else:
            stream = await trio.open_tcp_stream(target.host, target.port)
        conn = _Connection(stream)
        try:
            if target.password is not None:
                args: tuple[str, ...] = ("AUTH", target.password)
                if target.username:
                    args = ("AUTH", target.username, target.password)
                await stream.send_all(_command(*args))
                _check_reply(await conn.reply(), "AUTH")
            if target.db:
                await stream.send_all(_command("SELECT", str(target.db)))
                _check_reply(await conn.reply(), "SELECT")
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
        return conn

    async def probe(self) -> Observation:
        """PING; raises ProbeError/OSError on a bad answer or a broken connection."""
        conn = self._conn
        self._conn = None  # only given back after a clean round trip
        if conn is None:
            conn = await self._connect()
        try:
            start = trio.current_time()
            await conn.stream.send_all(_PING)
            line = await conn.reply()
            latency = trio.current_time() - start
            _check_reply(line, "PING")
            if line != b"+PONG":
                raise ProbeError(f"redis answered PING with {line[:40]!r}")
        except BaseException:
            await trio.aclose_forcefully(conn.stream)
            raise
        self._conn = conn
        return Observation.ok("Redis healthy (PONG)", latency=latency)

    async def aclose(self) -> None:
        """Close the kept connection."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await trio.aclose_forcefully(conn.stream)

    def close_now(self) -> bool:
        """Close the kept connection at once, without a TLS goodbye (see `ClosingNowProbe`)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            close_stream_now(conn.stream)
        return True

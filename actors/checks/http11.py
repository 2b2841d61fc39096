"""A small HTTP/1.1 client for checks: one kept-alive connection, h11 for the protocol.

Why not httpx here: a check is one request on one connection, thousands of times per second
across checks. httpx + httpcore spend ~450 us of CPU per request on this path; h11 over a
trio stream spends ~100 us, which is what lets one core run thousands of checks per second
(see docs/benchmarks.md). httpx stays the seam for tests (`HttpProbe(transport=...)`).

Semantics: the connection is reused while the server keeps it alive; a request on a reused
connection that fails before any byte of the answer arrived is retried once on a fresh
connection (the server closed it while idle). `wait_lost()` waits on the idle kept connection
between requests and gives it up when the server closes or resets it. Redirects (301, 302, 303,
307, 308) are followed up to `MAX_REDIRECTS` when asked; 303 (and 301/302 after a POST) switch
to GET without a body; a redirect to another origin drops the credential headers. At most
`max_body` bytes of the body are kept. For https the peer certificate (DER) of the connection
is kept in `peer_cert` so the caller can read its expiry without another handshake.

The common answer, read the short way: on a plain connection the client opened to an IP address
(it holds that socket), a request goes out as the bytes h11 made for it the first time (kept
with the prepared request) and its answer is parsed by `parse_simple` when it is a plain one:
`HTTP/1.1`, a final status other than 204 and 304, a `Content-Length` of at most `SIMPLE_BODY`
bytes, no `Transfer-Encoding`, no `Connection` but `keep-alive`, strictly formed header lines,
and nothing after the body. Anything else (a redirect is fine: only its headers are read) is
handed to h11 with the bytes read so far, which decides as it always did. A `Waiter` given to
`request` tells the client how to wait for the socket to turn readable and until when
(`actors.checks.http` waits on the process's `CheckTimer`, so a run needs no cancel scope of its
own); a wait that reaches the deadline ends the request with `RequestTimedOut`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import math
import re
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Protocol
from urllib.parse import urljoin, urlsplit

import h11
import trio

from actors.checks.errors import ProbeError

__all__ = [
    "MAX_REDIRECTS",
    "SIMPLE_BODY",
    "Http11Client",
    "RawResponse",
    "RequestTimedOut",
    "Waiter",
    "parse_simple",
]

MAX_REDIRECTS = 10
SIMPLE_BODY = 65536
"""The largest body read the short way (`parse_simple`); a larger one goes through h11."""
_REDIRECTS = frozenset((301, 302, 303, 307, 308))
_ALWAYS_SENSITIVE = frozenset(("authorization", "proxy-authorization", "cookie"))


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or ""), port or (443 if scheme == "https" else 80)


@dataclass(frozen=True, slots=True)
class RawResponse:
    """The final answer (after redirects)."""

    status: int
    reason: str
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    truncated: bool
    url: str


class Waiter(Protocol):
    """How `Http11Client.request` waits for an answer on a plain connection it holds.

    `deadline` (loop time; inf: none) bounds the whole request: what does not wait through
    `readable` (connecting, TLS, a send that does not go at once) is bounded by a cancel scope
    of that deadline. `readable(sock)` returns True once `sock` is readable, False once the
    deadline has passed first."""

    @property
    def deadline(self) -> float:
        """Loop time by which the request must be done."""
        ...

    def readable(self, sock: trio.socket.SocketType) -> Awaitable[bool]:
        """Wait until `sock` is readable (True) or the deadline passed (False)."""
        ...


class _TrioWaiter:
    """Waits with trio alone, without a deadline (the caller's cancel scope bounds it)."""

    deadline = math.inf

    async def readable(self, sock: trio.socket.SocketType) -> bool:
        await trio.lowlevel.wait_readable(sock)
        return True


_TRIO_WAITER = _TrioWaiter()


class RequestTimedOut(Exception):
    """The `Waiter`'s deadline passed before the answer was complete (the connection is
    closed)."""


_STATUS_LINE = re.compile(rb"HTTP/1\.1 ([1-9][0-9][0-9])(?: ([\t\x20-\x7e\x80-\xff]*))?")
_HEADER_NAME = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
_HEADER_VALUE = re.compile(
    rb"(?:[\x21-\x7e\x80-\xff](?:[\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?"
)
_DIGITS = re.compile(rb"[0-9]{1,15}")
_MORE = None
"""`parse_simple`: the answer is not complete yet."""


class _Unusual:
    """`parse_simple`: not a plain answer; h11 reads it."""


UNUSUAL = _Unusual()


def parse_simple(
    data: bytes | bytearray, *, head: bool = False
) -> tuple[int, str, tuple[tuple[bytes, bytes], ...], bytes] | _Unusual | None:
    """(status, reason, headers (names in lower case, as h11 gives them), body) of a plain
    answer to a request (see the module docstring) that `data` holds exactly; None while the
    answer is not complete; `UNUSUAL` for anything else, which h11 must read. Stricter than
    h11: what it takes, h11 takes the same way. `head`: the request was a HEAD (no body: h11's
    business)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return _MORE if len(data) < SIMPLE_BODY else UNUSUAL
    if head:
        return UNUSUAL
    lines = bytes(data[:end]).split(b"\r\n")
    match = _STATUS_LINE.fullmatch(lines[0])
    if match is None:
        return UNUSUAL
    status = int(match[1])
    if status < 200 or status in (204, 304):
        return UNUSUAL
    length = -1
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or _HEADER_NAME.fullmatch(name) is None:
            return UNUSUAL
        value = value.strip(b" \t")
        if _HEADER_VALUE.fullmatch(value) is None:
            return UNUSUAL
        name = name.lower()
        if name == b"content-length":
            if length >= 0 or _DIGITS.fullmatch(value) is None:
                return UNUSUAL
            length = int(value)
        elif name == b"transfer-encoding" or (
            name == b"connection" and value.lower() != b"keep-alive"
        ):
            return UNUSUAL
        headers.append((name, value))
    if not 0 <= length <= SIMPLE_BODY:
        return UNUSUAL
    start = end + 4
    if len(data) < start + length:
        return _MORE
    if len(data) > start + length:
        return UNUSUAL  # bytes after the answer: h11 decides what they are
    reason = (match[2] or b"").decode("latin-1")
    return status, reason, tuple(headers), bytes(data[start:])


async def _open_tcp(host: str, port: int) -> tuple[trio.SocketStream, socket.socket | None]:
    """A TCP connection to `host`:`port`, and its socket when the client holds it. An IP
    address is connected to directly: one socket, no resolution and none of
    `trio.open_tcp_stream`'s racing of addresses (its nursery and cancel scopes cost more than
    the connection itself, which matters when thousands of checks connect at once); a name goes
    through `trio.open_tcp_stream` (its socket is trio's: None)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return await trio.open_tcp_stream(host, port), None
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    raw = socket.socket(family, socket.SOCK_STREAM)
    sock = trio.socket.from_stdlib_socket(raw)
    try:
        await sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(sock), raw


def _close_now(stream: trio.abc.Stream) -> None:
    """Close the socket under `stream` (as `trio.aclose_forcefully` does, without its
    checkpoint)."""
    raw = stream.transport_stream if isinstance(stream, trio.SSLStream) else stream
    if isinstance(raw, trio.SocketStream):
        raw.socket.close()


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A request as `Http11Client._prepare` made it (kept for the next identical one)."""

    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes | None
    key: tuple[str, str, int]
    event: h11.Request
    wire: bytes
    """The request's bytes as h11 sends them at the start of a cycle (body included)."""


class _Conn:
    __slots__ = ("h11", "key", "peer_cert", "raw", "stream")

    def __init__(
        self,
        key: tuple[str, str, int],
        stream: trio.abc.Stream,
        cert: bytes | None,
        raw: socket.socket | None = None,
    ):
        self.key = key
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT)
        self.peer_cert = cert
        self.raw = raw
        """The plain connection's socket when the client holds it (answers read the short
        way); None for TLS and for connections trio opened."""


class Http11Client:
    """Sends requests over one kept connection (see the module docstring)."""

    def __init__(
        self, *, ssl_context: Callable[[], ssl.SSLContext] | ssl.SSLContext, max_body: int
    ) -> None:
        self._ssl = ssl_context
        self._max_body = max_body
        self._conn: _Conn | None = None
        self._prepared: _Prepared | None = None
        self.peer_cert: bytes | None = None

    async def aclose(self) -> None:
        """Close the kept connection, at once: its socket is closed without a TLS goodbye and
        without a checkpoint (thousands of checks stopping together do not each wait for a
        pass of the scheduler)."""
        self.close_now()

    def close_now(self) -> None:
        """Close the kept connection at once, as `aclose` does, from synchronous code."""
        conn, self._conn = self._conn, None
        if conn is not None:
            _close_now(conn.stream)

    async def wait_lost(self) -> None:
        """Return once the kept connection is lost, and close it: the server closed or reset it,
        or sent bytes while no request was outstanding (a 408 before closing, say; a request can
        no longer go on it). With no connection kept, sleep until cancelled. Cancelling leaves
        the connection as it was (a TLS session ticket read meanwhile is taken by the TLS
        layer). Call it only between requests.
        """
        conn = self._conn
        if conn is None:
            await trio.sleep_forever()
        stream = conn.stream
        tls = stream if isinstance(stream, trio.SSLStream) else None
        raw = tls.transport_stream if tls is not None else stream
        assert isinstance(raw, trio.SocketStream)
        # Readiness alone, nothing read: the wait is cancelled at every run, and this costs a
        # fraction of a receive cancelled as often.
        await trio.lowlevel.wait_readable(raw.socket)
        if tls is not None:
            # a TLS session ticket is readable too: the TLS layer reads past it and returns
            # only on data, close_notify or EOF; reset or a broken stream raise, lost all the same
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                await tls.receive_some(1)
        # on plain HTTP, readable while idle is EOF, a reset or bytes sent unasked: lost
        if self._conn is conn:
            self._conn = None
        await trio.aclose_forcefully(conn.stream)

    def watched_socket(self) -> trio.socket.SocketType | None:
        """The socket of the kept connection (`wait_lost` waits on it), or None. Call it only
        between requests."""
        conn = self._conn
        if conn is None:
            return None
        stream = conn.stream
        raw = stream.transport_stream if isinstance(stream, trio.SSLStream) else stream
        return raw.socket if isinstance(raw, trio.SocketStream) else None

    async def _connect(self, key: tuple[str, str, int], waiter: Waiter) -> _Conn:
        if waiter.deadline == math.inf:
            return await self._connect_now(key)
        with trio.move_on_at(waiter.deadline):
            return await self._connect_now(key)
        raise RequestTimedOut

    async def _connect_now(self, key: tuple[str, str, int]) -> _Conn:
        scheme, host, port = key
        stream: trio.abc.Stream
        stream, raw = await _open_tcp(host, port)
        cert: bytes | None = None
        if scheme == "https":
            if not isinstance(self._ssl, ssl.SSLContext):
                self._ssl = self._ssl()  # built on first use: plain-http checks never need one
            tls = trio.SSLStream(stream, self._ssl, server_hostname=host, https_compatible=True)
            try:
                await tls.do_handshake()
            except BaseException:
                await trio.aclose_forcefully(stream)
                raise
            cert = tls.getpeercert(binary_form=True)
            stream = tls
            raw = None
        return _Conn(key, stream, cert, raw)

    async def request(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes | None,
        *,
        follow_redirects: bool,
        sensitive: frozenset[str] = frozenset(),
        waiter: Waiter | None = None,
    ) -> RawResponse:
        """Send the request (following redirects when asked) and read the answer.

        On a redirect to another origin the headers named in `sensitive` (lower case) and
        `Authorization`, `Proxy-Authorization` and `Cookie` are dropped (browsers and curl do).
        `waiter` (default: trio's wait, no deadline) waits for answers on plain connections and
        bounds the request (see `Waiter`).

        Raises:
            ProbeError: an invalid HTTP answer, too many redirects, or a bad URL.
            RequestTimedOut: the waiter's deadline passed.
            OSError, trio.BrokenResourceError, ssl.SSLError: network and TLS failures.
        """
        wait = _TRIO_WAITER if waiter is None else waiter
        for _ in range(MAX_REDIRECTS + 1):
            response = await self._one(method, url, headers, body, wait)
            if not follow_redirects or response.status not in _REDIRECTS:
                return response
            location = next((v for k, v in response.headers if k == b"location"), None)
            if location is None:
                return response
            target = urljoin(url, location.decode("latin-1"))
            if _origin(target) != _origin(url):
                dropped = sensitive | _ALWAYS_SENSITIVE
                headers = [(k, v) for k, v in headers if k.lower() not in dropped]
            url = target
            if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                method, body = ("HEAD" if method == "HEAD" else "GET"), None
        raise ProbeError(f"more than {MAX_REDIRECTS} redirects")

    def _prepare(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes | None
    ) -> _Prepared:
        """The connection key, target and h11 request of a request; the last one is kept and
        reused while the same method, URL, headers list and body come again (a check sends
        the same request every run).

        Raises:
            ProbeError: a bad URL or header.
        """
        last = self._prepared
        if (
            last is not None
            and last.headers is headers
            and last.body is body
            and last.method == method
            and last.url == url
        ):
            return last
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ProbeError(f"cannot request {url!r}: not an http(s) URL")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise ProbeError(f"cannot request {url!r}: invalid port") from None
        key = (parts.scheme, parts.hostname, port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host = parts.netloc.rpartition("@")[2]
        request_headers = [("Host", host), *headers]
        if body is not None:
            request_headers.append(("Content-Length", str(len(body))))
        try:
            event = h11.Request(method=method, target=target, headers=request_headers)
            wire = _send(h11.Connection(h11.CLIENT), event, body)
        except h11.LocalProtocolError as exc:
            raise ProbeError(f"cannot send the request: {exc}") from None
        prepared = _Prepared(method, url, headers, body, key, event, wire)
        self._prepared = prepared
        return prepared

    async def _one(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes | None,
        waiter: Waiter,
    ) -> RawResponse:
        prepared = self._prepare(method, url, headers, body)
        key = prepared.key
        conn = self._conn
        if conn is not None and conn.key != key:
            await self.aclose()
            conn = None
        reused = conn is not None
        if conn is None:
            conn = await self._connect(key, waiter)
        self._conn = None  # given back only after a clean exchange
        try:
            try:
                return await self._exchange(conn, prepared, url, waiter)
            except _StaleConnection as stale:
                await trio.aclose_forcefully(conn.stream)
                if not reused:
                    if stale.__cause__ is not None:
                        cause = stale.__cause__
                        raise cause from cause.__cause__
                    raise ProbeError("the server closed the connection without answering") from None
                conn = await self._connect(key, waiter)
                return await self._exchange(conn, prepared, url, waiter)
        except BaseException:
            await trio.aclose_forcefully(conn.stream)
            raise

    async def _exchange(
        self, conn: _Conn, prepared: _Prepared, url: str, waiter: Waiter
    ) -> RawResponse:
        machine = conn.h11
        raw = conn.raw
        if raw is not None and machine.our_state is h11.IDLE and machine.their_state is h11.IDLE:
            return await self._exchange_plain(conn, raw, prepared, url, waiter)
        if waiter.deadline == math.inf:
            return await self._exchange_h11(conn, prepared, url, None)
        with trio.move_on_at(waiter.deadline):
            return await self._exchange_h11(conn, prepared, url, None)
        raise RequestTimedOut

    async def _exchange_plain(
        self, conn: _Conn, raw: socket.socket, prepared: _Prepared, url: str, waiter: Waiter
    ) -> RawResponse:
        """The exchange on a plain connection the client holds: the prepared bytes sent as
        they are, the answer read the short way (`parse_simple`) or, when unusual, by h11 from
        the bytes read so far (see the module docstring)."""
        data = prepared.wire
        try:
            sent = raw.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            raise _StaleConnection from trio.BrokenResourceError(f"socket connection broken: {exc}")
        if sent < len(data):
            await self._send_rest(conn, data[sent:], waiter)
        buffer = bytearray()
        head = prepared.method == "HEAD"
        stream = conn.stream
        assert isinstance(stream, trio.SocketStream)
        sock = stream.socket
        while True:
            chunk = await _receive(raw, sock, waiter, got_any=bool(buffer))
            if not chunk:
                break  # the server closed: h11 tells what that means here
            buffer += chunk
            answer = parse_simple(buffer, head=head)
            if answer is None:
                continue
            if answer is UNUSUAL:
                break
            assert isinstance(answer, tuple)
            status, reason, resp_headers, body = answer
            self._conn = conn
            self.peer_cert = conn.peer_cert
            cut = body[: self._max_body]
            return RawResponse(status, reason, resp_headers, cut, len(body) > len(cut), url)
        # Unusual: h11 takes the exchange where it is (it sent the request, it read `buffer`).
        _send(conn.h11, prepared.event, prepared.body)
        conn.h11.receive_data(bytes(buffer))
        if not chunk:
            conn.h11.receive_data(b"")

        async def receive() -> bytes:
            return await _receive(raw, sock, waiter, got_any=True)

        return await self._exchange_h11(conn, prepared, url, receive, got_any=bool(buffer))

    async def _send_rest(self, conn: _Conn, data: bytes, waiter: Waiter) -> None:
        """Send what the socket did not take at once (bounded by the waiter's deadline)."""
        try:
            if waiter.deadline == math.inf:
                await conn.stream.send_all(data)
                return
            with trio.move_on_at(waiter.deadline):
                await conn.stream.send_all(data)
                return
        except (trio.BrokenResourceError, ConnectionError) as exc:
            raise _StaleConnection from exc
        raise RequestTimedOut

    async def _exchange_h11(
        self,
        conn: _Conn,
        prepared: _Prepared,
        url: str,
        receive: Callable[[], Awaitable[bytes | bytearray]] | None,
        *,
        got_any: bool = False,
    ) -> RawResponse:
        """The exchange through h11: from the start (`receive` None: the request is sent and
        the answer read on the stream), or continued where the short way left it (`receive`
        reads the socket; the request is sent and the bytes read so far given to h11)."""
        machine = conn.h11
        data = b""
        if receive is None:
            try:
                data = _send(machine, prepared.event, prepared.body)
            except h11.LocalProtocolError as exc:
                raise ProbeError(f"cannot send the request: {exc}") from None
            receive = partial(conn.stream.receive_some, 65536)
        read = receive
        try:
            if data:
                await conn.stream.send_all(data)
            status, reason = 0, ""
            resp_headers: tuple[tuple[bytes, bytes], ...] = ()
            chunks: list[bytes] = []
            size = 0
            truncated = False
            while True:
                event = machine.next_event()
                if event is h11.NEED_DATA:
                    chunk = await read()
                    if chunk:
                        got_any = True
                    machine.receive_data(bytes(chunk))
                    continue
                kind = type(event)
                if kind is h11.Response:
                    assert isinstance(event, h11.Response)
                    status = event.status_code
                    reason = event.reason.decode("latin-1")
                    resp_headers = tuple(event.headers)
                elif kind is h11.Data:
                    assert isinstance(event, h11.Data)
                    if size < self._max_body:
                        chunks.append(bytes(event.data))
                        size += len(event.data)
                    else:
                        truncated = True
                elif kind is h11.EndOfMessage:
                    break
                elif kind is h11.ConnectionClosed:
                    raise ProbeError("the server closed the connection in mid-answer")
                elif kind is h11.InformationalResponse:
                    continue
        except h11.RemoteProtocolError as exc:
            if not got_any:
                raise _StaleConnection from None
            raise ProbeError(f"invalid HTTP answer: {exc}") from None
        except (trio.BrokenResourceError, ConnectionError) as exc:
            if not got_any:
                raise _StaleConnection from exc
            raise
        body_bytes = b"".join(chunks)
        if size > self._max_body:
            body_bytes = body_bytes[: self._max_body]
            truncated = True
        if machine.our_state is h11.DONE and machine.their_state is h11.DONE:
            machine.start_next_cycle()
            self._conn = conn
            if machine.trailing_data[0]:
                conn.raw = None  # h11 holds bytes of the next answer: it reads them from now on
        else:
            await trio.aclose_forcefully(conn.stream)
        self.peer_cert = conn.peer_cert
        return RawResponse(status, reason, resp_headers, body_bytes, truncated, url)


class _StaleConnection(Exception):
    """The connection failed before any byte of the answer arrived."""


def _send(machine: h11.Connection, request: h11.Request, body: bytes | None) -> bytes:
    """The bytes of `request` (and `body`) sent through `machine`, end of message included.

    Raises:
        h11.LocalProtocolError: h11 refuses the request.
    """
    data = machine.send(request) or b""
    if body:
        data += machine.send(h11.Data(data=body)) or b""
    return data + (machine.send(h11.EndOfMessage()) or b"")


async def _receive(
    raw: socket.socket, sock: trio.socket.SocketType, waiter: Waiter, *, got_any: bool
) -> bytes:
    """The next bytes on the plain socket `raw` (`sock`: trio's around it); b"" at its end.

    Raises:
        RequestTimedOut: the waiter's deadline passed first.
        _StaleConnection: broken before any byte of the answer (`got_any` False).
        trio.BrokenResourceError: broken in mid-answer (as the trio stream says it).
    """
    while True:
        if not await waiter.readable(sock):
            raise RequestTimedOut
        try:
            return raw.recv(65536)
        except BlockingIOError:
            continue
        except OSError as exc:
            broken = trio.BrokenResourceError(f"socket connection broken: {exc}")
            broken.__cause__ = exc
            if not got_any:
                raise _StaleConnection from broken
            raise broken from exc

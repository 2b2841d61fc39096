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
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import h11
import trio

from actors.checks.errors import ProbeError

__all__ = ["MAX_REDIRECTS", "Http11Client", "RawResponse"]

MAX_REDIRECTS = 10
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


async def _open_tcp(host: str, port: int) -> trio.SocketStream:
    """A TCP connection to `host`:`port`. An IP address is connected to directly: one socket,
    no resolution and none of `trio.open_tcp_stream`'s racing of addresses (its nursery and
    cancel scopes cost more than the connection itself, which matters when thousands of checks
    connect at once); a name goes through `trio.open_tcp_stream`."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return await trio.open_tcp_stream(host, port)
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    sock = trio.socket.socket(family, socket.SOCK_STREAM)
    try:
        await sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(sock)


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


class _Conn:
    __slots__ = ("h11", "key", "peer_cert", "stream")

    def __init__(self, key: tuple[str, str, int], stream: trio.abc.Stream, cert: bytes | None):
        self.key = key
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT)
        self.peer_cert = cert


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

    async def _connect(self, key: tuple[str, str, int]) -> _Conn:
        scheme, host, port = key
        stream: trio.abc.Stream = await _open_tcp(host, port)
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
        return _Conn(key, stream, cert)

    async def request(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes | None,
        *,
        follow_redirects: bool,
        sensitive: frozenset[str] = frozenset(),
    ) -> RawResponse:
        """Send the request (following redirects when asked) and read the answer.

        On a redirect to another origin the headers named in `sensitive` (lower case) and
        `Authorization`, `Proxy-Authorization` and `Cookie` are dropped (browsers and curl do).

        Raises:
            ProbeError: an invalid HTTP answer, too many redirects, or a bad URL.
            OSError, trio.BrokenResourceError, ssl.SSLError: network and TLS failures.
        """
        for _ in range(MAX_REDIRECTS + 1):
            response = await self._one(method, url, headers, body)
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
        except h11.LocalProtocolError as exc:
            raise ProbeError(f"cannot send the request: {exc}") from None
        prepared = _Prepared(method, url, headers, body, key, event)
        self._prepared = prepared
        return prepared

    async def _one(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes | None
    ) -> RawResponse:
        prepared = self._prepare(method, url, headers, body)
        key = prepared.key
        conn = self._conn
        if conn is not None and conn.key != key:
            await self.aclose()
            conn = None
        reused = conn is not None
        if conn is None:
            conn = await self._connect(key)
        self._conn = None  # given back only after a clean exchange
        try:
            try:
                return await self._exchange(conn, prepared.event, body, url)
            except _StaleConnection as stale:
                await trio.aclose_forcefully(conn.stream)
                if not reused:
                    if stale.__cause__ is not None:
                        cause = stale.__cause__
                        raise cause from cause.__cause__
                    raise ProbeError("the server closed the connection without answering") from None
                conn = await self._connect(key)
                return await self._exchange(conn, prepared.event, body, url)
        except BaseException:
            await trio.aclose_forcefully(conn.stream)
            raise

    async def _exchange(
        self, conn: _Conn, request: h11.Request, body: bytes | None, url: str
    ) -> RawResponse:
        machine = conn.h11
        try:
            data = machine.send(request) or b""
            if body:
                data += machine.send(h11.Data(data=body)) or b""
            data += machine.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError as exc:
            raise ProbeError(f"cannot send the request: {exc}") from None
        got_any = False
        try:
            await conn.stream.send_all(data)
            status, reason = 0, ""
            resp_headers: tuple[tuple[bytes, bytes], ...] = ()
            chunks: list[bytes] = []
            size = 0
            truncated = False
            while True:
                event = machine.next_event()
                if event is h11.NEED_DATA:
                    chunk = await conn.stream.receive_some(65536)
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
        else:
            await trio.aclose_forcefully(conn.stream)
        self.peer_cert = conn.peer_cert
        return RawResponse(status, reason, resp_headers, body_bytes, truncated, url)


class _StaleConnection(Exception):
    """The connection failed before any byte of the answer arrived."""

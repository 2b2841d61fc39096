"""kind = "http": one request whose answer must meet the check's expectations.

On the network the probe uses `Http11Client` (one kept-alive connection, h11; see `http11` for
why not httpx on this path). The `CheckContext`'s `transport` swaps in an httpx transport instead
(tests without a network, e.g. `httpx.MockTransport`; only then is httpx imported). At most
`MAX_BODY` bytes of the body are read. For https URLs the expiry of the certificate the connection
was made with is checked (read from the same handshake, parsed once per certificate): fewer than
`cert_expiry_warn_days` days left gives warn, an expired certificate fails (with `tls_verify`
on, the TLS handshake itself already fails with the TLS library's reason, e.g. "certificate has
expired" or "self-signed certificate").

With `watch` on (the default) the probe is a `WatchingProbe`: between runs it waits on the kept
connection, so the check runs at once when the server closes or resets it (the process died)
rather than at its next interval (see `actors.checks.actor`). A server that closes idle
connections by its own policy (a keep-alive timeout shorter than the interval) costs one extra,
passing run at most per interval.

With the process's `CheckTimer` the actor calls `probe_within` (a `TimedProbe`): the answer on a
plain connection is waited for on the timer, whose deadline is the run's timeout, instead of
under a cancel scope of the run's own (`actors.checks.http11`); what cannot wait that way
(connecting, TLS, a test transport) is bounded by a cancel scope of the same deadline.

Credentials: `user:password@` in the URL is sent as Basic auth (percent-decoded, as curl does;
with an `Authorization` header as well it is a config error) and never shown (the URL in an
error shows `user:***@`). On a redirect to another origin (scheme, host or port) the credential
headers (Authorization, Cookie, X-Api-Key, any header whose name says auth, token, key, secret,
cookie or password, and those listed in `secret_headers`) are dropped, as browsers and curl do.
"""

from __future__ import annotations

import base64
import datetime as dt
from functools import partial
from typing import TYPE_CHECKING, Literal
from urllib.parse import unquote, urlsplit, urlunsplit

import trio
from pydantic import Field, JsonValue, field_validator, model_validator

from actors.checks.config import CheckBase
from actors.checks.http11 import Http11Client, RequestTimedOut
from actors.checks.logic import Observation, evaluate_http
from actors.checks.probe import CheckContext, KindProbe
from actors.configtypes import check_http_url
from actors.models import CheckStatus
from actors.secrets import CREDENTIAL_HEADER

if TYPE_CHECKING:
    import httpx

    from actors.checks.timer import CheckTimer

__all__ = ["MAX_BODY", "HttpCheckConfig", "HttpProbe", "cert_not_after", "split_userinfo"]

MAX_BODY = 1024 * 1024
_USER_AGENT = "blipee-monitor"
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class HttpCheckConfig(CheckBase):
    """kind = "http": a request whose answer must meet the expectations."""

    kind: Literal["http"]
    url: str
    method: str = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    expect_status: tuple[int, ...] = ()
    """Accepted status codes; empty = any 2xx."""
    body_contains: str | None = None
    json_path: str | None = None
    json_equals: JsonValue = None
    tls_verify: bool = True
    cert_expiry_warn_days: int = Field(default=14, ge=0)
    follow_redirects: bool = True
    watch: bool = True
    """Run at once when the server closes or resets the kept connection (module docstring)."""
    secret_headers: tuple[str, ...] = ()
    """Headers that carry a credential besides those named so (Authorization, X-Api-Key,
    Cookie, ...): redacted from messages and dropped on a redirect to another origin."""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        check_http_url(value, shown=_without_password(value))
        return value

    @model_validator(mode="after")
    def _userinfo(self) -> HttpCheckConfig:
        if urlsplit(self.url).username is not None and any(
            name.lower() == "authorization" for name in self.headers
        ):
            raise ValueError(
                "url carries user:password@ (Basic auth) and headers set Authorization too:"
                " keep one"
            )
        return self

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        upper = value.upper()
        if upper not in _METHODS:
            raise ValueError(f"method must be one of {', '.join(_METHODS)}")
        return upper

    @field_validator("expect_status")
    @classmethod
    def _statuses(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        for code in value:
            if not 100 <= code <= 599:
                raise ValueError(f"{code} is not an HTTP status code (100-599)")
        return value

    @model_validator(mode="after")
    def _json(self) -> HttpCheckConfig:
        if self.json_equals is not None and self.json_path is None:
            raise ValueError("json_equals needs json_path")
        return self


class HttpProbe(KindProbe[HttpCheckConfig]):
    """Sends the configured request; see the module docstring.

    From the context: `transport` replaces the network with an httpx transport (tests); `tls`
    gives the TLS client contexts (the verifying one, or the lax one for `tls_verify = false`),
    taken on the first https connection: plain-http checks never build one; `clock` dates the
    certificate's expiry.
    """

    def __init__(self, config: HttpCheckConfig, context: CheckContext) -> None:
        super().__init__(config, context)
        transport = context.transport
        self._url, basic = split_userinfo(config.url)
        self._headers = list(config.headers.items())
        if basic is not None:
            self._headers.append(("Authorization", basic))
        sensitive = {name.lower() for name in config.secret_headers}
        sensitive.update(n.lower() for n, _ in self._headers if CREDENTIAL_HEADER.search(n))
        self._sensitive = frozenset(sensitive)
        if not any(name.lower() == "user-agent" for name, _ in self._headers):
            self._headers.insert(0, ("User-Agent", _USER_AGENT))
        self._body = config.body.encode() if config.body is not None else None
        self._client: httpx.AsyncClient | None = None
        self._fast: Http11Client | None = None
        if transport is not None:
            import httpx  # only for a test transport: the network path never loads httpx

            self._client = httpx.AsyncClient(
                transport=transport,
                follow_redirects=config.follow_redirects,
                timeout=None,
                trust_env=False,
            )
        else:
            self._fast = Http11Client(
                ssl_context=partial(context.tls.get, verify=config.tls_verify), max_body=MAX_BODY
            )
        self._check_cert = config.url.startswith("https://") and config.cert_expiry_warn_days > 0
        self._cert_der: bytes | None = None
        self._cert_not_after: float | None = None

    async def probe(self) -> Observation:
        """Send the request; raises network/TLS/protocol errors to fail the run."""
        return await self._probe(None)

    async def probe_within(self, deadline: float, timer: CheckTimer) -> Observation | None:
        """Send the request, by the loop time `deadline` (see `TimedProbe`): None when it
        passed first (the connection is then closed). Raises as `probe` does."""
        if self._fast is None:
            with trio.move_on_at(deadline):
                return await self.probe()
            return None
        try:
            return await self._probe(_TimerWaiter(timer, deadline))
        except RequestTimedOut:
            return None

    async def _probe(self, waiter: _TimerWaiter | None) -> Observation:
        config = self.config
        start = trio.current_time()
        der: bytes | None = None
        if self._fast is not None:
            raw = await self._fast.request(
                config.method,
                self._url,
                self._headers,
                self._body,
                follow_redirects=config.follow_redirects,
                sensitive=self._sensitive,
                waiter=waiter,
            )
            status, reason, body, truncated = raw.status, raw.reason, raw.body, raw.truncated
            der = self._fast.peer_cert
        else:
            assert self._client is not None
            status, reason, body, truncated = await self._via_httpx()
        latency = trio.current_time() - start
        observation = evaluate_http(
            status_code=status,
            reason=reason,
            body=body,
            expect_status=config.expect_status,
            body_contains=config.body_contains,
            json_path=config.json_path,
            json_equals=config.json_equals,
            truncated=truncated,
        )
        observation = Observation(
            observation.status, observation.message, observation.details, latency
        )
        if self._check_cert and der and observation.status is not CheckStatus.FAIL:
            observation = self._with_cert_expiry(observation, der)
        return observation

    async def _via_httpx(self) -> tuple[int, str, bytes, bool]:
        assert self._client is not None
        config = self.config
        request = self._client.build_request(
            config.method, self._url, headers=self._headers, content=self._body
        )
        response = await self._client.send(request, stream=True)
        body = bytearray()
        truncated = False
        try:
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) >= MAX_BODY:
                    truncated = True
                    break
        finally:
            await response.aclose()
        return response.status_code, response.reason_phrase, bytes(body[:MAX_BODY]), truncated

    def _with_cert_expiry(self, observation: Observation, der: bytes) -> Observation:
        if der != self._cert_der:
            self._cert_der = der
            try:
                self._cert_not_after = cert_not_after(der)
            except ValueError:
                self._cert_not_after = None
        if self._cert_not_after is None:
            return observation
        now = self.context.clock.now()
        days = (self._cert_not_after - now) / 86400.0
        details = {**observation.details, "cert_days_left": round(days, 1)}
        if days < 0:
            return Observation(
                CheckStatus.FAIL,
                f"certificate expired {abs(round(days))} days ago",
                details,
                observation.latency,
            )
        if days < self.config.cert_expiry_warn_days:
            return Observation(
                CheckStatus.WARN,
                f"{observation.message}; certificate expires in {int(days)} days",
                details,
                observation.latency,
            )
        return Observation(observation.status, observation.message, details, observation.latency)

    async def wait_lost(self) -> None:
        """Return once the server closed or reset the kept connection (see `WatchingProbe`);
        sleep until cancelled when `watch` is off, a test transport replaces the network, or no
        connection is kept."""
        if self._fast is None or not self.config.watch:
            await trio.sleep_forever()
        await self._fast.wait_lost()

    def watched_socket(self) -> trio.socket.SocketType | None:
        """The socket `wait_lost` waits on (see `SocketWatchingProbe`), or None when it sleeps."""
        if self._fast is None or not self.config.watch:
            return None
        return self._fast.watched_socket()

    def close_now(self) -> bool:
        """Close the kept connection at once (see `ClosingNowProbe`); False with a test
        transport, whose client `aclose()` closes."""
        if self._fast is not None:
            self._fast.close_now()
        return self._client is None

    async def aclose(self) -> None:
        """Close the connection."""
        if self._fast is not None:
            await self._fast.aclose()
        if self._client is not None:
            await self._client.aclose()


class _TimerWaiter:
    """An `http11.Waiter` on the process's `CheckTimer`: readable, or the deadline passed."""

    __slots__ = ("_timer", "deadline")

    def __init__(self, timer: CheckTimer, deadline: float) -> None:
        self._timer = timer
        self.deadline = deadline

    async def readable(self, sock: trio.socket.SocketType) -> bool:
        return await self._timer.wait(self.deadline, sock)


def _without_password(url: str) -> str:
    """`url` with the password of its `user:password@` part (if any) shown as `***`."""
    scheme, sep, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    userinfo, at, host = netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    return f"{scheme}{sep}{userinfo.partition(':')[0]}:***@{host}{slash}{path}"


def split_userinfo(url: str) -> tuple[str, str | None]:
    """(`url` without its `user:password@` part, the Basic `Authorization` value it meant or
    None). The user and password are percent-decoded, as curl does."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, None
    user = unquote(parts.username)
    password = unquote(parts.password or "")
    host = parts.netloc.rpartition("@")[2]
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return urlunsplit(parts._replace(netloc=host)), f"Basic {token}"


def _der_item(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER item at `pos`."""
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise ValueError("truncated certificate")
    return tag, pos, pos + length


def _der_time(tag: int, raw: bytes) -> float:
    text = raw.decode("ascii")
    if tag == 0x17:  # UTCTime YYMMDDHHMMSSZ
        year = int(text[:2])
        text = ("19" if year >= 50 else "20") + text
    elif tag != 0x18:  # GeneralizedTime YYYYMMDDHHMMSSZ
        raise ValueError("unexpected time encoding in certificate")
    stamp = dt.datetime.strptime(text[:14], "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)
    return stamp.timestamp()


def cert_not_after(der: bytes) -> float:
    """The notAfter time (Unix seconds) of a DER-encoded X.509 certificate.

    Raises:
        ValueError: the bytes are not a certificate this parser understands.
    """
    try:
        _, cert_start, _ = _der_item(der, 0)
        _, pos, _ = _der_item(der, cert_start)  # tbsCertificate
        tag, _, end = _der_item(der, pos)
        if tag == 0xA0:  # [0] explicit version
            pos = end
        for _ in range(3):  # serial, signature algorithm, issuer
            _, _, pos = _der_item(der, pos)
        _, validity, _ = _der_item(der, pos)
        _, _, not_before_end = _der_item(der, validity)
        tag, start, end = _der_item(der, not_before_end)
        return _der_time(tag, der[start:end])
    except (IndexError, UnicodeDecodeError) as exc:
        raise ValueError("malformed certificate") from exc

"""kind = "http": one request whose answer must meet the check's expectations.

The probe keeps one `httpx.AsyncClient` (connection pool) for the actor's life; the transport is
injectable so the logic is testable without a network. At most `MAX_BODY` bytes of the body are
read. For https URLs the certificate's expiry is read by a separate TLS handshake (httpx does not
expose the peer certificate), cached per host and port for `CERT_CACHE_SECONDS`: fewer than
`cert_expiry_warn_days` days left gives warn, an expired certificate fails (with `tls_verify`
on, the request itself already fails with the TLS library's reason).
"""

from __future__ import annotations

import datetime as dt
import ssl
from typing import TYPE_CHECKING

import httpx
import trio

from actors.checks.logic import Observation, evaluate_http
from actors.models import CheckStatus

if TYPE_CHECKING:
    from actors.checks.config import HttpCheckConfig
    from actors.clock import Clock

__all__ = ["CERT_CACHE_SECONDS", "MAX_BODY", "HttpProbe", "cert_not_after"]

MAX_BODY = 1024 * 1024
CERT_CACHE_SECONDS = 3600.0


class HttpProbe:
    """Sends the configured request; see the module docstring.

    `transport` replaces httpx's network transport (tests); `ssl_context` replaces the default
    verification context (e.g. to trust a private CA).
    """

    def __init__(
        self,
        *,
        config: HttpCheckConfig,
        transport: httpx.AsyncBaseTransport | None = None,
        ssl_context: ssl.SSLContext | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._config = config
        self._clock = clock
        self._url = httpx.URL(config.url)
        verify: ssl.SSLContext | bool
        if not config.tls_verify:
            verify = False
        elif ssl_context is not None:
            verify = ssl_context
        else:
            verify = True
        self._ssl_context = ssl_context
        self._client = httpx.AsyncClient(
            transport=transport,
            verify=verify,
            follow_redirects=config.follow_redirects,
            timeout=None,  # the actor's cancel scope is the timeout
            headers={"User-Agent": "blipee-monitor"},
            limits=httpx.Limits(max_connections=4, max_keepalive_connections=1),
            trust_env=False,
        )
        self._request_headers = dict(config.headers)
        self._body = config.body.encode() if config.body is not None else None
        self._cert_checked_at: float | None = None
        self._cert_days: float | None = None
        self._cert_error: str | None = None
        self._check_cert = (
            self._url.scheme == "https" and config.cert_expiry_warn_days > 0 and transport is None
        )

    async def probe(self) -> Observation:
        """Send the request; raises httpx errors (refused, reset, TLS, protocol) to fail the run."""
        config = self._config
        request = self._client.build_request(
            config.method, self._url, headers=self._request_headers, content=self._body
        )
        start = trio.current_time()
        response = await self._client.send(request, stream=True)
        try:
            body = bytearray()
            truncated = False
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) >= MAX_BODY:
                    truncated = True
                    break
        finally:
            await response.aclose()
        latency = trio.current_time() - start
        decoded = bytes(body)
        observation = evaluate_http(
            status_code=response.status_code,
            reason=response.reason_phrase,
            body=decoded,
            expect_status=config.expect_status,
            body_contains=config.body_contains,
            json_path=config.json_path,
            json_equals=config.json_equals,
            truncated=truncated,
        )
        observation = Observation(
            observation.status, observation.message, observation.details, latency
        )
        if self._check_cert and observation.status is not CheckStatus.FAIL:
            observation = await self._with_cert_expiry(observation)
        return observation

    async def _with_cert_expiry(self, observation: Observation) -> Observation:
        now = trio.current_time()
        if self._cert_checked_at is None or now - self._cert_checked_at > CERT_CACHE_SECONDS:
            self._cert_checked_at = now
            try:
                self._cert_days = await self._read_cert_days()
                self._cert_error = None
            except (OSError, trio.BrokenResourceError, ValueError) as exc:
                self._cert_days = None
                self._cert_error = str(exc) or type(exc).__name__
        days = self._cert_days
        details = dict(observation.details)
        if days is None:
            if self._cert_error:
                details["cert_error"] = self._cert_error
            return Observation(
                observation.status, observation.message, details, observation.latency
            )
        details["cert_days_left"] = round(days, 1)
        if days < 0:
            return Observation(
                CheckStatus.FAIL,
                f"certificate expired {abs(round(days))} days ago",
                details,
                observation.latency,
            )
        if days < self._config.cert_expiry_warn_days:
            return Observation(
                CheckStatus.WARN,
                f"{observation.message}; certificate expires in {int(days)} days",
                details,
                observation.latency,
            )
        return Observation(observation.status, observation.message, details, observation.latency)

    async def _read_cert_days(self) -> float:
        host = self._url.host
        port = self._url.port or 443
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        stream = await trio.open_ssl_over_tcp_stream(host, port, ssl_context=context)
        try:
            await stream.do_handshake()
            der = stream.getpeercert(binary_form=True)
        finally:
            await trio.aclose_forcefully(stream)
        if not der:
            raise ValueError("no peer certificate")
        not_after = cert_not_after(der)
        now = self._clock.now() if self._clock is not None else dt.datetime.now(dt.UTC).timestamp()
        return (not_after - now) / 86400.0

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()


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

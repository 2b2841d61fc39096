"""kind = "tls": a TLS server's certificate verifies and is not about to expire.

Every run opens a TCP connection to `host`:`port`, completes a TLS handshake sending
`server_name` (SNI; `host` when empty) and verifies the chain and the name: against the system
trust store, or against the CA certificates of `ca_file` alone (a private CA). The check fails
when the handshake fails (refused, reset, not TLS), the chain does not verify (self-signed,
unknown issuer, expired) or the certificate is not valid for the name, each with the TLS
library's reason; otherwise it reports the days left until the certificate's notAfter: warn
under `warn_days`, fail under `fail_days`. Latency is the connect plus the handshake.

The verifying context is the process's shared one (`CheckContext.tls`) unless `ca_file` is set;
a `ca_file` context holds that file's certificates only, not a copy of the system store, so one
per check is cheap. `ca_file` is read when the configuration is loaded (a missing file or one
without a certificate is a configuration error) and again when the probe is built.
"""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import trio
from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from actors.checks.config import CheckBase
from actors.checks.errors import ProbeError
from actors.checks.logic import Observation
from actors.checks.probe import CheckContext, KindProbe

__all__ = [
    "CaFile",
    "TlsCheckConfig",
    "TlsProbe",
    "ca_context",
    "judge_expiry",
    "open_tls_stream",
    "verify_failure",
]


def ca_context(path: str) -> ssl.SSLContext:
    """A verifying client context trusting the CA certificates of the PEM file `path` only.

    Raises:
        ValueError: the file cannot be read or holds no certificate.
    """
    try:
        context = ssl.create_default_context(cafile=path)
    except ssl.SSLError:  # an OSError too: first
        raise ValueError(f"{path} holds no PEM certificate") from None
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not context.get_ca_certs():
        raise ValueError(f"{path} holds no CA certificate")
    return context


def _checked_ca_file(value: str) -> str:
    path = value.strip()
    if path:
        ca_context(path)
    return path


CaFile = Annotated[str, AfterValidator(_checked_ca_file)]
"""A `ca_file` key: the path of a PEM file of CA certificates, "" for none; read when the
configuration is loaded, so that a missing file or one without a certificate is reported at the
key ("cannot read PATH: ...", "PATH holds no PEM certificate")."""


def _name_of(entries: Any) -> str:
    """The commonName of a subject/issuer as `getpeercert()` gives it, else its organizationName
    ("" when it has neither)."""
    fields = {key: str(value) for rdn in entries or () for key, value in rdn}
    return fields.get("commonName") or fields.get("organizationName", "")


def judge_expiry(
    target: str,
    not_after: float,
    now: float,
    *,
    warn_days: int,
    fail_days: int,
    details: Mapping[str, object] | None = None,
    latency: float | None = None,
) -> Observation:
    """Judge a verified certificate by the days left until `not_after` (Unix seconds) at `now`:
    fail under `fail_days`, warn under `warn_days`, else pass. `details` gain `days_left` and
    `not_after` (ISO 8601, UTC). Pure."""
    days = (not_after - now) / 86400.0
    expires = dt.datetime.fromtimestamp(not_after, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    info = {**(details or {}), "days_left": round(days, 1), "not_after": expires}
    if days < 0:
        return Observation.fail(f"{target}: certificate expired on {expires}", info)
    text = f"{target}: certificate valid for {int(days)} more days (until {expires})"
    if days < fail_days:
        return Observation.fail(f"{text}; fail_days is {fail_days}", info, latency=latency)
    if days < warn_days:
        return Observation.warn(f"{text}; warn_days is {warn_days}", info, latency=latency)
    return Observation.ok(text, info, latency=latency)


def verify_failure(target: str, name: str, error: ssl.SSLCertVerificationError) -> str:
    """The message of a handshake whose certificate did not verify. Pure."""
    reason = (error.verify_message or error.reason or str(error)).rstrip(".")
    if reason.lower().startswith(("hostname mismatch", "ip address mismatch")):
        return f"{target}: certificate is not valid for {name} ({reason.split(',')[0].lower()})"
    return f"{target}: certificate verify failed: {reason}"


async def open_tls_stream(
    host: str, port: int, context: ssl.SSLContext, server_name: str, *, target: str
) -> trio.SSLStream[trio.SocketStream]:
    """A TCP connection to `host`:`port` with its TLS handshake done for `server_name` (SNI and
    the name verified), `context` verifying; `target` starts the error messages.

    Raises:
        ProbeError: the handshake failed: the certificate did not verify (`verify_failure`), a
            TLS error (its reason), or the server closed the connection.
        OSError: the connection could not be made (refused, unknown host).
    """
    tcp = await trio.open_tcp_stream(host, port)
    stream = trio.SSLStream(tcp, context, server_hostname=server_name)
    try:
        await stream.do_handshake()
    except trio.BrokenResourceError as exc:
        await trio.aclose_forcefully(stream)
        cause = exc.__cause__
        if isinstance(cause, ssl.SSLCertVerificationError):
            raise ProbeError(verify_failure(target, server_name, cause)) from None
        if isinstance(cause, ssl.SSLError):
            reason = cause.reason or cause.strerror or type(cause).__name__
            raise ProbeError(f"{target}: TLS handshake failed: {reason}") from None
        raise ProbeError(f"{target}: closed during the TLS handshake") from None
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return stream


class TlsCheckConfig(CheckBase):
    """kind = "tls": `host`:`port` completes a verified TLS handshake for `server_name`, and its
    certificate has more than `fail_days` (`warn_days`) days left.

    `fail_days` defaults to 3, or to `warn_days` when that is smaller; written larger than
    `warn_days` it is an error.
    """

    kind: Literal["tls"]
    host: str
    port: int = Field(default=443, ge=1, le=65535)
    server_name: str = ""
    warn_days: int = Field(default=14, ge=0)
    fail_days: int = Field(default=3, ge=0)
    ca_file: CaFile = ""

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("host is empty")
        return value.strip()

    @field_validator("server_name")
    @classmethod
    def _server_name(cls, value: str) -> str:
        return value.strip().rstrip(".")

    @field_validator("fail_days")
    @classmethod
    def _fail_days(cls, value: int, info: ValidationInfo) -> int:
        warn_days = info.data.get("warn_days")
        if warn_days is not None and value > warn_days:
            raise ValueError(f"fail_days ({value}) must not be more than warn_days ({warn_days})")
        return value

    @model_validator(mode="after")
    def _default_fail_days(self) -> Any:
        if "fail_days" not in self.model_fields_set and self.fail_days > self.warn_days:
            # The model is frozen: set the derived default the way pydantic sets fields.
            object.__setattr__(self, "fail_days", self.warn_days)
        return self


class TlsProbe(KindProbe[TlsCheckConfig]):
    """Connects and shakes hands on every run; see the module docstring."""

    def __init__(self, config: TlsCheckConfig, context: CheckContext) -> None:
        super().__init__(config, context)
        self._context = ca_context(config.ca_file) if config.ca_file else context.tls.get()
        self._name = config.server_name or config.host
        host = f"[{config.host}]" if ":" in config.host else config.host
        self._target = f"{host}:{config.port}"
        if self._name != config.host:
            self._target += f" ({self._name})"

    async def probe(self) -> Observation:
        """Shake hands and judge the certificate; raises ProbeError (verification failed, not
        TLS) or OSError (refused, unknown host) to fail the run."""
        config = self.config
        start = trio.current_time()
        stream = await open_tls_stream(
            config.host, config.port, self._context, self._name, target=self._target
        )
        try:
            latency = trio.current_time() - start
            cert: Any = stream.getpeercert()
            version = stream.version()
        finally:
            await trio.aclose_forcefully(stream)
        details: dict[str, object] = {
            "subject": _name_of(cert.get("subject")),
            "issuer": _name_of(cert.get("issuer")),
            "tls_version": version,
        }
        return judge_expiry(
            self._target,
            ssl.cert_time_to_seconds(cert["notAfter"]),
            self.context.clock.now(),
            warn_days=config.warn_days,
            fail_days=config.fail_days,
            details=details,
            latency=latency,
        )

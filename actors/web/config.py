"""Configuration of the HTTP listeners ([server]) and of access control ([security])."""

from __future__ import annotations

import difflib
import ipaddress
import re
from typing import Annotated

from pydantic import AfterValidator, Field, SecretStr, model_validator

from actors.configtypes import ConfigModel, Duration, Secret
from actors.web.access import TOKEN_SCOPES

__all__ = [
    "Listen",
    "SecurityConfig",
    "ServerConfig",
    "TokenConfig",
    "listen_overlap",
    "parse_listen",
]


_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def parse_listen(text: str) -> tuple[str, int]:
    """Split "host:port" (IPv6 as "[::1]:port") into host and port.

    The host is an IPv4 address, a bracketed IPv6 address or a host name; the port 0..65535.

    Raises:
        ValueError: not of the form host:port, an invalid host, or the port is not 0..65535.
    """
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"expected 'host:port', e.g. '0.0.0.0:3000', got {text!r}")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"port must be a number from 0 to 65535, got {port_text!r}")
    if host.startswith("[") or host.endswith("]"):
        inner = host[1:-1] if host.startswith("[") and host.endswith("]") else None
        try:
            ipaddress.IPv6Address(inner or "")
        except ValueError:
            raise ValueError(
                f"invalid IPv6 address in {text!r}; expected '[ADDRESS]:PORT', e.g. '[::1]:3000'"
            ) from None
        return str(inner), int(port_text)
    if ":" in host:
        raise ValueError(f"write an IPv6 address in brackets, e.g. '[::1]:3000', got {text!r}")
    if not _HOSTNAME.match(host) or (host.replace(".", "").isdigit() and not _is_ipv4(host)):
        raise ValueError(f"invalid host {host!r} in {text!r}; expected an IP address or a name")
    return host, int(port_text)


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def listen_overlap(first: str, second: str) -> bool:
    """Whether two valid listen addresses cannot both be bound: the same non-zero port on the
    same address, or on addresses one of which covers the other (`0.0.0.0` covers every IPv4
    address, `[::]` every address as Linux binds it dual-stack; a name such as `localhost` is
    bound as IPv4). Names are compared as written, except `localhost` (127.0.0.1).

    Raises:
        ValueError: an address is not valid (see `parse_listen`).
    """
    (host_a, port_a), (host_b, port_b) = parse_listen(first), parse_listen(second)
    if port_a != port_b or port_a == 0:
        return False
    a, b = _bind_address(host_a), _bind_address(host_b)
    if a == b:
        return True
    for wild, other in ((a, b), (b, a)):
        covers = isinstance(wild, ipaddress.IPv4Address | ipaddress.IPv6Address) and (
            wild.is_unspecified
            and (wild.version == 6 or not isinstance(other, ipaddress.IPv6Address))
        )
        if covers:
            return True
    return False


def _bind_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | str:
    """The address a host binds to, as far as it is known without resolving names."""
    if host.lower() == "localhost":
        return ipaddress.IPv4Address("127.0.0.1")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return host.lower()


def _check_listen(text: str) -> str:
    parse_listen(text)
    return text


Listen = Annotated[str, AfterValidator(_check_listen)]
"""A listen address "host:port"; port 0 picks a free port."""


def _check_network(text: str) -> str:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise ValueError(f"not a CIDR network or address: {text!r}") from exc
    return text


class ServerConfig(ConfigModel):
    """[server]: the API/probe listener and the separate Prometheus /metrics listener."""

    listen: Listen = "0.0.0.0:3000"
    metrics_listen: Listen = "0.0.0.0:9464"
    tls_cert: str | None = None
    tls_key: str | None = None
    external_url: str = ""
    """Base URL users reach the monitor at; used for links in notifications."""
    max_connections: int = Field(default=1000, ge=1, le=1_000_000)
    """Connections served at once per listener; one more is answered 503 (liveness: 200)."""
    reuse_port: bool = False
    """Bind `listen` with SO_REUSEPORT, so that several processes of the same user share it and
    the kernel spreads the connections over them (what `run --workers` sets for its workers)."""

    @model_validator(mode="after")
    def _tls_pair(self) -> ServerConfig:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be set together")
        if listen_overlap(self.listen, self.metrics_listen):
            raise ValueError(
                f"metrics_listen {self.metrics_listen} and listen {self.listen} bind the same"
                " address and port; give /metrics its own port"
            )
        return self


_TOKEN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_SCOPE_NAMES = tuple(str(scope) for scope in TOKEN_SCOPES)


def _check_scope(text: str) -> str:
    if text not in _SCOPE_NAMES:
        close = difflib.get_close_matches(text, _SCOPE_NAMES, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ValueError(f"unknown scope {text!r}{hint} (scopes: {', '.join(_SCOPE_NAMES)})")
    return text


def _check_token_name(text: str) -> str:
    if not _TOKEN_NAME.match(text):
        raise ValueError(
            f"invalid token name {text!r}; use up to 64 letters, digits, '_', '.', '@', '-'"
        )
    return text


def _check_scopes(scopes: tuple[str, ...]) -> tuple[str, ...]:
    if not scopes:
        raise ValueError(f"give at least one scope (scopes: {', '.join(_SCOPE_NAMES)})")
    if len(set(scopes)) != len(scopes):
        raise ValueError("a scope is listed twice")
    return scopes


def _check_token(token: SecretStr) -> SecretStr:
    if not token.get_secret_value().strip():
        raise ValueError(
            "the token is empty; give it a long random value (e.g. from `openssl rand -hex 32`)"
            " or remove the entry"
        )
    return token


class TokenConfig(ConfigModel):
    """One `[[security.tokens]]` entry: a named bearer token and the scopes it grants.

    Raises (as a validation error): the token is empty, the name is invalid, a scope is unknown
    (the message lists the scopes) or repeated, or no scope is given.
    """

    name: Annotated[str, AfterValidator(_check_token_name)]
    token: Annotated[Secret, AfterValidator(_check_token)]
    scopes: Annotated[
        tuple[Annotated[str, AfterValidator(_check_scope)], ...], AfterValidator(_check_scopes)
    ]


class SecurityConfig(ConfigModel):
    """[security]: tokens, the CIDR allow-list and label anonymisation.

    Tokens: `api_token` (every scope, named "api_token") and `tokens` (named, scoped); the
    access guard (`actors.web.access`) applies them with `allow_from`, `read_requires_token`,
    `metrics_token` and `max_body_bytes`, and takes a new `[security]` on reload.

    `anonymize_labels` names the labels whose values the metric store replaces by
    HMAC-SHA256(`anonymize_key`, value) (16 hex digits) before anything is kept, so `/metrics`,
    OTLP, alerts and the API never carry them in clear. It is empty by default: a hash is only
    useful with a key that is stable across restarts and replicas and kept secret, and no
    default can be that, so anonymisation is something a deployment turns on together with its
    key (the packaged configurations carry a commented example reading the key from
    `${LABEL_HMAC_KEY}`).

    Raises (as a validation error, so `check-config` and `run` report it alike):
        ValueError: `anonymize_labels` is set but `anonymize_key` is empty (hashing with a
            random per-process key would change every token at each restart, and passing the
            values through in clear would defeat the setting); a label name is invalid or
            repeated; token names or token values repeat; `read_requires_token` without a
            token holding `read`.
    """

    api_token: Secret = SecretStr("")
    """A token with every scope, named "api_token"; empty: none."""
    tokens: tuple[TokenConfig, ...] = ()
    """Named tokens with their scopes ([[security.tokens]])."""
    read_requires_token: bool = False
    """Read routes need a token with the `read` scope (besides `allow_from`)."""
    metrics_token: Secret = SecretStr("")
    allow_from: tuple[Annotated[str, AfterValidator(_check_network)], ...] = ()
    anonymize_labels: tuple[str, ...] = ()
    anonymize_key: Secret = SecretStr("")
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    """Largest request body accepted by the API (413 above)."""
    auth_failures: int = Field(default=10, ge=0)
    """Failed authentications an address may make within `auth_failure_window` before its
    requests answer 429 (0: no limit)."""
    auth_failure_window: Duration = 60.0

    @model_validator(mode="after")
    def _tokens(self) -> SecurityConfig:
        names = [token.name for token in self.tokens]
        if self.api_token.get_secret_value():
            names.insert(0, "api_token")
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(
                f"token names must be unique: {', '.join(repeated)} is used more than once"
                + (" (api_token names the [security] api_token)" if "api_token" in repeated else "")
            )
        values = [token.token.get_secret_value() for token in self.tokens]
        if self.api_token.get_secret_value():
            values.insert(0, self.api_token.get_secret_value())
        # One value, two names: the name the request is logged under would be a guess.
        if len(set(values)) != len(values):
            shared = [n for n, v in zip(names, values, strict=True) if values.count(v) > 1]
            raise ValueError(
                f"token values must be unique: {', '.join(shared)} have the same value"
            )
        readers = [token for token in self.tokens if "read" in token.scopes]
        if self.read_requires_token and not (self.api_token.get_secret_value() or readers):
            raise ValueError(
                "read_requires_token needs a token with the 'read' scope: set api_token or add"
                " a [[security.tokens]] entry"
            )
        return self

    @model_validator(mode="after")
    def _anonymisation(self) -> SecurityConfig:
        for label in self.anonymize_labels:
            if not _LABEL_NAME.match(label) or label.startswith("__"):
                raise ValueError(f"anonymize_labels: invalid label name {label!r}")
        if len(set(self.anonymize_labels)) != len(self.anonymize_labels):
            raise ValueError("anonymize_labels: label names must be unique")
        if self.anonymize_labels and not self.anonymize_key.get_secret_value():
            raise ValueError(
                f"{list(self.anonymize_labels)} are to be anonymised but anonymize_key is"
                ' empty: set anonymize_key (e.g. anonymize_key = "${LABEL_HMAC_KEY}" and export'
                " LABEL_HMAC_KEY, a long random secret shared by every replica), or set"
                " anonymize_labels = [] to keep label values in clear"
            )
        return self

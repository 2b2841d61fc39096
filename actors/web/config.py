"""Configuration of the HTTP listeners ([server]) and of access control ([security])."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated

from pydantic import AfterValidator, Field, SecretStr, model_validator

from actors.configtypes import ConfigModel, Secret

__all__ = ["Listen", "SecurityConfig", "ServerConfig", "listen_overlap", "parse_listen"]


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


class SecurityConfig(ConfigModel):
    """[security]: tokens, the CIDR allow-list and label anonymisation.

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
            repeated.
    """

    api_token: Secret = SecretStr("")
    metrics_token: Secret = SecretStr("")
    allow_from: tuple[Annotated[str, AfterValidator(_check_network)], ...] = ()
    anonymize_labels: tuple[str, ...] = ()
    anonymize_key: Secret = SecretStr("")
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    """Largest request body accepted by the API (413 above)."""

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

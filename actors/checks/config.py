"""Configuration of health checks ([[checks]]): one model per `kind`, a union discriminated by it.

Every kind has the common keys of `CheckBase`; `CheckConfig` is the union users write.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, JsonValue, SecretStr, field_validator, model_validator

from actors.configtypes import ConfigModel, Duration, Secret
from actors.rules.config import ConditionConfig

__all__ = [
    "DEFAULT_TIMEOUT",
    "AgentsCheckConfig",
    "CheckBase",
    "CheckConfig",
    "HttpCheckConfig",
    "MetricCheckConfig",
    "PostgresCheckConfig",
    "RedisCheckConfig",
    "SelfCheckConfig",
    "TcpCheckConfig",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
DEFAULT_TIMEOUT = 2.0
"""A check's timeout when it sets none, capped at its interval."""


class CheckBase(ConfigModel):
    """Keys every check kind has.

    `timeout` defaults to `DEFAULT_TIMEOUT` or the interval, whichever is shorter (a "1s" check
    times out after 1s); a timeout written longer than the interval is an error.
    """

    name: str
    interval: Duration = 10.0
    timeout: Duration = DEFAULT_TIMEOUT
    critical: bool = False
    warn_latency: Duration | None = None
    failure_threshold: int = Field(default=1, ge=1)
    success_threshold: int = Field(default=1, ge=1)
    depends_on: tuple[str, ...] = ()

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"invalid check name {value!r}; use letters, digits, '_', '.', '-'")
        return value

    @model_validator(mode="after")
    def _timing(self) -> Any:
        if self.interval <= 0:
            raise ValueError("interval must be longer than 0s")
        if "timeout" not in self.model_fields_set:
            # The model is frozen: set the derived default the way pydantic sets fields.
            object.__setattr__(self, "timeout", min(DEFAULT_TIMEOUT, self.interval))
        if self.timeout <= 0:
            raise ValueError("timeout must be longer than 0s")
        if self.timeout > self.interval:
            raise ValueError("timeout must not be longer than interval")
        if self.name in self.depends_on:
            raise ValueError("a check cannot depend on itself")
        return self


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

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
        try:
            valid_port = urlsplit(value).port != 0
        except ValueError:
            valid_port = False
        if not valid_port:
            raise ValueError(f"invalid port in {value!r}; expected 1-65535")
        return value

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


class TcpCheckConfig(CheckBase):
    """kind = "tcp": a TCP connection can be opened."""

    kind: Literal["tcp"]
    host: str
    port: int = Field(ge=1, le=65535)


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


class AgentsCheckConfig(CheckBase):
    """kind = "agents": the agents that report in are alive and mostly succeed."""

    kind: Literal["agents"]
    expected: tuple[str, ...] = ()
    max_silence: Duration = 300.0
    max_error_ratio: float = Field(default=0.1, ge=0.0, le=1.0)


class MetricCheckConfig(CheckBase):
    """kind = "metric": fails while `condition` holds for any matching series."""

    kind: Literal["metric"]
    condition: ConditionConfig


class SelfCheckConfig(CheckBase):
    """kind = "self": the supervision tree itself (actors failing or restarting repeatedly)."""

    kind: Literal["self"]


CheckConfig = Annotated[
    HttpCheckConfig
    | TcpCheckConfig
    | PostgresCheckConfig
    | RedisCheckConfig
    | AgentsCheckConfig
    | MetricCheckConfig
    | SelfCheckConfig,
    Field(discriminator="kind"),
]
"""Any check, chosen by its `kind` key."""

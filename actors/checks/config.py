"""What every check kind's configuration shares: `CheckBase`, the keys of every [[checks]] table.

Each kind's own model (`HttpCheckConfig`, ...) lives in its module, `actors.checks.<kind>`, next to
the probe that keeps it; the union users write ([[checks]], discriminated by `kind`) is
`actors.checks.kinds.CheckConfig`, derived from the registry of kinds.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator, model_validator

from actors.configtypes import ConfigModel, Duration

__all__ = ["DEFAULT_TIMEOUT", "CheckBase"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
DEFAULT_TIMEOUT = 2.0
"""A check's timeout when it sets none, capped at its interval."""


class CheckBase(ConfigModel):
    """Keys every check kind has; each kind's model narrows `kind` to `Literal["<kind>"]`.

    `timeout` defaults to `DEFAULT_TIMEOUT` or the interval, whichever is shorter (a "1s" check
    times out after 1s); a timeout written longer than the interval is an error.
    """

    name: str
    kind: str
    interval: Duration = 10.0
    timeout: Duration = DEFAULT_TIMEOUT
    critical: bool = False
    warn_latency: Duration | None = None
    failure_threshold: int = Field(default=1, ge=1)
    success_threshold: int = Field(default=1, ge=1)
    depends_on: tuple[str, ...] = ()
    group: str = Field(default="", max_length=100)
    """Where the status page lists the check (checks without a group come first)."""

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

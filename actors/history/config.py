"""Configuration of the check history ([history])."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from actors.configtypes import ConfigModel, Duration

__all__ = ["HistoryConfig"]

_DAY = 86_400.0


class HistoryConfig(ConfigModel):
    """[history]: what is kept of every check's runs, and for how long.

    Per check: the last `raw_results` runs (each with its message), one bucket per minute for
    `minute_retention`, one per hour for `hour_retention`, incidents for `incident_retention`.
    At the defaults that is at most ~250 KB per check whatever its interval (see
    docs/configuration.md); the uptime bars of the 24 h window read the minute buckets, the
    longer windows the hour buckets. Writes are batched: every `flush_interval`, one
    transaction for every check's runs since the last.
    """

    enabled: bool = True
    raw_results: int = Field(default=100, ge=0, le=100_000)
    minute_retention: Duration = _DAY
    hour_retention: Duration = 90 * _DAY
    incident_retention: Duration = 90 * _DAY
    flush_interval: Duration = 5.0

    @model_validator(mode="after")
    def _positive(self) -> Any:
        for key in ("minute_retention", "hour_retention", "incident_retention", "flush_interval"):
            if getattr(self, key) <= 0:
                raise ValueError(f"{key} must be longer than 0s")
        return self

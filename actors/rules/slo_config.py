"""Configuration of service level objectives ([[slos]]).

```toml
[[slos]]
name = "api-availability"
objective = 0.999                  # the share of good events over `window`
window = "30d"
good = { metric = "api_requests_total", labels_not = { status = "5.." } }
total = { metric = "api_requests_total" }
alert_channels = ["pagerduty"]
```

An event-based SLI counts events in counters: `good` (or `bad`) and `total` select series of a
counter with `labels` (each value a regex the label's value must match, as PromQL's `=~`) and
`labels_not` (must not match, `!~`); regexes are RE2, anchored. A latency SLI,
`sli = { metric = "<histogram>", le = "0.5" }`, counts the observations at or under `le` (one of
the histogram's bucket bounds) as good and all of them as total.
"""

from __future__ import annotations

import math
import re
from typing import Any

from pydantic import Field, field_validator, model_validator

from actors.configtypes import ConfigModel, Duration
from actors.routing.matchers import compile_matcher_regex

__all__ = ["LatencySliConfig", "SelectorConfig", "SloConfig"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
LONGEST_BURN_WINDOW = 3 * 86400.0


def _regexes(value: dict[str, str]) -> dict[str, str]:
    for name, pattern in value.items():
        if not _LABEL.match(name):
            raise ValueError(f"invalid label name {name!r}")
        compile_matcher_regex(pattern)  # raises ValueError with the reason
    return value


class SelectorConfig(ConfigModel):
    """The series of a counter an SLI counts: `labels` must match, `labels_not` must not."""

    metric: str
    labels: dict[str, str] = Field(default_factory=dict)
    labels_not: dict[str, str] = Field(default_factory=dict)

    @field_validator("labels", "labels_not")
    @classmethod
    def _patterns(cls, value: dict[str, str]) -> dict[str, str]:
        return _regexes(value)


class LatencySliConfig(SelectorConfig):
    """A latency SLI: observations of histogram `metric` at or under `le` seconds are good."""

    le: float

    @field_validator("le", mode="before")
    @classmethod
    def _le(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ValueError(f"le must be a number of seconds, not {value!r}") from None
        if isinstance(value, int | float) and not math.isfinite(value):
            raise ValueError("le must be a finite bucket bound (every observation is <= +Inf)")
        return value


class SloConfig(ConfigModel):
    """[[slos]]: one service level objective, with its generated burn-rate alerts."""

    name: str
    objective: float
    window: Duration = 30 * 86400.0
    description: str = ""
    good: SelectorConfig | None = None
    bad: SelectorConfig | None = None
    total: SelectorConfig | None = None
    sli: LatencySliConfig | None = None
    alert_channels: tuple[str, ...] = ()
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"invalid SLO name {value!r}; use letters, digits, '_', '.', '-'")
        return value

    @field_validator("objective")
    @classmethod
    def _objective(cls, value: float) -> float:
        if not 0.0 < value < 1.0:
            raise ValueError("objective must be between 0 and 1 (0.999 for 99.9 %), exclusive")
        return value

    @field_validator("window")
    @classmethod
    def _window(cls, value: float) -> float:
        if value < LONGEST_BURN_WINDOW:
            raise ValueError("window must be at least 3d (the longest burn-rate window)")
        return value

    @model_validator(mode="after")
    def _one_sli(self) -> SloConfig:
        if self.sli is not None:
            if self.good is not None or self.bad is not None or self.total is not None:
                raise ValueError("an SLO takes either sli (latency) or good/bad with total")
        elif self.total is None or (self.good is None) == (self.bad is None):
            raise ValueError("an SLO needs total and one of good or bad, or sli (latency)")
        reserved = {"alertname", "rule", "severity", "slo", "burn"} & set(self.labels)
        if reserved:
            raise ValueError(f"labels may not set {', '.join(sorted(reserved))}: the SLO sets them")
        return self

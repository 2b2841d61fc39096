"""Configuration of alert rules ([[rules]] with [rules.condition]).

The condition table is shared with the `metric` check kind.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from actors.configtypes import ConfigModel, Duration
from actors.models import Severity

__all__ = [
    "AGGREGATES",
    "OPERATORS",
    "Aggregate",
    "ConditionConfig",
    "DivideByConfig",
    "Operator",
    "RuleConfig",
]

Aggregate = Literal[
    "last", "avg", "min", "max", "sum", "count", "rate", "increase",
    "p50", "p90", "p95", "p99", "absent",
]  # fmt: skip
Operator = Literal[">", ">=", "<", "<=", "==", "!="]
AGGREGATES: tuple[str, ...] = Aggregate.__args__  # type: ignore[attr-defined]
OPERATORS: tuple[str, ...] = Operator.__args__  # type: ignore[attr-defined]

_RULE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class DivideByConfig(ConfigModel):
    """`divide_by`: the denominator of a ratio condition, over the condition's window.

    `aggregate` defaults to the condition's, `labels` (exact matchers) to the condition's.
    Each numerator series is divided by the denominator series with the identical label set
    (one-to-one, as PromQL's `/` without `on`/`ignoring`); a series without one, or whose
    denominator is 0, has no value.
    """

    metric: str
    aggregate: Aggregate | None = None
    labels: dict[str, str] | None = None

    @field_validator("aggregate")
    @classmethod
    def _aggregate(cls, value: str | None) -> str | None:
        if value == "absent":
            raise ValueError("a ratio cannot divide by absent (it has no series to match)")
        return value


class ConditionConfig(ConfigModel):
    """When a series is "bad": `aggregate(metric{labels}[window]) operator threshold`.

    Evaluated per matching series; it must hold for `duration` before the alert fires. With
    `divide_by`, the value compared is the ratio of the two aggregates (see `DivideByConfig`).
    """

    metric: str
    labels: dict[str, str] = Field(default_factory=dict)
    aggregate: Aggregate = "last"
    window: Duration = 300.0
    operator: Operator = ">"
    threshold: float = 0.0
    duration: Duration = 0.0
    divide_by: DivideByConfig | None = None

    @field_validator("window")
    @classmethod
    def _window(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("window must be longer than 0s")
        return value

    @model_validator(mode="after")
    def _ratio(self) -> ConditionConfig:
        if self.divide_by is not None and self.aggregate == "absent":
            raise ValueError("absent cannot be divided: use another aggregate with divide_by")
        return self


class RuleConfig(ConfigModel):
    """[[rules]]: one alert rule; every matching series is its own alert instance."""

    id: str
    name: str
    severity: Severity = Severity.WARNING
    channels: tuple[str, ...] = ()
    summary: str = ""
    description: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    keep_firing_for: Duration = 0.0
    enabled: bool = True
    condition: ConditionConfig

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _RULE_ID.match(value):
            raise ValueError(f"invalid rule id {value!r}; use letters, digits, '_', '.', '-'")
        return value

    @model_validator(mode="after")
    def _reserved_labels(self) -> RuleConfig:
        reserved = {"alertname", "rule", "severity"} & set(self.labels)
        if reserved:
            names = ", ".join(sorted(reserved))
            raise ValueError(f"labels may not set {names}: the rule sets them")
        return self

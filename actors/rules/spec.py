"""Building evaluable `Rule`s from configuration and from the seed's `add_rule({...})` shape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from actors.models import labels_of
from actors.rules.config import ConditionConfig, RuleConfig
from actors.rules.evaluate import Condition, Divisor, Rule
from actors.rules.exceptions import InvalidRule

__all__ = ["condition_from_config", "rule_from_config", "rule_from_spec"]


def condition_from_config(cond: ConditionConfig) -> Condition:
    """The evaluable condition of a validated condition table (of a rule or a metric check).

    `divide_by` takes the condition's aggregate and labels where it sets none.
    """
    divisor = None
    if cond.divide_by is not None:
        below = cond.divide_by
        divisor = Divisor(
            metric=below.metric,
            labels=labels_of(cond.labels if below.labels is None else below.labels),
            aggregate=below.aggregate or cond.aggregate,
        )
    return Condition(
        metric=cond.metric,
        labels=labels_of(cond.labels),
        aggregate=cond.aggregate,
        window=cond.window,
        operator=cond.operator,
        threshold=cond.threshold,
        duration=cond.duration,
        divide_by=divisor,
    )


def rule_from_config(config: RuleConfig) -> Rule:
    """The evaluable rule of a validated [[rules]] entry."""
    annotations = dict(config.annotations)
    if config.summary:
        annotations.setdefault("summary", config.summary)
    if config.description:
        annotations.setdefault("description", config.description)
    return Rule(
        id=config.id,
        name=config.name,
        condition=condition_from_config(config.condition),
        severity=config.severity,
        channels=tuple(config.channels),
        annotations=labels_of(annotations),
        labels=labels_of(config.labels),
        keep_firing_for=config.keep_firing_for,
        enabled=config.enabled,
    )


def _seconds(value: Any) -> Any:
    # The seed writes durations as numbers of seconds; configuration uses "10s" strings.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value}s"
    return value


def _channel(value: Any) -> Any:
    # The seed gives channels as {type: "slack", config: {}}; here a channel is a name.
    if isinstance(value, Mapping):
        return value.get("name") or value.get("type")
    return value


def rule_from_spec(spec: Mapping[str, Any]) -> Rule:
    """Validate a rule given as a mapping (the seed's `addRule` shape or the TOML shape).

    Accepts `duration`, `window` and `keep_firing_for` as numbers of seconds or duration strings,
    and channels as names or `{"type": name, ...}` objects.

    Raises:
        InvalidRule: the mapping is not a valid rule (every problem listed).
    """
    data = dict(spec)
    rule_id = str(data.get("id", "?"))
    if isinstance(data.get("condition"), Mapping):
        condition = dict(data["condition"])
        for key in ("duration", "window"):
            if key in condition:
                condition[key] = _seconds(condition[key])
        data["condition"] = condition
    if "keep_firing_for" in data:
        data["keep_firing_for"] = _seconds(data["keep_firing_for"])
    if isinstance(data.get("channels"), list | tuple):
        data["channels"] = tuple(_channel(c) for c in data["channels"])
    try:
        config = RuleConfig.model_validate(data)
    except ValidationError as exc:
        errors = [
            f"{'.'.join(str(p) for p in err['loc']) or '(rule)'}: {err['msg']}"
            for err in exc.errors()
        ]
        raise InvalidRule(rule_id, errors) from None
    return rule_from_config(config)

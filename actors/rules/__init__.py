"""Alert rules: a pure evaluator (`evaluate`) and the actor that runs it (`actor`).

Public surface:
- `RulesActor` (the `alerting` object: `add_rule`, `remove_rule`, `alerts`, `on_sample`, `run`);
- `Rule`, `Condition`, `Instance`, `Phase`, `step`, `render`, `fingerprint` (pure evaluation);
- `AlertStateStore`, `MemoryAlertStateStore`, `SqliteAlertStateStore` (persisted alert state);
- `RuleConfig`, `ConditionConfig` ([[rules]] configuration);
- `RulesError`, `InvalidRule`, `RuleNotFound`, `DuplicateLabelset`.
"""

from __future__ import annotations

from actors.rules.actor import (
    ALERTS_FIRING,
    RULE_EVALUATION_FAILURES,
    AlertSink,
    AlertView,
    RulesActor,
)
from actors.rules.config import ConditionConfig, RuleConfig
from actors.rules.evaluate import (
    Condition,
    Instance,
    Phase,
    Rule,
    StepResult,
    compare,
    fingerprint,
    render,
    step,
)
from actors.rules.exceptions import DuplicateLabelset, InvalidRule, RuleNotFound, RulesError
from actors.rules.persist import AlertStateStore, MemoryAlertStateStore, SqliteAlertStateStore
from actors.rules.spec import rule_from_config, rule_from_spec

__all__ = [
    "ALERTS_FIRING",
    "RULE_EVALUATION_FAILURES",
    "AlertSink",
    "AlertStateStore",
    "AlertView",
    "Condition",
    "ConditionConfig",
    "DuplicateLabelset",
    "Instance",
    "InvalidRule",
    "MemoryAlertStateStore",
    "Phase",
    "Rule",
    "RuleConfig",
    "RuleNotFound",
    "RulesActor",
    "RulesError",
    "SqliteAlertStateStore",
    "StepResult",
    "compare",
    "fingerprint",
    "render",
    "rule_from_config",
    "rule_from_spec",
    "step",
]

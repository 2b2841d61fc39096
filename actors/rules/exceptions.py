"""Errors of the rules package.

RulesError
├── InvalidRule     a rule given to `add_rule` (or built from config) cannot be used
└── RuleNotFound    `remove_rule` of an id that is not loaded
"""

from __future__ import annotations

__all__ = ["InvalidRule", "RuleNotFound", "RulesError"]


class RulesError(Exception):
    """Base of every rules error; `str()` is a message fit for users."""


class InvalidRule(RulesError):
    """A rule definition is invalid; `errors` lists each problem as `key.path: message`."""

    def __init__(self, rule_id: str, errors: list[str]) -> None:
        self.rule_id = rule_id
        self.errors = errors
        super().__init__(f"invalid rule {rule_id!r}: " + "; ".join(errors))


class RuleNotFound(RulesError):
    """No loaded rule has this id."""

    def __init__(self, rule_id: str) -> None:
        self.rule_id = rule_id
        super().__init__(f"no rule with id {rule_id!r}")

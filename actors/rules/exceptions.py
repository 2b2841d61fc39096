"""Errors of the rules package.

RulesError
├── InvalidRule         a rule given to `add_rule` (or built from config) cannot be used
├── RuleNotFound        `remove_rule` of an id that is not loaded
└── DuplicateLabelset   an evaluation gave two series the same alert labels (the rule's
                        evaluation fails, as in Prometheus)
"""

from __future__ import annotations

__all__ = ["DuplicateLabelset", "InvalidRule", "RuleNotFound", "RulesError"]


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


class DuplicateLabelset(RulesError):
    """Two series of one evaluation of a rule have the same labels once the alert's are applied.

    Prometheus fails such an evaluation with the same words; the rule's alerts keep the state
    they had. `labels` are the alert labels the series share.
    """

    def __init__(self, rule_id: str, labels: tuple[tuple[str, str], ...]) -> None:
        self.rule_id = rule_id
        self.labels = labels
        shown = ", ".join(f'{name}="{value}"' for name, value in labels)
        super().__init__(
            f"rule {rule_id!r}: vector contains metrics with the same labelset after applying"
            f" alert labels ({{{shown}}})"
        )

"""Inhibition, Alertmanager's: a firing alert matching `source` mutes alerts matching `target`
that have the same values for every `equal` label (a missing label counts as empty). When the
muted alert matches `source` as well, source alerts that also match `target` do not count: two
alerts that each match both sides do not mute each other (and an alert never mutes itself).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from actors.routing.matchers import Matcher, matches_all, parse_matcher_lists

__all__ = ["InhibitRule", "inhibited", "parse_inhibit_rule"]


@dataclass(frozen=True, slots=True)
class InhibitRule:
    """One [[inhibit]] entry, parsed."""

    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]


def parse_inhibit_rule(
    source: Iterable[str], target: Iterable[str], equal: Iterable[str]
) -> InhibitRule:
    """Build an inhibit rule from matcher strings.

    Raises:
        InvalidMatcher: a matcher is invalid.
    """
    return InhibitRule(parse_matcher_lists(source), parse_matcher_lists(target), tuple(equal))


def inhibited(
    rules: Iterable[InhibitRule],
    labels: Mapping[str, str],
    fingerprint: str,
    firing: Iterable[tuple[str, Mapping[str, str]]],
) -> bool:
    """Whether an alert (`labels`, `fingerprint`) is muted by any firing `(fingerprint, labels)`."""
    candidates = [r for r in rules if matches_all(r.target, labels)]
    if not candidates:
        return False
    firing_list = list(firing)
    for rule in candidates:
        two_sided = matches_all(rule.source, labels)
        for fp, src in firing_list:
            if fp == fingerprint or not matches_all(rule.source, src):
                continue
            if not all(src.get(name, "") == labels.get(name, "") for name in rule.equal):
                continue
            if two_sided and matches_all(rule.target, src):
                continue  # Alertmanager's excludeTwoSidedMatch
            return True
    return False

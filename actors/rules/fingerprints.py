"""The fingerprints of one rule's alerts per series, each computed once.

Pure memoisation: `SeriesFingerprints(rule)[series]` is exactly
`fingerprint(alert_labels(rule, series))` (a hash of a sorted label set, the identity of an
alert instance, persisted: it cannot change). The rules actor keeps one per installed rule, so
a series' fingerprint is computed once per rule, not again for every sample and every round
(an unfiltered rule asks for the fingerprints of every changed series at every sample: the
scope of its incremental step, `evaluate.step`).

It cannot go stale: the fingerprint depends only on the rule (fixed for the object's life; a
replaced rule gets a new object) and the series' labels (the key), so a series whose labels
change is another key, and a series that stops reporting only leaves an entry nobody asks for.
Those are dropped by `retain`, which the actor calls after a full evaluation of the rule when
the entries outnumber the series that have a value (`oversized`), so the memory is bounded by
about twice the series the rule reads, not by every series it ever saw.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from actors.models import Labels
from actors.rules.evaluate import Rule, alert_labels, fingerprint

__all__ = ["SeriesFingerprints"]

_SLACK = 256  # entries kept beyond twice the series read, before `oversized` says so


class SeriesFingerprints(dict[Labels, str]):
    """`fingerprint(alert_labels(rule, series))` per series of `rule`, computed once each.

    A dict from series to fingerprint that computes a missing one (`memo[series]`, or
    `memo.of`): a known series costs a dict lookup, without a Python call.
    """

    __slots__ = ("rule",)

    def __init__(self, rule: Rule) -> None:
        super().__init__()
        self.rule = rule

    def __missing__(self, series: Labels) -> str:
        fp = self[series] = fingerprint(alert_labels(self.rule, series))
        return fp

    @property
    def of(self) -> Callable[[Labels], str]:
        """The fingerprint of `rule`'s instance for a series (the `fingerprint_of` of
        `evaluate.step`). Never raises."""
        return self.__getitem__

    def oversized(self, series: int) -> bool:
        """Whether more entries are kept than `series` (the series read) call for."""
        return len(self) > 2 * series + _SLACK

    def retain(self, series: Collection[Labels]) -> None:
        """Forget every entry but those of `series` (the series that still report)."""
        kept = {s: fp for s, fp in self.items() if s in series}
        self.clear()
        self.update(kept)

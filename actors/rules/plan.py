"""Read planning for the rules actor: which store reads a round makes, and whose values they are.

Pure: plain functions over `Rule`s and the values a read returned; no store, no event loop, no
clock. The actor (`actors.rules.actor`) makes the reads these plan and steps each rule over
what they hand it.

- `rules_watching(by_metric, metrics)`: the rules a change of `metrics` concerns.
- `split_changed(...)`: of those, which are evaluated whole (added or replaced, `absent`) and
  which over just the changed series.
- `plan_reads(rules)`: rules grouped by what they read, `(metric, aggregate, window)`: one
  `Read` each. A `shared` read aggregates every series of the metric once, without a label
  filter, and `distribute` / `distribute_changed` hand each series to the rules whose
  exact-match label filter it satisfies (a dict lookup per series through the read's
  `LabelIndex`, not a scan per rule), so many rules over one metric cost about one read. A
  read that is not shared (one rule, or `absent`, which is about every series) is the rule's
  own read, with its label filter.

What a rule gets from a shared read is what its own read would have returned (a filter on a
label a series lacks matches only the empty value, as the store's matchers do).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from actors.models import Labels
from actors.rules.evaluate import Rule, alert_labels, fingerprint

__all__ = [
    "ChangedShare",
    "LabelIndex",
    "Read",
    "distribute",
    "distribute_changed",
    "merges_series",
    "plan_reads",
    "rules_watching",
    "scope",
    "split_changed",
    "watched_metrics",
]

_ALERT_LABELS = frozenset({"alertname", "rule", "severity"})


class LabelIndex:
    """The rules of one read, by their exact-match label filter: a dict lookup per series.

    A filter on a label a series lacks matches only the empty value (as the store's matchers).
    """

    __slots__ = ("_indexes",)

    def __init__(self, rules: Iterable[Rule]) -> None:
        self._indexes: dict[tuple[str, ...], dict[tuple[str, ...], list[Rule]]] = {}
        for rule in rules:
            names = tuple(name for name, _ in rule.condition.labels)
            wanted = tuple(value for _, value in rule.condition.labels)
            self._indexes.setdefault(names, {}).setdefault(wanted, []).append(rule)

    def rules_of(self, series: Labels) -> list[Rule]:
        """The rules whose filter `series` satisfies, in the order they were indexed."""
        if len(self._indexes) == 1 and () in self._indexes:
            return self._indexes[()][()]
        labels = dict(series)
        found: list[Rule] = []
        for names, index in self._indexes.items():
            found.extend(index.get(tuple([labels.get(n, "") for n in names]), ()))
        return found


@dataclass(frozen=True, slots=True)
class Read:
    """One store read of a round: `aggregate` of `metric` over `window`, and the rules it serves.

    `shared` reads have no label filter and are handed out with `distribute`; the others are
    the one rule's own read (its `condition.labels` as matchers).
    """

    metric: str
    aggregate: str
    window: float
    rules: tuple[Rule, ...]
    index: LabelIndex = field(compare=False, repr=False)

    @property
    def shared(self) -> bool:
        """Whether the read serves several rules (never for `absent`: about every series, nor
        for ratios: each rule reads its numerator and denominator itself)."""
        return (
            len(self.rules) > 1
            and self.aggregate != "absent"
            and self.rules[0].condition.divide_by is None
        )


def plan_reads(rules: Iterable[Rule]) -> list[Read]:
    """`rules` grouped by what they read, `(metric, aggregate, window)`, in first-seen order.

    Within a read the rules keep their order. Never raises.
    """
    groups: dict[tuple[str, str, float, bool], list[Rule]] = {}
    for rule in rules:
        cond = rule.condition
        key = (cond.metric, cond.aggregate, cond.window, cond.divide_by is not None)
        groups.setdefault(key, []).append(rule)
    return [
        Read(metric, aggregate, window, tuple(group), LabelIndex(group))
        for (metric, aggregate, window, _), group in groups.items()
    ]


def distribute(read: Read, values: Mapping[Labels, float]) -> dict[str, dict[Labels, float]]:
    """The values of a shared read (every series of the metric) per rule id of `read`.

    Every rule of `read` has an entry, empty when no series satisfies its filter.
    """
    out: dict[str, dict[Labels, float]] = {rule.id: {} for rule in read.rules}
    rules_of = read.index.rules_of
    for series, value in values.items():
        for rule in rules_of(series):
            out[rule.id][series] = value
    return out


@dataclass(frozen=True, slots=True)
class ChangedShare:
    """What a shared read of the changed series gives each rule of the read.

    `values`: per rule id, the changed series with a value; `series`: per rule id, every
    changed series its filter selects, with or without a value (the scope of its step);
    `whole`: the rules to read whole instead, because their alert labels may merge series
    (`merges_series`) and one of their series changed.
    """

    values: dict[str, dict[Labels, float]]
    series: dict[str, list[Labels]]
    whole: list[Rule]


def distribute_changed(read: Read, values: Mapping[Labels, float | None]) -> ChangedShare:
    """Hand a read of the changed series (None: the series has no value now) to `read`'s rules.

    Not for `absent` (about every series): `split_changed` evaluates those whole.
    """
    buckets: dict[str, dict[Labels, float]] = {rule.id: {} for rule in read.rules}
    series_of: dict[str, list[Labels]] = {rule.id: [] for rule in read.rules}
    rules_of = read.index.rules_of
    for series, value in values.items():
        for rule in rules_of(series):
            series_of[rule.id].append(series)
            if value is not None:
                buckets[rule.id][series] = value
    names = {name for name, _ in next(iter(values))} if values else set()
    whole = [r for r in read.rules if series_of[r.id] and merges_series(r, names)]
    return ChangedShare(buckets, series_of, whole)


def rules_watching(by_metric: Mapping[str, AbstractSet[str]], metrics: Iterable[str]) -> set[str]:
    """The ids of the rules watching any of `metrics` (`by_metric`: rule ids per metric)."""
    ids: set[str] = set()
    for metric in metrics:
        ids.update(by_metric.get(metric, ()))
    return ids


def split_changed(
    rules: Mapping[str, Rule],
    by_metric: Mapping[str, AbstractSet[str]],
    metrics: Iterable[str],
    whole: Iterable[str],
) -> tuple[list[str], list[str]]:
    """`(evaluated whole, evaluated over the changed series)`: rule ids, each list sorted.

    `whole` (added or replaced rules), the `absent` rules and the ratio rules (`divide_by`: a
    change of either metric changes the ratio) watching `metrics` are evaluated whole; the
    other rules watching `metrics` over just their changed series. Ids not in `rules` stay
    where they are (the actor skips them).
    """
    entire = set(whole)
    scoped = rules_watching(by_metric, metrics) - entire
    for rule_id in list(scoped):
        rule = rules.get(rule_id)
        if rule is not None and (
            rule.condition.aggregate == "absent" or rule.condition.divide_by is not None
        ):
            scoped.discard(rule_id)
            entire.add(rule_id)
    return sorted(entire), sorted(scoped)


def watched_metrics(rule: Rule) -> tuple[str, ...]:
    """The metrics whose samples change `rule`'s values: its metric, and its denominator's."""
    cond = rule.condition
    if cond.divide_by is None or cond.divide_by.metric == cond.metric:
        return (cond.metric,)
    return (cond.metric, cond.divide_by.metric)


def merges_series(rule: Rule, labelnames: AbstractSet[str]) -> bool:
    """Whether two series of a metric with `labelnames` may be the same alert of `rule`.

    An alert's labels are the series' with the rule's `labels`, alertname, rule and severity set
    over them (`alert_labels`): a series label of one of those names is overwritten, so series
    that differ only there share one instance, and a change of one of them says nothing about
    the instance without the others. Such a rule is evaluated over every series.
    """
    return not labelnames.isdisjoint(_ALERT_LABELS) or any(
        name in labelnames for name, _ in rule.labels
    )


def scope(rule: Rule, series: Iterable[Labels]) -> frozenset[str]:
    """The fingerprints of `rule`'s instances for `series`."""
    return frozenset(fingerprint(alert_labels(rule, labels)) for labels in series)

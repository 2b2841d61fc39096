"""Read planning for the rules actor: which store reads a round makes, and whose values they are.

Pure: plain functions over `Rule`s and the values a read returned; no store, no event loop, no
clock. The actor (`actors.rules.actor`) makes the reads these plan and steps each rule over
what they hand it.

- `selectors(rule)`: the series whose samples change a rule (its metric and filter, and its
  denominator's), filed by the actor in an `index.SelectorIndex` when the rules change.
- `dispatch(...)`: the rules a round's changed series concern (through that index, so a
  sample costs the rules whose filter selects it), which of them are evaluated whole (added
  or replaced, `absent`, ratios, merging alert labels) and which over their changed series;
  `changed_reads` / `share_changed`: one read of the changed series per `(metric, aggregate,
  window)` of those, handed to each rule.
- `plan_reads(rules)`: rules grouped by what they read, `(metric, aggregate, window)`: one
  `Read` each (a full round's reads; the actor keeps the plan until the rules change). A
  `shared` read aggregates every series of the metric once, without a label filter, and
  `distribute` hands each series to the rules whose exact-match label filter it satisfies (a
  dict lookup per series through the read's `LabelIndex`, not a scan per rule), so many rules
  over one metric cost about one read. A read that is not shared (one rule, or `absent`,
  which is about every series) is the rule's own read, with its label filter.

What a rule gets from a shared read is what its own read would have returned (a filter on a
label a series lacks matches only the empty value, as the store's matchers do).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from actors.models import Labels
from actors.routing.matchers import Matcher
from actors.rules.evaluate import Rule, alert_labels, fingerprint
from actors.rules.index import SelectorIndex

__all__ = [
    "ChangedRead",
    "Dispatch",
    "LabelIndex",
    "Read",
    "changed_reads",
    "dispatch",
    "distribute",
    "merges_series",
    "plan_reads",
    "scope",
    "selectors",
    "share_changed",
]

_ALERT_LABELS = frozenset({"alertname", "rule", "severity"})


class LabelIndex:
    """The rules of one read, by their exact-match label filter: a dict lookup per series.

    A filter on a label a series lacks matches only the empty value (as the store's matchers).
    `unfiltered`: the rules without a filter (every series satisfies them), in order.
    """

    __slots__ = ("_filtered", "_indexes", "unfiltered")

    def __init__(self, rules: Iterable[Rule]) -> None:
        self._indexes: dict[tuple[str, ...], dict[tuple[str, ...], list[Rule]]] = {}
        for rule in rules:
            names = tuple(name for name, _ in rule.condition.labels)
            wanted = tuple(value for _, value in rule.condition.labels)
            self._indexes.setdefault(names, {}).setdefault(wanted, []).append(rule)
        self.unfiltered: tuple[Rule, ...] = tuple(self._indexes.get((), {}).get((), ()))
        self._filtered = {names: index for names, index in self._indexes.items() if names}

    def filtered_of(self, series: Labels) -> list[Rule]:
        """The rules with a filter that `series` satisfies, in the order they were indexed."""
        if not self._filtered:
            return []
        labels = dict(series)
        found: list[Rule] = []
        for names, index in self._filtered.items():
            found.extend(index.get(tuple([labels.get(n, "") for n in names]), ()))
        return found

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


def distribute(read: Read, values: Mapping[Labels, float]) -> dict[str, Mapping[Labels, float]]:
    """The values of a shared read (every series of the metric) per rule id of `read`.

    Every rule of `read` has an entry, empty when no series satisfies its filter. The rules
    without a filter get `values` itself (not a copy per rule: the caller must not change it).
    """
    index = read.index
    out: dict[str, Mapping[Labels, float]] = {}
    mine: dict[str, dict[Labels, float]] = {}
    for rule in read.rules:
        if rule.condition.labels:
            out[rule.id] = mine[rule.id] = {}
        else:
            out[rule.id] = values
    if mine:
        filtered_of = index.filtered_of
        for series, value in values.items():
            for rule in filtered_of(series):
                mine[rule.id][series] = value
    return out


def selectors(rule: Rule) -> list[tuple[str, tuple[Matcher, ...]]]:
    """`(metric, matchers)` per read of `rule`: the series whose samples change its values.

    Its condition's metric with the condition's label filter, and with `divide_by` the
    denominator's metric with the denominator's filter (on the same metric: two selectors on
    it, either selecting a series is enough).
    """
    cond = rule.condition
    out = [(cond.metric, tuple(Matcher(name, "=", value) for name, value in cond.labels))]
    if cond.divide_by is not None:
        below = cond.divide_by
        out.append((below.metric, tuple(Matcher(n, "=", v) for n, v in below.labels)))
    return out


@dataclass(frozen=True, slots=True)
class Dispatch:
    """The rules a sample-driven round evaluates (see `dispatch`).

    `whole`: rule ids evaluated over every series, sorted; `scoped`: per rule id (sorted), the
    changed series of its metric that its filter selects (label values, as listeners give them).
    """

    whole: list[str]
    scoped: dict[str, list[tuple[str, ...]]]


def dispatch(
    rules: Mapping[str, Rule],
    index: SelectorIndex,
    changed: Mapping[str, Mapping[tuple[str, ...], Labels]],
    whole: Iterable[str] = (),
) -> Dispatch:
    """Which rules the changed series concern, and over what (`index`: `selectors` by rule id).

    `changed`: per metric, the changed series' label values and their labels. A rule is
    evaluated when one of its selectors selects a changed series (no other rule can change: a
    rule reads only what its selectors select). `whole` (added or replaced rules), and the
    selected `absent` rules (about every series), ratio rules (a change of either metric
    changes the ratio) and rules whose alert labels may merge series (`merges_series`) are
    evaluated whole; the other selected rules over the series selected. Ids not in `rules`
    stay where they are (the actor skips them).
    """
    entire = set(whole)
    # the rules (ids) over each changed series: one sample concerns every unfiltered rule of
    # its metric, so the work per rule is kept to a few lookups here
    chosen: list[tuple[tuple[str, ...], list[str]]] = []
    for metric, series in changed.items():
        for values, labels in series.items():
            selected = index.select(metric, labels)
            if not selected:
                continue
            names = {name for name, _ in labels}
            if not names.isdisjoint(_ALERT_LABELS):  # `merges_series` for every rule
                entire.update(rule_id for rule_id in selected if rule_id in rules)
                chosen.append((values, [rule_id for rule_id in selected if rule_id not in rules]))
                continue
            over: list[str] = []
            for rule_id in selected:
                if rule_id in entire:
                    continue
                rule = rules.get(rule_id)
                if rule is not None:
                    cond = rule.condition
                    if (
                        cond.aggregate == "absent"
                        or cond.divide_by is not None
                        or (rule.labels and merges_series(rule, names))
                    ):
                        entire.add(rule_id)
                        continue
                over.append(rule_id)
            chosen.append((values, over))
    scoped: dict[str, list[tuple[str, ...]]] = {}
    if len(chosen) == 1:
        # one changed series (a check result): every rule gets the same list (not changed)
        values, over = chosen[0]
        one = [values]
        scoped = dict.fromkeys(sorted(rule_id for rule_id in over if rule_id not in entire), one)
        return Dispatch(sorted(entire), scoped)
    for values, over in chosen:
        for rule_id in over:
            if rule_id not in entire:
                scoped.setdefault(rule_id, []).append(values)
    return Dispatch(sorted(entire), {rule_id: scoped[rule_id] for rule_id in sorted(scoped)})


@dataclass(frozen=True, slots=True)
class ChangedRead:
    """One store read of changed series, shared by the rules reading the same
    `(metric, aggregate, window)`: `series` is every series any of them wants (label values)."""

    metric: str
    aggregate: str
    window: float
    rules: tuple[Rule, ...]
    series: frozenset[tuple[str, ...]]


def changed_reads(
    rules: Iterable[Rule], scoped: Mapping[str, Sequence[tuple[str, ...]]]
) -> list[ChangedRead]:
    """The reads of a round's scoped rules (`Dispatch.scoped`: each rule's series), grouped by
    what they read, in first-seen order. Not for `absent` or ratio rules (evaluated whole)."""
    groups: dict[tuple[str, str, float], list[Rule]] = {}
    for rule in rules:
        cond = rule.condition
        groups.setdefault((cond.metric, cond.aggregate, cond.window), []).append(rule)
    out: list[ChangedRead] = []
    for (metric, aggregate, window), group in groups.items():
        wanted: set[tuple[str, ...]] = set()
        last: Sequence[tuple[str, ...]] | None = None
        for rule in group:
            mine = scoped[rule.id]
            if mine is not last:  # rules given the same list (`dispatch`): added once
                wanted.update(mine)
                last = mine
        out.append(ChangedRead(metric, aggregate, window, tuple(group), frozenset(wanted)))
    return out


def share_changed(
    read: ChangedRead,
    found: Mapping[Labels, float | None],
    scoped: Mapping[str, Sequence[tuple[str, ...]]],
    labels_of: Mapping[tuple[str, ...], Labels],
) -> tuple[dict[str, Mapping[Labels, float]], dict[str, Sequence[Labels]]]:
    """Hand `found` (the store's read of `read.series`; None: no value now) to `read`'s rules.

    `(values, series)` per rule id: its series (`scoped`) with a value, and every one of them
    the store knows, with or without a value (the scope of its step). `labels_of`: the labels
    of each changed series' label values.
    """
    values: dict[str, Mapping[Labels, float]] = {}
    series_of: dict[str, Sequence[Labels]] = {}
    # Rules given the same changed series (every unfiltered rule) share one hand-out: built
    # once, not per rule (the caller must not change them).
    shared: dict[tuple[tuple[str, ...], ...], tuple[dict[Labels, float], list[Labels]]] = {}
    for rule in read.rules:
        wanted = tuple(scoped[rule.id])
        handed = shared.get(wanted)
        if handed is None:
            mine = [labels for v in wanted if (labels := labels_of[v]) in found]
            handed = shared[wanted] = (
                {labels: value for labels in mine if (value := found[labels]) is not None},
                mine,
            )
        values[rule.id], series_of[rule.id] = handed
    return values, series_of


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


def scope(
    rule: Rule, series: Iterable[Labels], fingerprint_of: Callable[[Labels], str] | None = None
) -> frozenset[str]:
    """The fingerprints of `rule`'s instances for `series` (`fingerprint_of` as in
    `evaluate.step`: the actor passes its memo)."""
    if fingerprint_of is None:
        return frozenset(fingerprint(alert_labels(rule, labels)) for labels in series)
    return frozenset(map(fingerprint_of, series))

"""Which rules a sample concerns: per metric, the rules whose label filter selects a series.

Pure: a `SelectorIndex` is built and changed as rules are added and removed (configuration,
`add_rule` / `remove_rule`), never per sample, and answers `select(metric, series)` with the
keys (rule ids) whose selector on `metric` the series satisfies, so a sample costs the rules
it can change, not every rule of its metric.

A key has one selector per metric it watches (`add` again for another; a ratio over one metric
with two filters has two on it: either selecting is enough). A selector is a list of matchers
(`actors.routing.matchers.Matcher`, a missing label being the empty value, as the store's
matchers and Prometheus'). How a selector is found:

- no matchers: the key is in the metric's `every` set, selected by each sample of the metric;
- at least one equality (`=`) matcher: the fast path. The selector is filed under the names
  and values of its equality matchers, and a sample looks up, for each set of names filed on
  the metric, the series' values of those names: one dict lookup per set of names, whatever
  the number of rules. Its other matchers (`!=`, `=~`, `!~`) are checked on what the lookup
  found;
- only negative or regex matchers: they cannot be looked up by value, so the selector is in
  the metric's fallback list, which every sample of the metric tests matcher by matcher.

`select` is exactly `{key | some selector of key on metric has every matcher matching series}`
(the property tests pin it against that definition).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from actors.models import Labels
from actors.routing.matchers import Matcher

__all__ = ["SelectorIndex"]

_Entry = tuple[str, tuple[Matcher, ...]]  # a key and the matchers left to check after a lookup


@dataclass(slots=True)
class _MetricIndex:
    """The selectors on one metric (see the module docstring for the three ways)."""

    every: set[str] = field(default_factory=set)  # keys with a selector without matchers
    exact: dict[tuple[str, ...], dict[tuple[str, ...], list[_Entry]]] = field(default_factory=dict)
    fallback: list[_Entry] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.every or self.exact or self.fallback)


class SelectorIndex:
    """Keys by the selectors they watch, per metric; `select` a sample's keys.

    Changed by `add` / `remove` (configuration changes); `select` and `keys` never change it.
    """

    __slots__ = ("_filed", "_metrics")

    def __init__(self) -> None:
        self._metrics: dict[str, _MetricIndex] = {}
        # where each key's selectors are filed, for `remove`
        self._filed: dict[str, list[tuple[str, tuple[str, ...] | None, tuple[str, ...]]]] = {}

    def add(self, key: str, metric: str, matchers: Iterable[Matcher] = ()) -> None:
        """File a selector of `key` on `metric`: every matcher must hold (none: every series)."""
        index = self._metrics.setdefault(metric, _MetricIndex())
        filed = self._filed.setdefault(key, [])
        wanted = tuple(matchers)
        exact: dict[str, str] = {}
        rest: list[Matcher] = []
        for m in wanted:
            if m.op == "=" and m.name not in exact:
                exact[m.name] = m.value
            else:
                rest.append(m)  # a second `=` on a name is checked (`a="x", a="y"`: nothing)
        if not wanted:
            index.every.add(key)
            filed.append((metric, None, ()))
            return
        if not exact:
            index.fallback.append((key, wanted))
            filed.append((metric, None, ("fallback",)))
            return
        names = tuple(sorted(exact))
        values = tuple(exact[n] for n in names)
        index.exact.setdefault(names, {}).setdefault(values, []).append((key, tuple(rest)))
        filed.append((metric, names, values))

    def remove(self, key: str) -> None:
        """Forget every selector of `key` (nothing happens for an unknown key)."""
        for metric, names, values in set(self._filed.pop(key, ())):
            index = self._metrics[metric]
            if names is not None:
                by_value = index.exact[names]
                entries = [e for e in by_value[values] if e[0] != key]
                if entries:
                    by_value[values] = entries
                else:
                    del by_value[values]
                    if not by_value:
                        del index.exact[names]
            elif values:
                index.fallback = [e for e in index.fallback if e[0] != key]
            else:
                index.every.discard(key)
            if index.empty():
                del self._metrics[metric]

    def watches(self, metric: str) -> bool:
        """Whether some key has a selector on `metric`."""
        return metric in self._metrics

    def keys(self, metric: str) -> set[str]:
        """Every key with a selector on `metric`, whatever series it selects."""
        index = self._metrics.get(metric)
        if index is None:
            return set()
        out = set(index.every)
        for by_value in index.exact.values():
            for entries in by_value.values():
                out.update(key for key, _ in entries)
        out.update(key for key, _ in index.fallback)
        return out

    def select(self, metric: str, series: Labels) -> set[str]:
        """The keys with a selector on `metric` that `series` satisfies."""
        index = self._metrics.get(metric)
        if index is None:
            return set()
        found = set(index.every)
        if not index.exact and not index.fallback:
            return found
        labels = dict(series)
        for names, by_value in index.exact.items():
            entries = by_value.get(tuple([labels.get(n, "") for n in names]))
            if entries is not None:
                found.update(key for key, rest in entries if _all(rest, labels))
        found.update(key for key, rest in index.fallback if _all(rest, labels))
        return found


def _all(matchers: Sequence[Matcher], labels: dict[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)

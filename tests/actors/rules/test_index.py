"""The selector index (actors/rules/index.py): a sample selects exactly the rules whose filter
it satisfies, kept as rules are added and removed."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.models import Labels
from actors.routing.matchers import Matcher
from actors.rules.index import SelectorIndex

C17: Labels = (("check", "c17"),)


def test_equality_selects_by_value_and_no_filter_selects_everything() -> None:
    index = SelectorIndex()
    index.add("c17", "up", [Matcher("check", "=", "c17")])
    index.add("c18", "up", [Matcher("check", "=", "c18")])
    index.add("all", "up")
    index.add("elsewhere", "down", [Matcher("check", "=", "c17")])
    assert index.select("up", C17) == {"c17", "all"}
    assert index.select("up", (("check", "c19"),)) == {"all"}
    assert index.select("unknown", C17) == set()
    assert index.keys("up") == {"c17", "c18", "all"}
    assert index.watches("down")
    assert not index.watches("unknown")


def test_a_missing_label_is_the_empty_value() -> None:
    index = SelectorIndex()
    index.add("no-zone", "up", [Matcher("zone", "=", "")])
    index.add("zone-a", "up", [Matcher("zone", "=", "a")])
    index.add("not-empty", "up", [Matcher("zone", "!=", "")])
    assert index.select("up", C17) == {"no-zone"}
    assert index.select("up", (*C17, ("zone", "a"))) == {"zone-a", "not-empty"}


def test_regex_and_negative_matchers_are_checked_after_the_lookup_or_on_every_sample() -> None:
    index = SelectorIndex()
    index.add("eu-c17", "up", [Matcher("check", "=", "c17"), Matcher("zone", "=~", "eu-.*")])
    index.add("not-c17", "up", [Matcher("check", "!=", "c17")])
    index.add("c1x", "up", [Matcher("check", "=~", "c1.")])
    index.add("no-c2x", "up", [Matcher("check", "!~", "c2.")])
    assert index.select("up", (*C17, ("zone", "eu-west"))) == {"eu-c17", "c1x", "no-c2x"}
    assert index.select("up", (*C17, ("zone", "us"))) == {"c1x", "no-c2x"}
    assert index.select("up", (("check", "c23"),)) == {"not-c17"}


def test_two_values_for_one_name_select_nothing() -> None:
    index = SelectorIndex()
    index.add("never", "up", [Matcher("check", "=", "c17"), Matcher("check", "=", "c18")])
    assert index.select("up", C17) == set()
    assert index.keys("up") == {"never"}


def test_a_key_with_two_selectors_on_a_metric_is_selected_by_either() -> None:
    index = SelectorIndex()
    index.add("ratio", "up", [Matcher("check", "=", "c17")])
    index.add("ratio", "up", [Matcher("check", "=", "c18")])
    assert index.select("up", C17) == index.select("up", (("check", "c18"),)) == {"ratio"}


def test_removing_a_key_forgets_every_selector_and_empty_metrics() -> None:
    index = SelectorIndex()
    index.add("a", "up", [Matcher("check", "=", "c17")])
    index.add("a", "down")
    index.add("a", "up", [Matcher("check", "=~", "c.*")])
    index.add("b", "up", [Matcher("check", "=", "c17")])
    index.remove("a")
    index.remove("unknown")
    assert index.select("up", C17) == {"b"}
    assert not index.watches("down")
    index.remove("b")
    assert not index.watches("up")


# -- the index selects what testing every selector would ----------------------------------------

_NAMES = ["check", "zone", "job"]
_VALUES = ["", "c1", "c17", "eu"]
_PATTERNS = ["", "c1.*", "c17|eu", ".+", "e."]
_matcher = st.one_of(
    st.builds(
        Matcher, st.sampled_from(_NAMES), st.sampled_from(["=", "!="]), st.sampled_from(_VALUES)
    ),
    st.builds(
        Matcher, st.sampled_from(_NAMES), st.sampled_from(["=~", "!~"]), st.sampled_from(_PATTERNS)
    ),
)
_selector = st.tuples(
    st.sampled_from(["a", "b", "c", "d", "e", "f"]),
    st.sampled_from(["up", "down"]),
    st.lists(_matcher, max_size=3),
)
_series = st.lists(
    st.tuples(st.sampled_from(_NAMES), st.sampled_from(_VALUES)), unique_by=lambda p: p[0]
).map(lambda pairs: tuple(sorted(pairs)))


@settings(max_examples=300, deadline=None)
@given(
    selectors=st.lists(_selector, max_size=12),
    removed=st.sets(st.sampled_from(["a", "b", "c", "d", "e", "f"])),
    samples=st.lists(st.tuples(st.sampled_from(["up", "down", "other"]), _series), max_size=10),
)
def test_select_is_every_key_with_a_satisfied_selector(
    selectors: list[tuple[str, str, list[Matcher]]],
    removed: set[str],
    samples: list[tuple[str, Labels]],
) -> None:
    index = SelectorIndex()
    for key, metric, matchers in selectors:
        index.add(key, metric, matchers)
    for key in removed:
        index.remove(key)
    kept = [(k, m, ms) for k, m, ms in selectors if k not in removed]
    for metric, series in samples:
        labels = dict(series)
        expected = {
            key
            for key, on, matchers in kept
            if on == metric and all(m.matches(labels) for m in matchers)
        }
        assert index.select(metric, series) == expected
        assert index.keys(metric) == {key for key, on, _ in kept if on == metric}

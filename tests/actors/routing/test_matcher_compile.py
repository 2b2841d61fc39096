"""One compile path for matchers: what the config models accept is what routing builds.

The config models (`MatcherText`, read by check-config) and the routing objects built at run time
(routes, inhibit rules, silences, maintenance windows) must accept and reject the same matchers,
and a leading inline flag group such as `(?i)` must work as it does in Alertmanager.
"""

from __future__ import annotations

from collections.abc import Callable

import pydantic
import pytest

from actors.routing.config import (
    InhibitConfig,
    MatcherText,
    RouteConfig,
    SilenceConfig,
    SingleMatcherText,
)
from actors.routing.exceptions import InvalidMatcher
from actors.routing.inhibit import parse_inhibit_rule
from actors.routing.maintenance import parse_window
from actors.routing.matchers import compile_matcher_regex, parse_matcher, parse_matcher_list
from actors.routing.routes import parse_route
from actors.routing.silences import make_silence

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("(?i)crit.*", "CRITICAL", True),
        ("(?i)crit.*", "critical", True),
        ("(?i)crit.*", "xcrit", False),  # still anchored
        ("(?i)a|b", "B", True),  # the flag covers every alternative
        ("(?i)a|b", "ab", False),
        ("(?s)a.b", "a\nb", True),
        ("a.b", "a\nb", False),
        ("(?is)A.B", "a\nb", True),
        ("(?i)(?s)A.B", "a\nb", True),
        ("(?i)(?-i)a", "A", False),
        ("(?i-s)A.B", "a\nb", False),
        ("(?i)", "", True),
        ("data|api", "api", True),  # alternation anchored as a whole
        ("data|api", "apix", False),
    ],
)
def test_leading_inline_flags_match_as_in_alertmanager(
    pattern: str, value: str, expected: bool
) -> None:
    assert (compile_matcher_regex(pattern).search(value) is not None) is expected
    assert parse_matcher(f'level=~"{pattern}"').matches({"level": value}) is expected
    assert parse_matcher(f'level!~"{pattern}"').matches({"level": value}) is not expected


MATCHERS = [
    'level=~"(?i)crit.*"',
    'level!~"(?i)crit.*"',
    'level=~"(?i)(?s)crit.*"',
    'level=~"(?i-s)crit"',
    "level=~crit|warn",
    "level=critical",
    'level=~"("',
    'level=~"x(?i)y"',  # RE2 takes a flag group anywhere: accepted by both
    'level=~"(?U)x"',  # RE2's ungreedy flag: accepted by both
    'level=~"(?x)a b"',  # Python's verbose flag is not RE2's: rejected by both
    'level=~"(?=a)"',  # no look-arounds in RE2: rejected by both
    '{level="a", check=~"b"}',  # a list is one config string, not one matcher
    "level=" + "a" * 5000,  # too long: rejected by both
    "level",
    "1x=y",
]


def _accepts(parse: Callable[[str], object], text: str) -> bool:
    try:
        parse(text)
    except (InvalidMatcher, pydantic.ValidationError):
        return False
    return True


@pytest.mark.parametrize("text", MATCHERS)
def test_config_validation_and_runtime_agree(text: str) -> None:
    lists = pydantic.TypeAdapter(MatcherText).validate_python
    single = pydantic.TypeAdapter(SingleMatcherText).validate_python
    assert _accepts(lists, text) is _accepts(parse_matcher_list, text), text
    assert _accepts(single, text) is _accepts(parse_matcher, text), text


def test_a_case_insensitive_regex_builds_every_routing_object() -> None:
    text = 'level=~"(?i)crit.*"'
    route = RouteConfig.model_validate({"matchers": [text], "channels": ["ops"]})
    inhibit = InhibitConfig.model_validate({"source": [text], "target": ["level=warning"]})
    silence = SilenceConfig.model_validate({"matchers": [text], "ends": "2030-01-01T00:00:00Z"})

    built_route = parse_route(route.matchers, route.channels, route.continue_, route.group_by)
    assert built_route.matchers[0].matches({"level": "Critical"})
    rule = parse_inhibit_rule(inhibit.source, inhibit.target, inhibit.equal)
    assert rule.source[0].matches({"level": "CRIT"})
    built = make_silence(
        matchers=silence.matchers,
        starts_at=None,
        ends_at=silence.ends.timestamp(),
        created_by=silence.created_by,
        comment=silence.comment,
        now=NOW,
    )
    assert built.mutes({"level": "CRITICAL"}, NOW)
    window = parse_window((text,), "0 2 * * SUN", 3600.0, "", "UTC")
    assert window.matchers[0].matches({"level": "critical"})


def test_invalid_regex_message_names_the_matcher() -> None:
    with pytest.raises(InvalidMatcher, match="a\\(\\?=b\\)"):
        parse_matcher('level=~"a(?=b)"')
    with pytest.raises(ValueError, match="invalid perl operator"):
        compile_matcher_regex("(?=a)")


def test_a_syntax_error_names_the_matcher_once() -> None:
    with pytest.raises(InvalidMatcher) as caught:
        parse_matcher("severity critical")
    assert str(caught.value).count("severity critical") == 1

"""One compile path for matchers: what the config models accept is what routing builds.

The config models (`MatcherText`, read by check-config) and the routing objects built at run time
(routes, inhibit rules, silences, maintenance windows) must accept and reject the same matchers,
and a leading inline flag group such as `(?i)` must work as it does in Alertmanager.
"""

from __future__ import annotations

import pydantic
import pytest

from actors.routing.config import InhibitConfig, MatcherText, RouteConfig, SilenceConfig
from actors.routing.exceptions import InvalidMatcher
from actors.routing.inhibit import parse_inhibit_rule
from actors.routing.maintenance import parse_window
from actors.routing.matchers import compile_matcher_regex, parse_matcher
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
    assert (compile_matcher_regex(pattern).fullmatch(value) is not None) is expected
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
    'level=~"x(?i)y"',  # a flag group not at the start: rejected by both
    'level=~"(?U)x"',  # RE2's ungreedy flag has no Python equivalent: rejected by both
    'level=~"(?x)a b"',  # Python's verbose flag is not RE2's: rejected by both
    "level",
    "1x=y",
]


@pytest.mark.parametrize("text", MATCHERS)
def test_config_validation_and_runtime_agree(text: str) -> None:
    try:
        parse_matcher(text)
    except InvalidMatcher:
        runtime_ok = False
    else:
        runtime_ok = True
    try:
        pydantic.TypeAdapter(MatcherText).validate_python(text)
    except pydantic.ValidationError:
        config_ok = False
    else:
        config_ok = True
    assert config_ok is runtime_ok, text


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
    with pytest.raises(InvalidMatcher, match="x\\(\\?i\\)y"):
        parse_matcher('level=~"x(?i)y"')
    with pytest.raises(ValueError, match="unsupported inline flag 'U'"):
        compile_matcher_regex("(?U)a")


def test_a_syntax_error_names_the_matcher_once() -> None:
    with pytest.raises(InvalidMatcher) as caught:
        parse_matcher("severity critical")
    assert str(caught.value).count("severity critical") == 1

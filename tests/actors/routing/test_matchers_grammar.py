"""Alertmanager's matcher grammar (pkg/labels/parse.go) and RE2 semantics, table-driven.

The same cases run against the real Alertmanager in test_differential_alertmanager.py; these pin
them without a subprocess.
"""

from __future__ import annotations

import pytest

from actors.routing.exceptions import InvalidMatcher
from actors.routing.matchers import (
    MAX_MATCHER_LENGTH,
    format_matcher,
    parse_matcher,
    parse_matcher_list,
    parse_matcher_lists,
    split_matcher,
    split_matcher_list,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('a="b"', ("a", "=", "b")),
        ("a=b", ("a", "=", "b")),
        ('a!="b"', ("a", "!=", "b")),
        ('a=~"re"', ("a", "=~", "re")),
        ('a!~"re"', ("a", "!~", "re")),
        ('  a  =~  "b c"  ', ("a", "=~", "b c")),
        ('path=~"a\\\\.b"', ("path", "=~", "a\\.b")),  # `\\` is one backslash
        ('path=~"a\\.b"', ("path", "=~", "a\\.b")),  # a spurious escape stays literal
        ('q="say \\"hi\\""', ("q", "=", 'say "hi"')),
        ('n="a\\nb"', ("n", "=", "a\nb")),
        ("a=x\\", ("a", "=", "x\\")),  # a final backslash is literal
        ('a=""', ("a", "=", "")),
        ("a=", ("a", "=", "")),
        ("ns:sub_1=x", ("ns:sub_1", "=", "x")),  # a colon is a label name character
        ("a==b", ("a", "=", "=b")),
        ("a=b c", ("a", "=", "b c")),
        ('a="é日本"', ("a", "=", "é日本")),
    ],
)
def test_split_one_matcher(text: str, expected: tuple[str, str, str]) -> None:
    assert split_matcher(text) == expected
    name, op, value = expected
    assert split_matcher(format_matcher(name, op, value)) == expected  # round trip


@pytest.mark.parametrize(
    "text",
    ['a="b', 'a=b"', 'a="b"c"', 'a="', "1a=b", "a", "=b", "a~b", '"a"=b', "a=b" + "c" * 5000],
)
def test_rejected_matchers(text: str) -> None:
    with pytest.raises(InvalidMatcher):
        parse_matcher(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{a="b",c=~"d"}', ['a="b"', 'c=~"d"']),
        ("a=b,c=d", ["a=b", "c=d"]),
        ('{foo = "bar", dings != "bums", }', ['foo = "bar"', ' dings != "bums"']),
        ('{quote="x, y \\"z, w\\""}', ['quote="x, y \\"z, w\\""']),
        ("{}", []),
        ("", []),
        ('a="b"', ['a="b"']),
    ],
)
def test_split_matcher_list(text: str, expected: list[str]) -> None:
    assert split_matcher_list(text) == expected


def test_lists_parse_every_matcher() -> None:
    matchers = parse_matcher_lists(['{a="b", c=~"d.*"}', "e!=f"])
    assert [str(m) for m in matchers] == ['a="b"', 'c=~"d.*"', 'e!="f"']
    assert parse_matcher_list('{quote="x, y"}')[0].value == "x, y"
    with pytest.raises(InvalidMatcher):
        parse_matcher_list("a=b,,c=d")  # an empty matcher between commas
    assert parse_matcher("a=b,c=d").value == "b,c=d"  # one matcher: the comma is in its value


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("\\d+", "123", True),
        ("\\d+", "١٢٣", False),  # Arabic-Indic digits are not `\d` in RE2
        ("[[:alpha:]]+", "abc", True),
        ("[[:alpha:]]+", "é", False),  # POSIX classes are ASCII
        ("[[:digit:]]", "7", True),
        ("\\pL+", "日本", True),
        ("\\w+", "é", False),
        ("a.c", "a\nc", False),
        ("(?s)a.c", "a\nc", True),
        ("x(?i)y", "xY", True),  # a flag group in the middle
        ("(?U)a+", "aaa", True),
        ("a", "a\n", False),  # `$` is the end of the text, not before a final line feed
        ("a|b", "ab", False),  # the alternation is anchored as a whole
        ("(?i)k", "\u212a", True),  # Unicode case folding: the Kelvin sign
        ("a\\.b", "a.b", True),
        ("a\\.b", "axb", False),
    ],
)
def test_re2_semantics(pattern: str, value: str, expected: bool) -> None:
    assert parse_matcher(format_matcher("l", "=~", pattern)).matches({"l": value}) is expected
    assert parse_matcher(format_matcher("l", "!~", pattern)).matches({"l": value}) is not expected


@pytest.mark.parametrize(
    "pattern", ["(?=a)", "(a)\\1", "\\Z", "a{1001}", "(", "(?x)a", "\\C", "(?<n>a)", "[a]\\C"]
)
def test_regexes_re2_refuses(pattern: str) -> None:
    with pytest.raises(InvalidMatcher, match="invalid regular expression"):
        parse_matcher(format_matcher("l", "=~", pattern))


@pytest.mark.parametrize(
    "pattern", ["(?P<n>a)", "[(?<]", "\\Q(?<\\C\\E", "[[:alpha:](?<]", "\\\\C"]
)
def test_what_go_takes_is_taken(pattern: str) -> None:
    parse_matcher(format_matcher("l", "=~", pattern))


def test_length_is_bounded() -> None:
    parse_matcher("a=" + "b" * (MAX_MATCHER_LENGTH - 2))
    with pytest.raises(InvalidMatcher, match="longer than"):
        parse_matcher("a=" + "b" * (MAX_MATCHER_LENGTH - 1))
    with pytest.raises(InvalidMatcher, match="longer than"):
        parse_matcher_list("{" + "a=b," * MAX_MATCHER_LENGTH + "}")

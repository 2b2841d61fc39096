"""`config_secrets` walks thousands of checks at start-up (the log redactor's secrets, each
check's own): the scalar fields that make up most of a check cost no type test."""

from __future__ import annotations

import builtins
from typing import Any

import pytest

import actors.secrets
from actors.secrets import config_secrets
from supervisor.config import parse_config

CHECK = """
[[checks]]
name = "c{i}"
kind = "http"
url = "http://user:pw{i}@127.0.0.1/u{i}"
interval = "10s"
critical = true
"""


def test_the_scalar_fields_of_a_check_cost_no_type_test(monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse_config("".join(CHECK.format(i=i) for i in range(20)), env={})
    check = config.checks[0]
    scalars = sum(type(value) in (int, float, bool, type(None)) for _, value in check)
    assert scalars >= 10  # what the test is about: most fields are such
    tests = 0

    def counted(item: object, kinds: Any) -> bool:
        nonlocal tests
        tests += 1
        return builtins.isinstance(item, kinds)

    monkeypatch.setattr(actors.secrets, "isinstance", counted, raising=False)
    assert config_secrets(check) == {"pw0"}
    fields = sum(1 for _ in check)
    assert tests < fields
    tests = 0
    assert config_secrets(config) >= {f"pw{i}" for i in range(20)}
    assert tests < 20 * fields + 100

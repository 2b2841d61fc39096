"""The registry of check kinds: what the config union, the factory, the summary and the docs
derive from it."""

from __future__ import annotations

import json
from typing import Any, Literal

import pydantic
import pytest

from actors.checks import (
    KINDS,
    CheckConfig,
    CheckContext,
    CheckError,
    CheckKind,
    KindProbe,
    build_check_actor,
    build_probe,
)
from actors.checks.config import CheckBase
from actors.checks.kinds import check_union, kind_of
from actors.checks.logic import Observation
from actors.checks.tcp import TcpCheckConfig, TcpProbe
from actors.clock import FixedClock
from actors.state import HealthState
from actors.telemetry.store import MetricStore
from supervisor.config import ConfigError, parse_config, summarize
from tests.kinds_docs import DOCS, assert_kinds_documented, fenced_blocks

from .conftest import loaded_when


def _toml(value: Any) -> str:
    """`value` (of a kind's example) written as a TOML value."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {_toml(item)}" for key, item in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def _table(kind: CheckKind[Any], name: str = "c") -> dict[str, Any]:
    return {"name": name, "kind": kind.name, **kind.example}


class _Agents:
    def snapshot(
        self, now: float, *, max_silence: float | None = None, max_error_ratio: float | None = None
    ) -> dict[str, Any]:
        return {}


def _full_context() -> CheckContext:
    """A context lending every collaborator a kind may need."""
    clock = FixedClock()
    return CheckContext(
        clock=clock, store=MetricStore(clock=clock), agents=_Agents(), tree=lambda: None
    )


def test_every_registered_kind_and_key_is_documented() -> None:
    assert_kinds_documented("`[[checks]]`", KINDS)


@pytest.mark.parametrize("kind", KINDS, ids=[kind.name for kind in KINDS])
async def test_each_kind_parses_and_builds_a_probe_that_keeps_its_config(
    kind: CheckKind[Any],
) -> None:
    table = pydantic.TypeAdapter(CheckConfig).validate_python(_table(kind))
    assert type(table) is kind.config
    assert kind_of(table) is kind
    probe = build_probe(table, _full_context())
    assert isinstance(probe, KindProbe)
    assert probe.config is table
    await probe.aclose()


@pytest.mark.parametrize("kind", KINDS, ids=[kind.name for kind in KINDS])
def test_each_kind_is_read_from_toml_and_summarised(kind: CheckKind[Any]) -> None:
    keys = "\n".join(f"{key} = {_toml(value)}" for key, value in kind.example.items())
    source = f'[[checks]]\nname = "c"\nkind = "{kind.name}"\ninterval = "30s"\n{keys}\n'
    config = parse_config(source, file="c.toml", env={})
    [check] = config.checks
    assert kind_of(check) is kind
    assert f"  c: {kind.name} every 30s, timeout 2s\n" in summarize(config, "c.toml")


def test_an_unknown_kind_lists_the_registered_ones() -> None:
    source = '[[checks]]\nname = "c"\nkind = "smtp"\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(source, file="c.toml", env={})
    expected = ", ".join(kind.name for kind in KINDS)
    assert f"unknown kind 'smtp' (expected one of: {expected})" in str(caught.value)


@pytest.mark.parametrize(
    ("kind", "what"),
    [
        ("agents", "the agent registry"),
        ("metric", "the metric store"),
        ("self", "the supervision tree"),
    ],
)
def test_a_kind_missing_a_collaborator_says_which(kind: str, what: str) -> None:
    [record] = [k for k in KINDS if k.name == kind]
    table = pydantic.TypeAdapter(CheckConfig).validate_python(_table(record, "x"))
    with pytest.raises(CheckError) as caught:
        build_probe(table, CheckContext())
    assert str(caught.value) == f"check x ({kind}) needs {what}, which the process did not lend it"


# -- a kind added in one file plus one registry line -------------------------------------------


class EchoCheckConfig(CheckBase):
    """kind = "echo": a test kind."""

    kind: Literal["echo"]
    says: str = "hello"


class EchoProbe(KindProbe[EchoCheckConfig]):
    async def probe(self) -> Observation:
        return Observation.ok(f"echo says {self.config.says}")


ECHO = CheckKind("echo", EchoCheckConfig, EchoProbe, "a test kind", {"says": "hi"})


async def test_a_new_kind_is_one_registry_line() -> None:
    registry = (*KINDS, ECHO)
    union = pydantic.TypeAdapter(check_union(registry))
    table = union.validate_python({"name": "e", "kind": "echo", "says": "hi"})
    kind = kind_of(table, registry)
    assert kind is ECHO
    probe = kind.probe(table, CheckContext())
    assert (await probe.probe()).message == "echo says hi"
    with pytest.raises(pydantic.ValidationError, match=r"'http', 'tcp'.*'echo'"):
        union.validate_python({"name": "e", "kind": "fax"})
    with pytest.raises(CheckError, match="unknown check kind EchoCheckConfig"):
        build_probe(table, CheckContext())  # not in the real registry


def test_a_kind_record_must_agree_with_its_model() -> None:
    with pytest.raises(ValueError, match=r"EchoCheckConfig\.kind is Literal\['echo'\]"):
        CheckKind("beep", EchoCheckConfig, EchoProbe, "x", {})
    with pytest.raises(ValueError, match="distinct"):
        check_union((*KINDS, KINDS[0]))
    with pytest.raises(ValueError, match="distinct"):
        check_union(())


def test_a_single_kind_registry_still_checks_the_kind() -> None:
    only = pydantic.TypeAdapter(check_union((ECHO,)))
    assert isinstance(only.validate_python({"name": "e", "kind": "echo"}), EchoCheckConfig)
    with pytest.raises(pydantic.ValidationError):
        only.validate_python({"name": "e", "kind": "tcp", "host": "h", "port": 1})


async def test_probes_built_with_one_context_share_it() -> None:
    context = CheckContext(clock=FixedClock())
    config = TcpCheckConfig(name="t", kind="tcp", host="127.0.0.1", port=9)
    first, second = build_probe(config, context), build_probe(config, context)
    assert isinstance(first, TcpProbe)
    assert isinstance(second, TcpProbe)
    assert first.context is second.context is context
    actor = build_check_actor(config, context, health=HealthState())
    assert actor.statistics().runs == 0
    assert actor.probe.context is context  # type: ignore[attr-defined]


def test_every_check_kind_is_a_kind_probe() -> None:
    for kind in KINDS:
        assert isinstance(kind.probe, type)
        assert issubclass(kind.probe, KindProbe)


# -- postgres: psycopg is loaded by the first probe, not by the configuration ------------------


def test_parsing_a_postgres_check_does_not_import_psycopg() -> None:
    source = '[[checks]]\nname = "db"\nkind = "postgres"\ndsn = "postgresql://127.0.0.1:9/db"\n'
    assert loaded_when(source, "psycopg") == (False, True)


# -- docs/extending-checks.md walks the real dns files -----------------------------------------


def test_the_extension_guide_quotes_the_real_dns_files() -> None:
    guide = (DOCS.parent / "extending-checks.md").read_text(encoding="utf-8")
    root = DOCS.parent.parent
    config_model, probe, registry, server, lazy = fenced_blocks(guide, "python")
    module = (root / "actors/checks/dns.py").read_text(encoding="utf-8")
    assert config_model in module
    assert probe in module
    kinds = (root / "actors/checks/kinds.py").read_text(encoding="utf-8")
    for line in registry.splitlines():
        if line.strip() not in ("...", "", ")") and not line.startswith("KINDS"):
            assert line in kinds
    tests = (root / "tests/actors/checks/test_dns.py").read_text(encoding="utf-8")
    assert server in tests
    assert lazy in tests
    [rows] = fenced_blocks(guide, "")
    assert rows in DOCS.read_text(encoding="utf-8")

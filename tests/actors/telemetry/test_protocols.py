"""The metric store's Protocol: the store satisfies it, and it is the only description of it."""

from __future__ import annotations

import ast
from pathlib import Path

from actors.clock import FixedClock
from actors.telemetry.protocols import MetricReader, MetricStoreProtocol, MetricWriter
from actors.telemetry.store import MetricStore

_ACTORS = Path(__file__).resolve().parents[3] / "actors"
_STORE_METHODS = {"declare", "aggregate", "aggregate_series", "add_listener"}


def test_the_store_satisfies_the_protocol_and_each_side() -> None:
    store = MetricStore(clock=FixedClock())
    whole: MetricStoreProtocol = store
    writer: MetricWriter = store
    reader: MetricReader = store
    writer.declare("up", "gauge", "up", ("check",), resolution=1.0)
    writer.record("up", 1.0, {"check": "a"}, timestamp=FixedClock().now())
    assert reader.aggregate("up", {}, "last", 60.0) == {(("check", "a"),): 1.0}
    assert whole.aggregate_series("up", [("a",)], {}, "last", 60.0) == {(("check", "a"),): 1.0}


def test_no_other_protocol_describes_the_store() -> None:
    """A consumer imports `actors.telemetry.protocols`; it does not write its own copy."""
    copies: list[str] = []
    for path in sorted(_ACTORS.rglob("*.py")):
        if path.name == "protocols.py" and path.parent.name == "telemetry":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ClassDef):
                continue
            if not any(isinstance(b, ast.Name) and b.id == "Protocol" for b in node.bases):
                continue
            methods = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
            if methods & _STORE_METHODS:
                copies.append(f"{path.relative_to(_ACTORS.parent)}: {node.name}")
    assert copies == []

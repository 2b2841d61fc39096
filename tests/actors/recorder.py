"""A metric recorder for tests: remembers what was declared and recorded, in order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["Recorder"]


class Recorder:
    """Satisfies `actors.telemetry.protocols.MetricWriter`; recording an undeclared metric fails
    the test."""

    def __init__(self) -> None:
        self.declared: dict[str, str] = {}
        self.records: list[tuple[str, float, dict[str, str]]] = []

    def declare(
        self,
        name: str,
        kind: str,
        help: str,
        labelnames: Sequence[str],
        buckets: Sequence[float] | None = None,
        *,
        resolution: float = 0.0,
    ) -> None:
        self.declared[name] = kind

    def record(
        self,
        name: str,
        value: float,
        labels: Mapping[str, str] | None = None,
        *,
        timestamp: float | None = None,
    ) -> None:
        assert name in self.declared
        self.records.append((name, value, dict(labels or {})))

    def values(self, name: str) -> list[tuple[float, dict[str, str]]]:
        """(value, labels) of every record of `name`, in order."""
        return [(value, labels) for n, value, labels in self.records if n == name]

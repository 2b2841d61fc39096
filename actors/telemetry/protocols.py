"""The metric store as its consumers see it: one Protocol, made of a read and a write side.

`MetricStoreProtocol` is what the rules actor holds (it reads windows, records `alerts_firing`
and listens to samples); `actors.telemetry.store.MetricStore` satisfies it. A consumer that
needs less takes one side of it, never a copy: `MetricReader` (the `metric` check, the web
app's figures) or `MetricWriter` (the health state's metrics, notify's). `SnapshotStore` is
the writer with `MetricSnapshots`, each metric's series as `/metrics` exposes them (the SLO actor
reads running totals, not windows). Tests may pass any object of the right shape.

The errors are the store's (`actors.telemetry.exceptions`): see `MetricStore`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from actors.models import Labels
    from actors.telemetry.store import Listener, MetricKind, SeriesSnapshot

__all__ = [
    "BoundSample",
    "MetricBinder",
    "MetricReader",
    "MetricSnapshots",
    "MetricStoreProtocol",
    "MetricView",
    "MetricWriter",
    "SnapshotStore",
]


class MetricWriter(Protocol):
    """Declares metrics and records samples into them."""

    def declare(
        self,
        name: str,
        kind: MetricKind,
        help: str,
        labelnames: Sequence[str],
        buckets: Sequence[float] | None = None,
        *,
        resolution: float = 0.0,
    ) -> object:
        """Declare a metric; declaring it again identically is a no-op.

        `resolution` is the smallest slot width of its series, in seconds.

        Raises:
            MetricDeclarationError: invalid, or already declared differently.
        """
        ...

    def record(
        self,
        name: str,
        value: float,
        labels: Mapping[str, str] | None = None,
        *,
        timestamp: float | None = None,
    ) -> None:
        """Record one sample: counter -> add `value`, gauge -> set, histogram -> observe.

        Raises:
            UnknownMetricError, LabelError, SampleError.
        """
        ...


class BoundSample(Protocol):
    """One series resolved once (`MetricBinder.bind`): a sample is one call."""

    def record(self, value: float, *, timestamp: float | None = None) -> None:
        """Record one sample into the series (as `MetricWriter.record`).

        Raises:
            SampleError.
        """
        ...


@runtime_checkable
class MetricBinder(Protocol):
    """A writer that binds a series once for a writer recording into it every run (the health
    state's per-check metrics); `actors.telemetry.store.MetricStore` is one."""

    def bind(self, name: str, labels: Mapping[str, str] | None = None) -> BoundSample:
        """The series `labels` of `name`.

        Raises:
            UnknownMetricError, LabelError.
        """
        ...


class MetricReader(Protocol):
    """Aggregates the series of a metric over a window ending at `now`."""

    def aggregate(
        self,
        name: str,
        matchers: Mapping[str, str],
        aggregate: str,
        window: float,
        *,
        now: float | None = None,
    ) -> dict[Labels, float]:
        """One value per series of `name` matching every matcher, over `(now - window, now]`.

        Raises:
            UnknownMetricError: `name` was not declared.
            AggregateError: unknown aggregate, negative window, or `rate` over a zero window.
        """
        ...

    def aggregate_series(
        self,
        name: str,
        series: Iterable[tuple[str, ...]],
        matchers: Mapping[str, str],
        aggregate: str,
        window: float,
        *,
        now: float | None = None,
    ) -> dict[Labels, float | None]:
        """`aggregate` over the given series only (None where a series has no value).

        Raises:
            UnknownMetricError: `name` was not declared.
            AggregateError: as `aggregate`, and for `absent`.
        """
        ...


class MetricStoreProtocol(MetricWriter, MetricReader, Protocol):
    """The whole store a consumer may use: both sides, and its sample listeners."""

    def add_listener(self, callback: Listener) -> None:
        """Call `callback(metric_name, label_values)` after every recorded sample."""
        ...

    def remove_listener(self, callback: Listener) -> None:
        """Stop calling `callback`; no error if it was not registered."""
        ...

    def series_labels(self, name: str, label_values: tuple[str, ...]) -> Labels:
        """The canonical `Labels` of a series whose label values a listener received.

        Raises:
            UnknownMetricError: `name` was not declared.
            LabelError: `label_values` are not one value per declared label.
        """
        ...


class MetricView(Protocol):
    """One declared metric: its kind, label names, bucket bounds and series right now."""

    @property
    def kind(self) -> str:
        """counter, gauge or histogram."""
        ...

    @property
    def labelnames(self) -> tuple[str, ...]:
        """The declared label names, in the order of a series' label values."""
        ...

    @property
    def buckets(self) -> tuple[float, ...]:
        """A histogram's finite bucket bounds (+Inf implicit); () otherwise."""
        ...

    def snapshot(self) -> list[SeriesSnapshot]:
        """Every series' exposition values (a counter's total, a histogram's buckets)."""
        ...


class MetricSnapshots(Protocol):
    """Each declared metric's series as `/metrics` exposes them."""

    def handle(self, name: str) -> MetricView:
        """The declared metric `name`.

        Raises:
            UnknownMetricError: `name` was not declared.
        """
        ...


class SnapshotStore(MetricWriter, MetricSnapshots, Protocol):
    """Records, and reads each metric's series as exposed (the SLO actor)."""

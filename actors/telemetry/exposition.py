"""`/metrics` view of the store: a prometheus_client custom collector.

Every declared metric is yielded with its HELP and TYPE, even before its first sample, so a
dashboard or `promtool check metrics` sees the full catalogue from the start. A stale series
(`windows.Staleness`: an application series not updated for 5 m by default) is left out, as a
target that stopped reporting is in Prometheus. Register the
collector in the web app's own `CollectorRegistry` (there is no global registry here).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from actors.telemetry.windows import live

if TYPE_CHECKING:
    from actors.telemetry.store import MetricHandle, MetricStore

__all__ = ["StoreCollector", "le_label"]


class StoreCollector(Collector):
    """Yields one metric family per declared metric of a `MetricStore`."""

    def __init__(self, store: MetricStore) -> None:
        self._store = store

    def describe(self) -> Iterator[Metric]:
        """Families without samples (lets a registry detect duplicate names cheaply)."""
        for handle in self._store.metrics():
            if handle.kind == "histogram":
                yield HistogramMetricFamily(handle.name, handle.help, labels=handle.labelnames)
            else:
                yield _family(handle)

    def collect(self) -> Iterator[Metric]:
        """Every declared metric with its current series (stale ones left out)."""
        store = self._store
        now = store.now()
        for handle in store.metrics():
            staleness = store.staleness.of(handle.name, external=handle.external)
            snapshots = [s for s in handle.snapshot() if live(s.updated, now, staleness)]
            if handle.kind == "histogram":
                hist = HistogramMetricFamily(handle.name, handle.help, labels=handle.labelnames)
                les = [le_label(b) for b in handle.buckets] + ["+Inf"]
                for snap in snapshots:
                    hist.add_metric(
                        list(snap.label_values),
                        buckets=list(zip(les, snap.buckets, strict=True)),
                        sum_value=snap.sum,
                    )
                yield hist
            else:
                family = _family(handle)
                for snap in snapshots:
                    family.add_metric(list(snap.label_values), snap.value)
                yield family


def le_label(bound: float) -> str:
    """A bucket bound as the `le` label value /metrics gives it ("0.5", "1.0")."""
    text: str = floatToGoString(bound)  # type: ignore[no-untyped-call]
    return text


def _family(handle: MetricHandle) -> CounterMetricFamily | GaugeMetricFamily:
    labels = list(handle.labelnames)
    if handle.kind == "counter":
        return CounterMetricFamily(handle.name, handle.help, labels=labels)
    return GaugeMetricFamily(handle.name, handle.help, labels=labels)

"""`/metrics` view of the store: a frozen frame rendered off the event loop, and a collector.

Every declared metric is exposed with its HELP and TYPE, even before its first sample, so a
dashboard or `promtool check metrics` sees the full catalogue from the start. A stale series
(`windows.Staleness`: an application series not updated for 5 m by default) is left out, as a
target that stopped reporting is in Prometheus.

Two ways to expose the store:
- `freeze(store)` takes an immutable `MetricFrame` per metric through the store's public API
  (`metrics()`, `MetricHandle.snapshot_chunks()`); it is the only part that must run on the
  event loop, and `freeze_in_steps` does it in steps the loop can run between.
  `render(frames, openmetrics=...)` turns frames into the Prometheus text format or
  OpenMetrics (without the final ``# EOF``), byte for byte what prometheus_client's encoders
  write for the same families, at a fraction of their cost; it reads only the frames, so it
  runs in a worker thread while the loop goes on.
- `StoreCollector`, a prometheus_client custom collector, for a `CollectorRegistry` (there is
  no global registry here).
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
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
    from actors.telemetry.store import MetricHandle, MetricStore, SeriesSnapshot

__all__ = [
    "FREEZE_CHUNK",
    "MetricFrame",
    "StoreCollector",
    "freeze",
    "freeze_in_steps",
    "le_label",
    "render",
    "render_in_steps",
]

FREEZE_CHUNK = 250  # series between two turns of the loop (well under 1 ms of CPU)
_ALL = 1 << 62


@dataclass(frozen=True, slots=True)
class MetricFrame:
    """One declared metric and its series at one moment (immutable: safe in any thread).

    `buckets` are the histogram's upper bounds (+Inf implied), empty for other kinds; `series`
    are the store's `SeriesSnapshot` in creation order.
    """

    name: str
    kind: str
    help: str
    labelnames: tuple[str, ...]
    buckets: tuple[float, ...]
    series: tuple[SeriesSnapshot, ...]


def freeze(store: MetricStore) -> tuple[MetricFrame, ...]:
    """Every declared metric of `store` as it is now, stale series and those the store does not
    export (`MetricStore.export_filter`) left out (call it on the loop that records)."""
    steps = freeze_in_steps(store, chunk=0)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            frames: tuple[MetricFrame, ...] = done.value
            return frames


def freeze_in_steps(
    store: MetricStore, *, chunk: int = FREEZE_CHUNK
) -> Generator[None, None, tuple[MetricFrame, ...]]:
    """`freeze` in steps: a generator that yields after every `chunk` series (0: never) and
    returns the frames. Run it on the loop that records, letting the loop run at each yield, so
    that a scrape of many series never holds the loop for the whole snapshot (40,000 series
    take ~80 ms of CPU). Each series is read whole; one recorded between steps shows its newer
    values (a scrape is not one instant, as prometheus_client's is not)."""
    frames = []
    exported = store.export_filter
    for handle in store.metrics():
        now = store.now()
        staleness = store.staleness.of(handle.name, external=handle.external)
        series: list[SeriesSnapshot] = []
        names = handle.labelnames
        for part in handle.snapshot_chunks(chunk or _ALL):
            series += [
                s
                for s in part
                if live(s.updated, now, staleness)
                and (exported is None or exported(dict(zip(names, s.label_values, strict=True))))
            ]
            if chunk:
                yield
        frames.append(
            MetricFrame(
                name=handle.name,
                kind=handle.kind,
                help=handle.help,
                labelnames=tuple(handle.labelnames),
                buckets=tuple(handle.buckets) if handle.kind == "histogram" else (),
                series=tuple(series),
            )
        )
    return tuple(frames)


def _live(store: MetricStore, handle: MetricHandle) -> list[SeriesSnapshot]:
    """The series of `handle` still in force now (`windows.live`) that the store exports
    (`MetricStore.export_filter`)."""
    now = store.now()
    staleness = store.staleness.of(handle.name, external=handle.external)
    found = [s for s in handle.snapshot() if live(s.updated, now, staleness)]
    exported = store.export_filter
    if exported is not None and found:
        names = handle.labelnames
        found = [s for s in found if exported(dict(zip(names, s.label_values, strict=True)))]
    return found


def render(frames: Iterable[MetricFrame], *, openmetrics: bool = False) -> str:
    """`frames` in the Prometheus text format (0.0.4), or OpenMetrics without ``# EOF``.

    The output is what prometheus_client's `generate_latest` (either format) writes for the
    families `StoreCollector` yields: labels sorted by name, values as Go floats, label values
    escaped (backslash, newline, double quote). Pure: reads only `frames`.
    """
    steps = render_in_steps(frames, openmetrics=openmetrics, chunk=0)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            text: str = done.value
            return text


def render_in_steps(
    frames: Iterable[MetricFrame], *, openmetrics: bool = False, chunk: int = FREEZE_CHUNK
) -> Generator[None, None, str]:
    """`render` in steps: a generator that yields after every `chunk` series (0: never) and
    returns the text, for a loop that must keep answering while it renders (a thread would
    compete with the loop for the interpreter lock)."""
    out: list[str] = []
    add = out.append
    for frame in frames:
        name, kind = frame.name, frame.kind
        family = name[:-6] if kind == "counter" and name.endswith("_total") else name
        sample = family + "_total" if kind == "counter" else name
        if openmetrics:
            help_text = _escape(frame.help)
            shown = family
        else:
            help_text = frame.help.replace("\\", r"\\").replace("\n", r"\n")
            shown = sample if kind == "counter" else family
        add(f"# HELP {shown} {help_text}\n# TYPE {shown} {kind}\n")
        order = sorted(range(len(frame.labelnames)), key=frame.labelnames.__getitem__)
        names = [frame.labelnames[i] for i in order]
        if kind != "histogram":
            for n, snap in enumerate(frame.series, 1):
                add(f"{sample}{_labels(names, order, snap.label_values)} {_go(snap.value)}\n")
                if chunk and n % chunk == 0:
                    yield
            continue
        les = [le_label(bound) for bound in frame.buckets] + ["+Inf"]
        # "le" takes its sorted place among the series' own labels.
        at = sum(1 for label in names if label < "le")
        # As prometheus_client: no _count and _sum when a bucket bound is negative.
        counted = not frame.buckets or frame.buckets[0] >= 0
        for n, snap in enumerate(frame.series, 1):
            if chunk and n % max(1, chunk // len(les)) == 0:
                yield
            values = [_escape(snap.label_values[i]) for i in order]
            pairs = [f'{label}="{value}"' for label, value in zip(names, values, strict=True)]
            head, tail = ",".join(pairs[:at]), ",".join(pairs[at:])
            head = head + "," if head else ""
            tail = "," + tail if tail else ""
            for le, count in zip(les, snap.buckets, strict=True):
                add(f'{name}_bucket{{{head}le="{le}"{tail}}} {_go(count)}\n')
            if counted:
                plain = "{" + ",".join(pairs) + "}" if pairs else ""
                add(f"{name}_count{plain} {_go(snap.buckets[-1])}\n")
                add(f"{name}_sum{plain} {_go(snap.sum)}\n")
    return "".join(out)


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _labels(names: list[str], order: list[int], values: tuple[str, ...]) -> str:
    if not names:
        return ""
    pairs = ",".join(
        f'{label}="{_escape(values[i])}"' for label, i in zip(names, order, strict=True)
    )
    return "{" + pairs + "}"


def _go(value: float) -> str:
    text: str = floatToGoString(value)  # type: ignore[no-untyped-call]
    return text


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
        for handle in self._store.metrics():
            snapshots = _live(self._store, handle)
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

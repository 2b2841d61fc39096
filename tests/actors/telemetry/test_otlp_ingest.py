"""OTLP metrics into the store: the name mapping, kinds, temporality and rejections (no loop)."""

from __future__ import annotations

import pytest
from opentelemetry.proto.metrics.v1 import metrics_pb2 as m

from actors.clock import FixedClock
from actors.telemetry.anonymize import Anonymizer
from actors.telemetry.catalog import declare_catalog
from actors.telemetry.otlp_ingest import (
    IngestOptions,
    MetricsIngest,
    label_name,
    metric_name,
    rebucket,
    unit_suffix,
)
from actors.telemetry.recording import Telemetry
from actors.telemetry.store import MetricStore
from tests.actors.telemetry.otlp_requests import (
    DELTA,
    gauge,
    histogram,
    metrics_request,
    sum_,
)

JOB = (("instance", ""), ("job", "blipee-os"))


@pytest.mark.parametrize(
    ("name", "unit", "kind", "expected"),
    [
        ("agent.executions", "", "counter", "agent_executions_total"),
        ("agent.executions", "{execution}", "counter", "agent_executions_total"),
        ("agent.executions", "1", "counter", "agent_executions_total"),
        ("api.request.duration", "s", "histogram", "api_request_duration_seconds"),
        ("ml.prediction.latency", "ms", "histogram", "ml_prediction_latency_milliseconds"),
        ("ml.model.accuracy", "", "gauge", "ml_model_accuracy"),
        ("cpu.utilization", "1", "gauge", "cpu_utilization_ratio"),
        ("emissions.tracked", "kg", "counter", "emissions_tracked_kg_total"),
        ("system.memory.usage", "By", "gauge", "system_memory_usage_bytes"),
        ("network.io", "By/s", "gauge", "network_io_bytes_per_second"),
        ("requests_total", "", "counter", "requests_total"),
        ("total.requests", "", "counter", "requests_total"),
        ("latency_seconds", "s", "histogram", "latency_seconds"),
        ("http-server..duration", "s", "histogram", "http_server_duration_seconds"),
        ("2xx.responses", "", "gauge", "_2xx_responses"),
    ],
)
def test_metric_names_follow_the_prometheus_compatibility_spec(
    name: str, unit: str, kind: str, expected: str
) -> None:
    assert metric_name(name, unit, kind) == expected  # type: ignore[arg-type]


def test_units_and_label_names() -> None:
    assert unit_suffix("{packet}/s") == "per_second"
    assert unit_suffix("1/s") == "per_second"
    assert unit_suffix("furlongs") == "furlongs"
    assert label_name("http.request.method") == "http_request_method"
    assert label_name("2fa") == "key_2fa"
    assert label_name("a..b") == "a_b"


def test_rebucket_maps_each_bucket_to_the_one_holding_its_upper_bound() -> None:
    assert rebucket((1.0, 2.0), [1, 2, 3], (1.0, 2.0)) == [1, 2, 3]
    # 0.5 -> (.., 1]; 1.5 -> (1, 2]; 3 -> (2, 5]; 10 -> +Inf
    assert rebucket((0.5, 1.5, 3.0, 10.0), [1, 1, 1, 1, 1], (1.0, 2.0, 5.0)) == [1, 1, 1, 2]
    assert rebucket((1.0,), [1], (1.0,)) is None


@pytest.fixture
def store(clock: FixedClock) -> MetricStore:
    s = MetricStore(clock=clock, anonymizer=Anonymizer(["organization"], "k"))
    declare_catalog(s)
    return s


def _series(store: MetricStore, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return store.aggregate(name, {}, "last", 3600)


def test_a_cumulative_sum_reaches_the_seed_series_the_events_api_feeds(
    store: MetricStore, clock: FixedClock
) -> None:
    ingest = MetricsIngest(store)
    labels = {"agent": "carbon-hunter", "status": "success"}
    result = ingest.ingest(metrics_request(sum_("agent.executions", [(5, labels)])))
    assert (result.accepted, result.rejected) == (1, 0)
    clock.advance(10)
    ingest.ingest(metrics_request(sum_("agent.executions", [(8, labels)])))
    key = (("agent", "carbon-hunter"), ("status", "success"))
    # the first cumulative total of a series is its baseline
    assert store.aggregate("agent_executions_total", {}, "increase", 60) == {key: 3}
    # the events API writes the very same series
    Telemetry(store=store).record_agent_execution("carbon-hunter", 1.0, success=True)
    assert _series(store, "agent_executions_total") == {key: 9}


def test_delta_sums_add_and_gauges_set_with_job_and_instance(store: MetricStore) -> None:
    ingest = MetricsIngest(store)
    request = metrics_request(
        sum_("jobs.done", [(2, {"queue": "a"})], temporality=DELTA),
        sum_("jobs.done", [(3, {"queue": "a"})], temporality=DELTA),
        gauge("queue.depth", [(7.5, {"queue": "a"})]),
        sum_("inflight", [(4, {})], monotonic=False),
        resource={
            "service.name": "worker",
            "service.namespace": "esg",
            "service.instance.id": "w1",
        },
    )
    result = ingest.ingest(request)
    assert (result.accepted, result.rejected) == (4, 0)
    labels = (("instance", "w1"), ("job", "esg/worker"), ("queue", "a"))
    assert _series(store, "jobs_done_total") == {labels: 5}
    assert _series(store, "queue_depth") == {labels: 7.5}
    assert _series(store, "inflight") == {(("instance", "w1"), ("job", "esg/worker")): 4}
    assert store.handle("queue_depth").external


def test_selected_resource_attributes_become_labels(store: MetricStore) -> None:
    ingest = MetricsIngest(store, IngestOptions(resource_attributes=("deployment.environment",)))
    ingest.ingest(
        metrics_request(
            gauge("temp", [(1.0, {})]),
            resource={"service.name": "s", "deployment.environment": "prod", "host.name": "h"},
        )
    )
    assert store.handle("temp").labelnames == ("deployment_environment", "job", "instance")
    assert set(_series(store, "temp")) == {
        (("deployment_environment", "prod"), ("instance", ""), ("job", "s"))
    }


def test_histograms_cumulative_and_delta(store: MetricStore, clock: FixedClock) -> None:
    ingest = MetricsIngest(store)
    bounds = (0.1, 1.0)
    ingest.ingest(metrics_request(histogram("rpc.duration", [([1, 1, 0], 0.6, {})], bounds)))
    clock.advance(5)
    ingest.ingest(metrics_request(histogram("rpc.duration", [([3, 2, 1], 5.0, {})], bounds)))
    assert store.aggregate("rpc_duration_seconds", {}, "increase", 60) == {JOB: 4}
    (snap,) = store.handle("rpc_duration_seconds").snapshot()
    assert snap.buckets == (3, 5, 6)
    ingest.ingest(
        metrics_request(histogram("q.wait", [([0, 2, 0], 1.0, {})], bounds, temporality=DELTA))
    )
    ingest.ingest(
        metrics_request(histogram("q.wait", [([1, 0, 0], 0.05, {})], bounds, temporality=DELTA))
    )
    assert store.aggregate("q_wait_seconds", {}, "count", 60) == {JOB: 3}


def test_seed_histograms_take_other_bounds_conservatively(store: MetricStore) -> None:
    ingest = MetricsIngest(store)
    # the JavaScript SDK's default bounds, in seconds here: 0.075 lands in (0.05, 0.1]
    point = ([0, 1, 0], 0.07, {"model": "m"})
    result = ingest.ingest(
        metrics_request(
            histogram("ml.prediction.latency", [point], (0.05, 0.075), temporality=DELTA)
        )
    )
    assert result.rejected == 0
    (snap,) = store.handle("ml_prediction_latency_seconds").snapshot()
    assert snap.count == 1
    assert snap.buckets[4] - snap.buckets[3] == 1  # the (0.05, 0.1] bucket


def test_rejections_say_why_and_keep_the_good_points(store: MetricStore) -> None:
    store.declare("health_check_up", "gauge", "the monitor's own", ("check",))
    ingest = MetricsIngest(store)
    expo = m.Metric(
        name="lat",
        exponential_histogram=m.ExponentialHistogram(
            data_points=[m.ExponentialHistogramDataPoint(count=1)]
        ),
    )
    result = ingest.ingest(
        metrics_request(
            sum_("agent.executions", [(1, {"agent": "a", "status": "success", "extra": "x"})]),
            sum_("agent.executions", [(1, {"agent": "b", "status": "success"})]),
            gauge("health.check.up", [(1.0, {"check": "x"})]),
            sum_("inflight", [(1, {})], monotonic=False, temporality=DELTA),
            expo,
        )
    )
    assert (result.accepted, result.rejected) == (1, 4)
    message = result.message()
    assert "4 data point(s) rejected" in message
    assert "['extra'] not among" in message
    assert "health_check_up: belongs to the monitor" in message
    assert "non-monotonic sum must be cumulative" in message
    assert "exponential histograms are not supported" in message


def test_a_name_sent_as_another_kind_is_rejected(store: MetricStore) -> None:
    ingest = MetricsIngest(store)
    ingest.ingest(metrics_request(gauge("x", [(1.0, {})], unit="s")))
    result = ingest.ingest(
        metrics_request(histogram("x", [([1, 0], 0.1, {})], (1.0,), temporality=DELTA))
    )
    assert result.rejected == 1
    assert "x_seconds: declared as a gauge, sent as a histogram" in result.message()


def test_budgets_series_limit_and_max_metrics(clock: FixedClock) -> None:
    store = MetricStore(clock=clock, max_series=2)
    ingest = MetricsIngest(store, IngestOptions(max_metrics=1))
    result = ingest.ingest(
        metrics_request(gauge("g", [(1.0, {"k": str(i)}) for i in range(3)]), gauge("h", [(1, {})]))
    )
    assert (result.accepted, result.rejected) == (2, 2)
    assert "g: series limit reached" in result.message()
    assert "h: too many metrics declared over OTLP (1" in result.message()


def test_anonymised_labels_are_hashed_at_the_store(store: MetricStore) -> None:
    ingest = MetricsIngest(store)
    ingest.ingest(
        metrics_request(gauge("network.connections.active", [(3, {"organization": "acme"})]))
    )
    ((labels, value),) = _series(store, "network_connections_active").items()
    assert labels == (("organization", Anonymizer(["organization"], "k").hash("acme")),)
    assert value == 3


def test_non_string_attributes_and_colliding_keys(store: MetricStore) -> None:
    ingest = MetricsIngest(store)
    ingest.ingest(
        metrics_request(gauge("g", [(1.0, {"a.b": "1", "a_b": "2", "ok": True, "n": 7})]))
    )
    (labels,) = _series(store, "g")
    assert dict(labels) == {
        "a_b": "1;2",
        "ok": "true",
        "n": "7",
        "job": "blipee-os",
        "instance": "",
    }

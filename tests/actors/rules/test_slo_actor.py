"""The SLO actor and the burn-rate alerts end to end, under the autojump clock."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from pydantic import SecretStr
from trio.testing import MockClock

from actors.clock import VirtualClock
from actors.models import AlertEvent, AlertStatus
from actors.rules.actor import RulesActor
from actors.rules.slo import slo_rules
from actors.rules.slo_actor import SloActor
from actors.rules.slo_api import create_blueprint
from actors.rules.slo_config import SloConfig
from actors.telemetry.store import MetricStore
from tests.actors.web.guarded import guarded_app

INTERVAL = 30.0


def _slo(**extra: Any) -> SloConfig:
    data: dict[str, Any] = {
        "name": "api",
        "objective": 0.999,
        "bad": {"metric": "api_requests_total", "labels": {"status": "5.."}},
        "total": {"metric": "api_requests_total"},
        "alert_channels": ["pagerduty"],
    }
    data.update(extra)
    return SloConfig.model_validate(data)


class Harness:
    def __init__(self, slos: list[SloConfig]) -> None:
        self.clock = VirtualClock()
        self.store = MetricStore(clock=self.clock, retention=4 * 86400)
        self.store.declare("api_requests_total", "counter", "Requests.", ("status",))
        self.store.declare(
            "api_request_duration_seconds", "histogram", "Latency.", ("endpoint",), (0.1, 0.5, 1)
        )
        self.send, self.receive = trio.open_memory_channel[AlertEvent](100)
        self.slos = SloActor(slos=slos, store=self.store, clock=self.clock, interval=INTERVAL)
        self.rules = RulesActor(
            rules=slo_rules(slos), store=self.store, sink=self.send, clock=self.clock
        )

    async def start(self, nursery: trio.Nursery) -> None:
        await nursery.start(self.rules.run)
        await nursery.start(self.slos.run)

    def requests(self, status: str, n: int) -> None:
        self.store.record("api_requests_total", n, {"status": status})

    def value(self, metric: str, **labels: str) -> float:
        found = self.store.aggregate(metric, labels, "last", 60, now=self.clock.now())
        assert len(found) == 1, found
        return next(iter(found.values()))


async def test_a_burst_of_errors_pages_at_the_next_evaluation_and_resolves_with_the_30m_window(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    h = Harness([_slo()])
    await h.start(nursery)
    await trio.sleep(100)
    h.requests("200", 950)
    h.requests("503", 50)  # 5 % errors: 50x the 0.1 % budget
    events: list[tuple[float, AlertEvent]] = []
    with trio.fail_after(30_000):
        while len(events) < 4:
            event = await h.receive.receive()
            events.append((trio.current_time(), event))
    # Counted at the evaluation at 120 s; both alerts fire at once.
    fired = {dict(e.alert.labels)["burn"]: (t, e) for t, e in events[:2]}
    assert set(fired) == {"page", "ticket"}
    for t, event in fired.values():
        assert event.alert.status is AlertStatus.FIRING
        assert 120 <= t < 121
        assert event.channels == ("pagerduty",)
    page = dict(fired["page"][1].alert.labels)
    assert page["severity"] == "critical"
    assert page["slo"] == "api"
    assert page["alertname"] == "SloErrorBudgetBurn"
    assert dict(fired["ticket"][1].alert.labels)["severity"] == "warning"
    assert fired["page"][1].alert.value == pytest.approx(50.0)  # the 1h burn rate
    # Page: the 5m window empties at 420 s but 6h & 30m (6x) still hold until the 30m window
    # no longer holds the burst: at the evaluation at 1920 s. The ticket holds on: 1d & 2h until
    # 7320 s, then 3d & 6h (1x) until the 6h window lets go of the burst.
    t, resolved = events[2]
    assert dict(resolved.alert.labels)["burn"] == "page"
    assert resolved.alert.status is AlertStatus.RESOLVED
    assert 1920 <= t < 1921
    t, resolved = events[3]
    assert dict(resolved.alert.labels)["burn"] == "ticket"
    assert 21720 <= t < 21721  # 120 + 6h


async def test_metrics_and_statuses(nursery: trio.Nursery, autojump_clock: MockClock) -> None:
    latency = _slo(
        name="latency",
        bad=None,
        total=None,
        objective=0.9,
        sli={"metric": "api_request_duration_seconds", "le": "0.5"},
    )
    h = Harness([_slo(), latency])
    h.requests("200", 10)  # before the actor started: a baseline, not counted
    await h.start(nursery)
    await trio.sleep(1)
    h.requests("200", 999)
    h.requests("500", 1)  # a new series: counted from 0
    for value in (0.05, 0.2, 0.4, 0.7):
        h.store.record("api_request_duration_seconds", value, {"endpoint": "/a"})
    await trio.sleep(INTERVAL)
    api, lat = h.slos.statuses()
    assert api.sli == 0.999
    assert api.error_budget_remaining == 1.0 - 0.001 / (1 - 0.999)
    assert api.burn_rates[300.0] == 0.001 / (1 - 0.999)
    assert lat.sli == 0.75
    assert lat.burn_rates[300.0] == 0.25 / (1 - 0.9)
    assert h.value("slo_sli", slo="latency") == 0.75
    assert h.value("slo_objective", slo="api") == 0.999
    assert h.value("slo_burn_rate", slo="latency", window="1h") == lat.burn_rates[3600.0]
    assert h.value("slo_error_budget_remaining", slo="latency") == lat.error_budget_remaining
    # 25 % slow against a 10 % budget: 2.5x; only the ticket's 3d & 6h pair (1x) holds.
    assert h.value("slo_burn_alert", slo="latency", burn="page") == 0
    assert h.value("slo_burn_alert", slo="latency", burn="ticket") == pytest.approx(2.5)
    h.requests("200", 5)
    await trio.sleep(INTERVAL)
    assert h.slos.statuses()[0].sli == 1 - 1 / 1005


async def test_an_undeclared_metric_is_an_error_in_the_status(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    h = Harness([_slo(total={"metric": "nope_total"})])
    await h.start(nursery)
    await trio.sleep(1)
    (status,) = h.slos.statuses()
    assert "nope_total" in status.error
    assert status.sli is None
    assert status.to_json()["error"] == status.error


async def test_configure_keeps_unchanged_ledgers(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    h = Harness([_slo()])
    await h.start(nursery)
    await trio.sleep(1)
    h.requests("200", 10)
    await trio.sleep(INTERVAL)
    h.slos.configure([_slo(), _slo(name="other")])
    h.slos.evaluate()
    api, other = h.slos.statuses()
    assert api.sli == 1.0
    assert other.sli is None
    h.slos.configure([_slo(name="other")])
    assert [s.name for s in h.slos.statuses()] == ["other"]


async def test_the_api_lists_each_slo(nursery: trio.Nursery, autojump_clock: MockClock) -> None:
    nothing = {"metric": "api_requests_total", "labels": {"status": "1.."}}
    h = Harness([_slo(), _slo(name="idle", bad=nothing, total=nothing)])
    app = guarded_app(create_blueprint(slos=h.slos), api_token=SecretStr("t0ken"))
    await h.start(nursery)
    await trio.sleep(1)
    h.requests("200", 90)
    h.requests("503", 10)
    await trio.sleep(INTERVAL)
    resp = await app.test_client().get("/api/v1/slos")
    assert resp.status_code == 200
    api, idle = (await resp.get_json())["slos"]
    assert api["name"] == "api"
    assert api["window"] == "30d"
    assert api["sli"] == pytest.approx(0.9)
    assert api["burnRates"]["5m"] == pytest.approx(100.0)
    assert api["alerts"] == {"page": True, "ticket": True}
    assert api["error"] is None
    assert idle["sli"] is None
    assert idle["burnRates"]["5m"] is None
    assert idle["alerts"] == {"page": False, "ticket": False}

"""SLO arithmetic against references worked out by hand (pure: no store, no event loop)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from pydantic import ValidationError

from actors.rules.slo import (
    ALERTS,
    WINDOWS,
    BurnPair,
    Ledger,
    Selector,
    alert_burn,
    burn_rate,
    counted,
    error_ratio,
    slo_rules,
    slo_status,
)
from actors.rules.slo_config import SelectorConfig, SloConfig

DAY = 86400.0
H = 3600.0
M = 60.0


def test_the_workbooks_factors_for_30_days_and_sloths_for_28() -> None:
    factors = [p.factor(30 * DAY) for pairs in ALERTS.values() for p in pairs]
    assert factors == pytest.approx([14.4, 6.0, 3.0, 1.0])
    assert ALERTS["page"][0].factor(28 * DAY) == pytest.approx(13.44)  # 0.02 * 672 h / 1 h
    assert WINDOWS == (5 * M, 30 * M, H, 2 * H, 6 * H, DAY, 3 * DAY)


def test_error_ratio_and_burn_rate() -> None:
    assert error_ratio(20, 1000) == 0.02
    assert error_ratio(0, 0) is None
    # 2 % errors against a 99.9 % objective: the budget (0.1 %) burns 20 times too fast.
    assert burn_rate(0.02, 0.999) == pytest.approx(20.0)
    assert burn_rate(None, 0.999) is None


def _ratios(**by_window: float | None) -> dict[float, float | None]:
    names = {
        "m5": 5 * M,
        "m30": 30 * M,
        "h1": H,
        "h2": 2 * H,
        "h6": 6 * H,
        "d1": DAY,
        "d3": 3 * DAY,
    }
    out: dict[float, float | None] = dict.fromkeys(WINDOWS)
    out.update({names[k]: v for k, v in by_window.items()})
    return out


def test_page_needs_both_windows_of_a_pair_above_the_factor() -> None:
    page = ALERTS["page"]
    # 99.9 %: page when 1h and 5m error ratios are above 14.4 * 0.001 = 1.44 %.
    held = alert_burn(page, _ratios(h1=200 / 12000, m5=20 / 1000), 0.999, 30 * DAY)
    assert held == pytest.approx(200 / 12000 / 0.001)  # 16.67: the 1h burn rate
    assert alert_burn(page, _ratios(h1=200 / 12000, m5=0.01), 0.999, 30 * DAY) == 0.0
    assert alert_burn(page, _ratios(h1=0.01, m5=0.5), 0.999, 30 * DAY) == 0.0
    assert alert_burn(page, _ratios(h1=None, m5=0.5), 0.999, 30 * DAY) == 0.0
    # 6h & 30m at 6x: 0.7 % > 0.6 %.
    assert alert_burn(page, _ratios(h6=0.007, m30=0.007), 0.999, 30 * DAY) == pytest.approx(7.0)


def test_the_threshold_itself_does_not_hold() -> None:
    # The comparison Sloth's PromQL makes: ratio > factor * (1 - objective), strictly.
    pair = BurnPair(3600.0, 300.0, 0.02)
    threshold = pair.factor(30 * DAY) * (1 - 0.99)
    at = _ratios(h1=threshold, m5=threshold)
    assert alert_burn((pair,), at, 0.99, 30 * DAY) == 0.0
    above = _ratios(h1=math.nextafter(threshold, 1), m5=math.nextafter(threshold, 1))
    assert alert_burn((pair,), above, 0.99, 30 * DAY) > 0


def test_ticket_pairs() -> None:
    ticket = ALERTS["ticket"]
    # 99 %: 1d & 2h above 3 %, or 3d & 6h above 1 %.
    assert alert_burn(ticket, _ratios(d1=0.04, h2=0.05), 0.99, 30 * DAY) == pytest.approx(4.0)
    assert alert_burn(ticket, _ratios(d3=0.015, h6=0.02), 0.99, 30 * DAY) == pytest.approx(1.5)
    assert alert_burn(ticket, _ratios(d3=0.015, h6=0.005), 0.99, 30 * DAY) == 0.0


def test_status_by_hand() -> None:
    # 99.9 % over 30 d; in 30 d 1,000,000 events, 400 bad: SLI 99.96 %, 40 % of the budget
    # spent, 60 % left. The last hour: 12,000 events, 200 bad; the last 5 m: 1,000, 20 bad.
    sums = dict.fromkeys(WINDOWS, (0.0, 0.0))
    sums[H] = (200.0, 12000.0)
    sums[5 * M] = (20.0, 1000.0)
    sums[30 * DAY] = (400.0, 1_000_000.0)
    status = slo_status("api", 0.999, 30 * DAY, sums)
    assert status.sli == pytest.approx(0.9996)
    assert status.error_budget_remaining == pytest.approx(0.6)
    assert status.burn_rates[H] == pytest.approx(16.6667, rel=1e-4)
    assert status.burn_rates[5 * M] == pytest.approx(20.0)
    assert status.burn_rates[DAY] is None
    assert status.alerts == {"page": pytest.approx(16.6667, rel=1e-4), "ticket": 0.0}
    body = status.to_json()
    assert body["window"] == "30d"
    assert body["alerts"] == {"page": True, "ticket": False}
    assert body["burnRates"]["1h"] == pytest.approx(16.6667, rel=1e-4)  # type: ignore[index]


def test_overspent_budget_goes_below_zero() -> None:
    sums = dict.fromkeys(WINDOWS, (0.0, 0.0))
    sums[30 * DAY] = (30.0, 1000.0)
    status = slo_status("x", 0.99, 30 * DAY, sums)
    assert status.error_budget_remaining == pytest.approx(-2.0)  # 3 % spent of a 1 % budget


def test_counted() -> None:
    assert counted(None, 5, new=False) == 0  # a baseline
    assert counted(None, 5, new=True) == 5  # created since the last read: from 0
    assert counted(5, 9, new=False) == 4
    assert counted(9, 2, new=False) == 2  # a reset


def test_ledger_sums_fine_windows_exactly_and_long_ones_by_slot() -> None:
    ledger = Ledger(horizon=30 * DAY, fine_horizon=3 * DAY, coarse=H)
    t0 = 1_000_000.0 * H  # on a slot boundary
    ledger.add(t0 + 10, 1, 10)
    ledger.add(t0 + 400, 2, 20)
    ledger.add(t0 + H + 30, 4, 40)
    now = t0 + H + 60
    assert ledger.sums(now, 5 * M) == (4, 40)
    assert ledger.sums(now, H) == (6, 60)  # (t0 + 60, now]: the first entry is out
    assert ledger.sums(now, 2 * H) == (7, 70)
    assert ledger.sums(now, 30 * DAY) == (7, 70)
    ledger.add(now + 3 * DAY, 0, 0)  # nothing happened; old fine entries go
    assert ledger.sums(now + 3 * DAY, 3 * DAY) == (0, 0)
    assert ledger.sums(now + 3 * DAY, 30 * DAY) == (7, 70)
    ledger.add(now + 31 * DAY, 0, 0)
    assert ledger.sums(now + 31 * DAY, 30 * DAY) == (0, 0)


def test_selector_regexes_are_anchored_and_missing_labels_are_empty() -> None:
    sel = Selector(
        SelectorConfig(metric="m", labels={"method": "GET|POST"}, labels_not={"status": "5.."})
    )
    assert sel.matches({"method": "GET", "status": "200"})
    assert not sel.matches({"method": "GET", "status": "503"})
    assert not sel.matches({"method": "GETX", "status": "200"})
    assert not sel.matches({"status": "200"})
    assert Selector(SelectorConfig(metric="m", labels_not={"x": ".+"})).matches({})


def _slo(**extra: Any) -> SloConfig:
    data: dict[str, Any] = {
        "name": "api",
        "objective": 0.999,
        "good": {"metric": "api_requests_total", "labels_not": {"status": "5.."}},
        "total": {"metric": "api_requests_total"},
    }
    data.update(extra)
    return SloConfig.model_validate(data)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"objective": 99.9}, "objective must be between 0 and 1"),
        ({"window": "1d"}, "window must be at least 3d"),
        ({"good": None}, "needs total and one of good or bad"),
        ({"bad": {"metric": "x_total"}}, "needs total and one of good or bad"),
        ({"sli": {"metric": "h", "le": "0.5"}}, "either sli (latency) or good/bad"),
        ({"good": {"metric": "x_total", "labels": {"a": "("}}}, "invalid regular expression"),
        ({"labels": {"slo": "x"}}, "labels may not set slo"),
        ({"name": "a b"}, "invalid SLO name"),
    ],
)
def test_invalid_slos_say_why(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _slo(**extra)


def test_latency_le_is_a_finite_number() -> None:
    sli = {"metric": "h", "le": "0.5"}
    slo = _slo(good=None, total=None, sli=sli)
    assert slo.sli is not None
    assert slo.sli.le == 0.5
    with pytest.raises(ValidationError, match="le must be a number"):
        _slo(good=None, total=None, sli={"metric": "h", "le": "fast"})
    with pytest.raises(ValidationError, match="finite bucket bound"):
        _slo(good=None, total=None, sli={"metric": "h", "le": "+Inf"})


def test_generated_rules_page_and_ticket() -> None:
    page, ticket = slo_rules([_slo(alert_channels=("pagerduty",), labels={"team": "api"})])
    assert (page.id, page.severity, ticket.id, ticket.severity) == (
        "slo-api-page",
        "critical",
        "slo-api-ticket",
        "warning",
    )
    assert page.channels == ("pagerduty",)
    assert page.condition.labels == {"slo": "api", "burn": "page"}
    assert page.labels == {"team": "api"}
    assert "1h and 5m over 14.4x or 6h and 30m over 6x" in page.summary

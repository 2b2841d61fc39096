"""The server-drawn charts and the page's number formats (pure, no event loop)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from actors.history.rollup import Strip
from actors.web.charts import ChartPoint, badge, bar_class, latency_chart, sparkline, uptime_bar
from actors.web.statuspage import format_latency, format_ratio


@pytest.mark.parametrize(
    ("count", "failures", "css"),
    [(0, 0, "none"), (5, 0, "up"), (5, 2, "degraded"), (4, 2, "down"), (3, 3, "down")],
)
def test_bar_class(count: int, failures: int, css: str) -> None:
    assert bar_class(count, failures) == css


def test_uptime_bar_merges_runs_of_one_class() -> None:
    counts = [0, 0, 6, 6, 6, 6, 1]
    failures = [0, 0, 0, 0, 6, 1, 0]
    svg = uptime_bar([i * 60 for i in range(7)], counts, failures, 60, label="a <b>")
    root = ET.fromstring(svg)
    rects = [(r.get("class"), r.get("data-from"), r.get("data-slots")) for r in root]
    assert rects == [
        ("none", "0", "2"),
        ("up", "2", "2"),
        ("down", "4", "1"),
        ("degraded", "5", "1"),
        ("up", "6", "1"),
        ("ticks", None, None),
    ]
    assert root.get("aria-label") == "a <b>"
    assert "1970-01-01 00:04 to 00:05 UTC: most runs failed" in svg


def test_sparkline_skips_empty_slots_and_scales_to_the_largest() -> None:
    svg = sparkline([None, 10.0, 20.0, None], label="x")
    points = ET.fromstring(svg)[0].get("points")
    assert points == "1,10 2,1"
    assert "polyline" not in sparkline([None, None], label="x")


def test_latency_chart_has_one_point_per_bucket() -> None:
    points = [ChartPoint(100.0 + i * 60, 10.0 + i, 20.0 + i, 6, i % 2) for i in range(5)]
    svg = latency_chart(points, since=0.0, until=400.0, label="x")
    root = ET.fromstring(svg)
    avg = next(e for e in root if e.get("class") == "avg")
    assert avg.get("data-points") == "5"
    assert len(avg.get("points", "").split()) == 5
    assert len([e for e in root if e.get("class") == "failed"]) == 2
    assert ">25 ms<" in svg  # a round axis maximum above the largest p95 (24 ms)


def test_badge_is_standalone_svg_with_escaped_text() -> None:
    svg = badge("api<1>", "99.90%", "good")
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert "api&lt;1&gt;: 99.90%" in svg
    assert re.search(r'fill="#2ea44f"', svg)
    assert int(root.get("width", "0")) > 60


@pytest.mark.parametrize(
    ("ratio", "text"),
    [(None, "-"), (1.0, "100%"), (0.99999, "99.99%"), (0.5, "50.00%"), (0.0, "0.00%")],
)
def test_format_ratio_never_rounds_up_to_100(ratio: float | None, text: str) -> None:
    assert format_ratio(ratio) == text


def test_format_latency() -> None:
    assert format_latency(0.0004) == "0.4 ms"
    assert format_latency(0.0123) == "12 ms"


def test_strip_shape_moves_only_when_the_bar_changes() -> None:
    strip = Strip(60)
    strip.add(0, 1, 0, 5, 5)
    shape = strip.shape
    strip.add(10, 1, 0, 5, 5)  # same slot, still "up"
    assert strip.shape == shape
    assert strip.totals(30) == (2, 0)
    strip.add(20, 1, 1, 5, 5)  # now "degraded"
    assert strip.shape == shape + 1
    strip.add(70, 1, 0, 5, 5)  # a new slot
    assert strip.shape == shape + 2
    assert strip.totals(70) == (4, 1)
    strip.add(80, 2, 0, 5, 5)  # kept in the running totals
    assert strip.totals(80) == (6, 1)
    assert strip.totals(60 * 90 + 5) == (3, 0)  # the first slot left the window

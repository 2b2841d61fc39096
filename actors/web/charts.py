"""SVG charts drawn on the server: uptime bars, sparklines, latency charts, badges (pure).

Every function returns SVG text with every value escaped. The charts carry no style of their
own: their colours come from classes the page's one stylesheet defines (so they follow dark
mode, and the Content-Security-Policy needs no `style-src` for attributes). Badges are
standalone images and use presentation attributes only.

- `uptime_bar`: one slot per column, coloured by its share of runs that did not fail; runs of
  slots of the same colour are drawn as one rectangle (`data-from`, `data-slots` say which
  slots), and a shared pattern (`TICKS`, placed once per page) draws the gaps between slots.
  That keeps a bar of a healthy check under 300 bytes.
- `sparkline`: mean latency per slot as one polyline (empty slots are skipped).
- `latency_chart`: a check's mean and p95 latency per bucket over its window, with axes.
- `badge`: a shields-style badge (label | value).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from actors.history.rollup import slot_class

__all__ = [
    "BAR_CLASSES",
    "TICKS",
    "ChartPoint",
    "badge",
    "bar_class",
    "latency_chart",
    "sparkline",
    "uptime_bar",
]

BAR_CLASSES = ("up", "degraded", "down", "none")
"""Slot classes: no failure, some (under half), mostly failing, no runs."""

_MEANING = {
    "up": "every run passed",
    "degraded": "some runs failed",
    "down": "most runs failed",
    "none": "no runs",
}
_SLOT_W = 5
_BAR_H = 24
TICKS = (
    '<svg class="defs" width="0" height="0" aria-hidden="true"><defs>'
    f'<pattern id="ticks" width="{_SLOT_W}" height="{_BAR_H}" patternUnits="userSpaceOnUse">'
    f'<rect class="gap" x="{_SLOT_W - 1}" width="1" height="{_BAR_H}"/></pattern></defs></svg>'
)
"""The pattern the bars draw their gaps with (once per page, before the first bar)."""


bar_class = slot_class
"""The class of a slot with `count` runs of which `failures` failed (see `BAR_CLASSES`)."""


def _stamp(ts: float, with_date: bool) -> str:
    return time.strftime("%Y-%m-%d %H:%M" if with_date else "%H:%M", time.gmtime(ts))


def uptime_bar(
    starts: Sequence[int],
    counts: Sequence[int],
    failures: Sequence[int],
    width: int,
    *,
    label: str,
) -> str:
    """An uptime bar of the slots starting at `starts` (each `width` seconds long)."""
    n = len(counts)
    parts = [
        f'<svg class="bar" viewBox="0 0 {n * _SLOT_W} {_BAR_H}" preserveAspectRatio="none"'
        f' role="img" aria-label="{escape(label)}">'
    ]
    i = 0
    while i < n:
        css = bar_class(counts[i], failures[i])
        j = i + 1
        while j < n and bar_class(counts[j], failures[j]) == css:
            j += 1
        begin, end = starts[i], starts[j - 1] + width
        same_day = time.gmtime(begin)[:3] == time.gmtime(end)[:3]
        when = f"{_stamp(begin, True)} to {_stamp(end, not same_day)} UTC"
        share = _MEANING[css]
        parts.append(
            f'<rect class="{css}" x="{i * _SLOT_W}" width="{(j - i) * _SLOT_W}"'
            f' height="{_BAR_H}" data-from="{i}" data-slots="{j - i}">'
            f"<title>{when}: {share}</title></rect>"
        )
        i = j
    parts.append(f'<rect class="ticks" width="{n * _SLOT_W}" height="{_BAR_H}"/></svg>')
    return "".join(parts)


def sparkline(values: Sequence[float | None], *, label: str) -> str:
    """A small line of `values` (None: no point), scaled to the largest."""
    n = len(values)
    top = max((v for v in values if v is not None), default=0.0)
    height = 20
    points = [
        f"{i},{height - round(v / top * (height - 2)) - 1 if top else height - 1}"
        for i, v in enumerate(values)
        if v is not None
    ]
    return (
        f'<svg class="spark" viewBox="0 0 {max(n - 1, 1)} {height}" preserveAspectRatio="none"'
        f' role="img" aria-label="{escape(label)}">'
        + (f'<polyline points="{" ".join(points)}"/>' if points else "")
        + "</svg>"
    )


@dataclass(frozen=True, slots=True)
class ChartPoint:
    """One bucket of the latency chart: its start, mean and p95 latency (ms), runs, failures."""

    at: float
    avg_ms: float
    p95_ms: float
    count: int
    failures: int


def _nice(top: float) -> float:
    """A round axis maximum at or above `top`."""
    if top <= 0:
        return 1.0
    magnitude = 10 ** len(str(int(top)))
    for step in (0.1, 0.2, 0.25, 0.5, 1.0):
        candidate = magnitude * step
        if candidate >= top:
            return float(max(candidate, 1.0))
    return float(magnitude)


def latency_chart(points: Sequence[ChartPoint], *, since: float, until: float, label: str) -> str:
    """Mean (line) and p95 (lighter line) latency of `points` between `since` and `until`;
    failed buckets are marked under the axis."""
    width, height = 960, 240
    left, right, top_pad, bottom = 64, 8, 10, 24
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    span = max(until - since, 1.0)
    ceiling = _nice(max((p.p95_ms for p in points), default=0.0))

    def x(at: float) -> float:
        return left + (at - since) / span * plot_w

    def y(ms: float) -> float:
        return top_pad + plot_h - min(ms, ceiling) / ceiling * plot_h

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img"'
        f' aria-label="{escape(label)}">'
    ]
    for fraction in (0.0, 0.5, 1.0):
        gy = y(ceiling * fraction)
        parts.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{gy:.1f}" y2="{gy:.1f}"/>'
        )
        parts.append(
            f'<text class="axis" x="{left - 4}" y="{gy + 4:.1f}" text-anchor="end">'
            f"{ceiling * fraction:g} ms</text>"
        )
    for at, anchor in ((since, "start"), (until, "end")):
        parts.append(
            f'<text class="axis" x="{x(at):.1f}" y="{height - 6}" text-anchor="{anchor}">'
            f"{escape(_stamp(at, True))}</text>"
        )
    for point in points:
        if point.failures:
            parts.append(
                f'<rect class="failed" x="{x(point.at):.1f}" y="{top_pad + plot_h}" width="2"'
                f' height="4"><title>{point.failures} of {point.count} runs failed</title></rect>'
            )
    p95 = " ".join(f"{x(p.at):.1f},{y(p.p95_ms):.1f}" for p in points)
    avg = " ".join(f"{x(p.at):.1f},{y(p.avg_ms):.1f}" for p in points)
    parts.append(f'<polyline class="p95" points="{p95}"/>')
    parts.append(f'<polyline class="avg" points="{avg}" data-points="{len(points)}"/>')
    parts.append("</svg>")
    return "".join(parts)


_BADGE_COLOURS = {
    "pass": "#2ea44f",
    "warn": "#dbab09",
    "fail": "#cb2431",
    "pending": "#6a737d",
    "good": "#2ea44f",
    "fair": "#dbab09",
    "poor": "#cb2431",
    "none": "#6a737d",
}


def _text_width(text: str) -> int:
    """Approximate width of `text` in 11 px Verdana (shields' font): wide letters count more."""
    wide = sum(1 for c in text if c in "MWmw@%")
    narrow = sum(1 for c in text if c in "iljtf.,:;!|' ()")
    return round(7 * (len(text) - wide - narrow) + 9.5 * wide + 4 * narrow)


def badge(label: str, value: str, tone: str) -> str:
    """A shields-style badge: grey `label`, `value` on the colour of `tone` (a status, or
    good / fair / poor / none)."""
    colour = _BADGE_COLOURS.get(tone, _BADGE_COLOURS["none"])
    lw, vw = _text_width(label) + 10, _text_width(value) + 10
    total = lw + vw
    label_e, value_e = escape(label), escape(value)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img"'
        f' aria-label="{label_e}: {value_e}"><title>{label_e}: {value_e}</title>'
        '<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb"'
        ' stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{total}" height="20" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{lw}" height="20" fill="#555"/>'
        f'<rect x="{lw}" width="{vw}" height="20" fill="{colour}"/>'
        f'<rect width="{total}" height="20" fill="url(#s)"/></g>'
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif"'
        ' font-size="11">'
        f'<text x="{lw / 2:.1f}" y="15" fill="#010101" fill-opacity=".3">{label_e}</text>'
        f'<text x="{lw / 2:.1f}" y="14">{label_e}</text>'
        f'<text x="{lw + vw / 2:.1f}" y="15" fill="#010101" fill-opacity=".3">{value_e}</text>'
        f'<text x="{lw + vw / 2:.1f}" y="14">{value_e}</text></g></svg>'
    )

"""The status pages (`GET /`, `GET /checks/{name}`): server-rendered HTML, no external assets.

`StatusPages` renders the Jinja templates of `actors/web/templates/` (autoescaped: every value
is text, never markup) with SVG charts drawn on the server (`actors.web.charts`). The pages
have no script and load nothing: their only style is the inline stylesheet
(`templates/status.css`), allowed by hash in `CONTENT_SECURITY_POLICY`. They refresh themselves
every `REFRESH_SECONDS` with a meta refresh, and follow the reader's light or dark preference
(`prefers-color-scheme`); under 700 px wide a check's row becomes a card.

The overview (`/`): the overall status; banners for active incidents and maintenance windows
and for readiness; a count of checks by status; a window switch (`?window=24h|7d|30d|90d`, plain
links); then the checks by `group` (checks without a group first, then each group in
configuration order), one row each: name, status, a 90-slot uptime bar of the window, uptime
over 24 h / 7 d / 30 d / 90 d, a latency sparkline (24 h) with the last latency, the message
(with what it is blocked by) and the last run. A failing check's row is highlighted. A check
not run yet is listed as pending. Then, when [[slos]] are configured, the SLOs: objective, SLI,
error budget remaining (with a bar), the burn rates over the windows of the page and ticket
alerts, an SLO whose page alert condition holds highlighted. Then the alerts pending or
firing, the active silences and the supervision tree. The check page (`/checks/{name}`): uptime
figures, a latency chart of the window (one point per minute over 24 h, per hour beyond), its
incidents and its recent runs.

Public mode (`[status_page] public = true`) shows names, status, uptime and latency only: no
messages, readiness reasons, alerts, silences, addresses or tree; of an SLO only its name,
objective and whether error budget is left; `hide` leaves checks out.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Protocol

import jinja2
from markupsafe import Markup

from actors.configtypes import format_duration
from actors.history.repository import StoredResult
from actors.history.rollup import HOUR, SLOTS, WINDOWS, Bucket, Incident, Window
from actors.models import CheckResult
from actors.state import NOT_RUN_YET, PENDING, HealthSnapshot
from actors.web.charts import TICKS, ChartPoint, latency_chart, sparkline, uptime_bar
from actors.web.documents import iso_time
from actors.web.statusconfig import StatusPageConfig

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "REFRESH_SECONDS",
    "STATUS_PAGE_HEADERS",
    "AlertLine",
    "HistoryReader",
    "MaintenanceLine",
    "PageSources",
    "SilenceLine",
    "SloLine",
    "StatusPages",
    "format_latency",
    "format_ratio",
]

REFRESH_SECONDS = 10
RECENT_RUNS = 50
"""Runs listed on a check's page."""

_CSS = resources.files("actors.web").joinpath("templates/status.css").read_text("utf-8")
_CSS_HASH = base64.b64encode(hashlib.sha256(_CSS.encode()).digest()).decode()

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; "
    f"style-src 'sha256-{_CSS_HASH}'; "
    "img-src 'self' data:; "
    "base-uri 'none'; "
    "form-action 'none'; "
    "frame-ancestors 'none'"
)
"""Nothing but the pages' own inline stylesheet may load or run."""

STATUS_PAGE_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
"""Response headers of the pages."""

_KNOWN = frozenset(("healthy", "degraded", "unhealthy", "pass", "warn", "fail", "pending"))


class HistoryReader(Protocol):
    """What the pages read of the check history (`HistoryRecorder` is one)."""

    def columns(
        self, check: str, window: Window, now: float
    ) -> tuple[list[int], list[int], list[int], list[int]]:
        """The window's slots as columns: runs, failures, latency sum and max (us)."""
        ...

    def totals(self, check: str, window: Window, now: float) -> tuple[int, int]:
        """(runs, failures) over the window."""
        ...

    def shape(self, check: str, window: Window) -> int:
        """Changes whenever the check's uptime bar over the window shows something new."""
        ...

    def open_incidents(self) -> Mapping[str, Incident]:
        """The incidents going on now, by check."""
        ...

    async def buckets(self, check: str, window: Window, now: float) -> list[Bucket]:
        """The check's buckets over the window, oldest first."""
        ...

    async def results(self, check: str, limit: int) -> list[StoredResult]:
        """The check's newest runs, newest first."""
        ...

    async def incidents(self, check: str, since: float) -> list[Incident]:
        """The check's incidents open or ended after `since`, newest first."""
        ...


@dataclass(frozen=True, slots=True)
class AlertLine:
    """An alert as the overview lists it."""

    name: str
    state: str
    since: float
    summary: str = ""


@dataclass(frozen=True, slots=True)
class SilenceLine:
    """An active silence as the overview lists it."""

    matchers: str
    ends_at: float
    created_by: str = ""
    comment: str = ""


@dataclass(frozen=True, slots=True)
class MaintenanceLine:
    """A maintenance window in progress."""

    comment: str
    matchers: str = ""


@dataclass(frozen=True, slots=True)
class SloLine:
    """An SLO as the overview lists it: ratios in [0, 1] (None over a window without events);
    `page_burn` and `ticket_burn` the burn rates over the windows of the page and ticket
    alerts, by window name; `paging` whether the page alert's condition holds."""

    name: str
    objective: float
    sli: float | None
    budget_remaining: float | None
    page_burn: Sequence[tuple[str, float | None]] = ()
    ticket_burn: Sequence[tuple[str, float | None]] = ()
    paging: bool = False
    error: str = ""


def _burn(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.2f}"


def _budget_text(remaining: float | None) -> str:
    """The error budget remaining as a percentage, negative once overspent ("-" if unknown)."""
    if remaining is None or remaining >= 0:
        return format_ratio(remaining)
    return f"{remaining * 100:.2f}%"


def _budget_bar(remaining: float | None) -> Markup:
    """The error budget remaining as a small SVG bar (empty when unknown or spent)."""
    share = 0.0 if remaining is None else min(1.0, max(0.0, remaining))
    label = "error budget unknown" if remaining is None else f"{format_ratio(share)} left"
    return Markup(
        '<svg class="budget" viewBox="0 0 100 6" preserveAspectRatio="none" role="img" '
        f'aria-label="{Markup.escape(label)}"><rect class="none" width="100" height="6"/>'
        f'<rect class="left" width="{share * 100:.1f}" height="6"/></svg>'
    )


def _nothing(_now: float) -> Sequence[Any]:
    return ()


@dataclass(frozen=True, slots=True)
class PageSources:
    """Where the overview reads what the health state does not hold (each is called per page;
    all optional). `groups()` maps a check to its group, `tree()` is the supervision tree
    snapshot (None before it runs)."""

    alerts: Callable[[float], Sequence[AlertLine]] = _nothing
    silences: Callable[[float], Sequence[SilenceLine]] = _nothing
    maintenance: Callable[[float], Sequence[MaintenanceLine]] = _nothing
    slos: Callable[[float], Sequence[SloLine]] = _nothing
    groups: Callable[[], Mapping[str, str]] = field(default=dict)
    tree: Callable[[], object | None] = field(default=lambda: None)


def format_latency(seconds: float) -> str:
    """Latency as shown: whole milliseconds, one decimal below 10 ms (a 0.4 ms check is not 0)."""
    ms = seconds * 1000
    return f"{ms:.1f} ms" if ms < 10 else f"{ms:.0f} ms"


def format_ratio(ratio: float | None) -> str:
    """An uptime ratio as a percentage: two decimals, never rounded up to 100% ("-" if none)."""
    if ratio is None:
        return "-"
    if ratio >= 1.0:
        return "100%"
    return f"{int(ratio * 10_000) / 100:.2f}%"


def _clock(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))


def _blocked(result: CheckResult) -> tuple[list[str], str]:
    blocked = result.details.get("blocked_by")
    if not blocked:
        return [], ""
    names = [str(n) for n in blocked] if isinstance(blocked, list | tuple) else [str(blocked)]
    own = ""
    own_status = result.details.get("own_status")
    if own_status is not None:
        own = str(own_status)
        own_message = result.details.get("own_message")
        if own_message:
            own += f" ({own_message})"
    return names, own


def _tree_html(node: object, loop_now: float | None = None) -> str:
    """The supervision tree as nested list items (every value escaped)."""
    children = getattr(node, "children", ())
    parts: list[str] = []
    for child in children:
        nested = getattr(child, "supervisor", None)
        state = getattr(getattr(child, "state", None), "value", str(getattr(child, "state", "")))
        restarts = getattr(child, "restarts", 0)
        line = (
            f"<li><span>{Markup.escape(child.id)}</span> "
            f'<span class="state-{Markup.escape(state)}">{Markup.escape(state)}</span>'
            + (f' <span class="muted">{restarts} restarts</span>' if restarts else "")
        )
        if nested is not None:
            line += f"<ul>{_tree_html(nested)}</ul>"
        parts.append(line + "</li>")
    return "".join(parts)


class StatusPages:
    """Renders the overview and the check pages (see the module docstring).

    Args:
        config: [status_page].
        service: the service name (the title when `config.title` is empty).
        version: shown in the footer (not in public mode).
        history: the check history (None: bars and charts are empty).
        sources: alerts, silences, maintenance, SLOs, groups, tree.
    """

    def __init__(
        self,
        *,
        config: StatusPageConfig,
        service: str,
        version: str,
        history: HistoryReader | None = None,
        sources: PageSources | None = None,
    ) -> None:
        self.config = config
        self._title = config.title or service
        self._version = version
        self._history = history
        self._sources = sources or PageSources()
        self._hidden = frozenset(config.hide)
        # Bars and sparklines of the last page, by (check, chart): see `_charts`.
        self._drawn: dict[tuple[str, str], tuple[tuple[int, int], Markup]] = {}
        self._env = jinja2.Environment(
            loader=jinja2.PackageLoader("actors.web", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.globals.update(css=_CSS, known=_KNOWN, refresh=REFRESH_SECONDS)

    @property
    def history(self) -> HistoryReader | None:
        """The check history the pages read (None: none kept)."""
        return self._history

    @property
    def public(self) -> bool:
        """Whether the pages are in public mode."""
        return self.config.public

    def visible(self, snapshot: HealthSnapshot, name: str) -> bool:
        """Whether check `name` exists and is not hidden."""
        known = name in snapshot.configured or name in snapshot.results
        return known and name not in self._hidden

    def _common(self, now: float, uptime: float) -> dict[str, Any]:
        return {
            "title": self._title,
            "public": self.public,
            "version": self._version,
            "uptime": format_duration(int(uptime)),
            "rendered": iso_time(now),
            "windows": list(WINDOWS),
        }

    def _uptimes(self, name: str, now: float) -> list[tuple[str, str]]:
        history = self._history
        out: list[tuple[str, str]] = []
        for window in WINDOWS.values():
            if history is None:
                out.append((window.name, format_ratio(None)))
                continue
            count, failures = history.totals(name, window, now)
            out.append((window.name, format_ratio((count - failures) / count if count else None)))
        return out

    def _charts(
        self,
        name: str,
        window: Window,
        now: float,
        starts: list[int],
        drawn: dict[tuple[str, str], tuple[tuple[int, int], Markup]],
    ) -> tuple[Markup, Markup]:
        """`name`'s uptime bar over `window` and its 24 h latency sparkline (of the completed
        slots), each drawn again only when its strip's shape or slot changed since the last
        page: a thousand checks cost a thousand cache look-ups, not ninety thousand slots."""
        history = self._history
        day = WINDOWS["24h"]
        charts: list[Markup] = []
        for kind, strip in (("bar", window), ("spark", day)):
            key = (history.shape(name, strip) if history else -1, int(now // strip.slot))
            cached = self._drawn.get((name, kind + strip.name))
            if cached is not None and cached[0] == key:
                svg = cached[1]
            elif history is None:
                empty = [0] * SLOTS
                svg = Markup(
                    uptime_bar(
                        starts, empty, empty, window.slot, label=f"{name} over {window.name}"
                    )
                    if kind == "bar"
                    else sparkline([None] * SLOTS, label=f"{name} latency over 24h")
                )
            elif kind == "bar":
                runs, failures, _, _ = history.columns(name, window, now)
                svg = Markup(
                    uptime_bar(
                        starts, runs, failures, window.slot, label=f"{name} over {window.name}"
                    )
                )
            else:
                runs, _, sums, _ = history.columns(name, day, now)
                values = [s / c / 1000 if c else None for s, c in zip(sums, runs, strict=True)]
                values[-1] = None  # the slot in progress changes with every run
                svg = Markup(sparkline(values, label=f"{name} latency over 24h"))
            drawn[(name, kind + strip.name)] = (key, svg)
            charts.append(svg)
        return charts[0], charts[1]

    def overview(
        self, snapshot: HealthSnapshot, window: Window, *, now: float, uptime: float
    ) -> str:
        """The overview page at `now` with uptime bars of `window`."""
        public = self.public
        history = self._history
        groups_of = self._sources.groups()
        width = window.slot
        first = (int(now // width) - SLOTS + 1) * width
        starts = [first + i * width for i in range(SLOTS)]
        grouped: dict[str, list[dict[str, Any]]] = {"": []}
        counts: dict[str, int] = {}
        drawn: dict[tuple[str, str], tuple[tuple[int, int], Markup]] = {}
        for name in snapshot.names:
            if name in self._hidden:
                continue
            result = snapshot.results.get(name)
            critical = snapshot.configured.get(name, result.critical if result else False)
            status = PENDING if result is None else result.status.value
            counts[status] = counts.get(status, 0) + 1
            bar, spark = self._charts(name, window, now, starts, drawn)
            uptimes = self._uptimes(name, now)
            blocked, own = ([], "") if result is None else _blocked(result)
            row = {
                "name": name,
                "status": status,
                "critical": critical,
                "bar": bar,
                "spark": spark,
                "window_uptime": dict(uptimes)[window.name],
                "uptimes": uptimes,
                "latency": "" if result is None else format_latency(result.latency_seconds),
                "message": NOT_RUN_YET if result is None else result.message,
                "blocked": blocked,
                "own": own,
                "when": "" if result is None else iso_time(result.timestamp),
            }
            grouped.setdefault(groups_of.get(name, ""), []).append(row)
        # Keep what this page drew (and nothing of checks no longer shown) for the next one.
        self._drawn = drawn
        groups = [{"name": g, "rows": rows} for g, rows in grouped.items() if rows]
        summary = [(s, counts[s]) for s in ("fail", "warn", "pass", "pending") if counts.get(s)]
        incidents = []
        if history is not None:
            for name, incident in history.open_incidents().items():
                if name in self._hidden or not self.visible(snapshot, name):
                    continue
                incidents.append(
                    {
                        "check": name,
                        "since": _clock(incident.started),
                        "duration": format_duration(int(max(0.0, incident.duration(now)))),
                        "message": "" if public else incident.message,
                    }
                )
        sources = self._sources
        context = self._common(now, uptime) | {
            "status": snapshot.status,
            "description": self.config.description,
            "incidents": incidents,
            "maintenance": [
                {"comment": m.comment, "matchers": "" if public else m.matchers}
                for m in sources.maintenance(now)
            ],
            "readiness": None if public else snapshot.readiness(),
            "summary": summary,
            "window": window.name,
            "ticks": Markup(TICKS),
            "groups": groups,
            "alerts": []
            if public
            else [
                {"name": a.name, "state": a.state, "since": _clock(a.since), "summary": a.summary}
                for a in sources.alerts(now)
            ],
            "silences": []
            if public
            else [
                {
                    "matchers": s.matchers,
                    "until": _clock(s.ends_at),
                    "created_by": s.created_by,
                    "comment": s.comment,
                }
                for s in sources.silences(now)
            ],
            "slos": [
                {
                    "name": o.name,
                    "objective": format_ratio(o.objective),
                    "budget_left": o.budget_remaining is None or o.budget_remaining > 0,
                }
                if public
                else {
                    "name": o.name,
                    "objective": format_ratio(o.objective),
                    "sli": format_ratio(o.sli),
                    "budget": _budget_text(o.budget_remaining),
                    "budget_bar": _budget_bar(o.budget_remaining),
                    "budget_left": o.budget_remaining is None or o.budget_remaining > 0,
                    "page_burn": [(w, _burn(r)) for w, r in o.page_burn],
                    "ticket_burn": [(w, _burn(r)) for w, r in o.ticket_burn],
                    "paging": o.paging,
                    "error": o.error,
                }
                for o in sources.slos(now)
            ],
            "tree": "",
        }
        if not public:
            tree = sources.tree()
            context["tree"] = Markup(_tree_html(tree)) if tree is not None else ""
        return self._env.get_template("overview.html").render(context)

    async def check_page(
        self, snapshot: HealthSnapshot, name: str, window: Window, *, now: float, uptime: float
    ) -> str:
        """The page of check `name` (which must be `visible`) over `window`.

        Raises:
            actors.store.errors.StoreError: the history cannot be read.
        """
        public = self.public
        history = self._history
        result = snapshot.results.get(name)
        buckets: list[Bucket] = []
        incidents: list[Incident] = []
        results: list[StoredResult] = []
        if history is not None:
            buckets = await history.buckets(name, window, now)
            incidents = await history.incidents(name, now - window.seconds)
            results = await history.results(name, RECENT_RUNS)
        points = [
            ChartPoint(
                b.start + b.resolution / 2,
                b.lat_avg / 1000,
                b.lat_p95 / 1000,
                b.count,
                b.failures,
            )
            for b in buckets
            if b.count
        ]
        chart = latency_chart(
            points,
            since=now - window.seconds,
            until=now,
            label=f"{name} latency over {window.name}",
        )
        context = self._common(now, uptime) | {
            "name": name,
            "status": PENDING if result is None else result.status.value,
            "uptimes": self._uptimes(name, now),
            "latency": "" if result is None else format_latency(result.latency_seconds),
            "message": "" if public or result is None else result.message,
            "when": "" if result is None else iso_time(result.timestamp),
            "window": window.name,
            "resolution": "hour" if window.resolution == HOUR else "minute",
            "chart": Markup(chart),
            "points": len(points),
            "incidents": [
                {
                    "since": _clock(i.started),
                    "until": "" if i.ended is None else _clock(i.ended),
                    "duration": format_duration(int(max(0.0, i.duration(now)))),
                    "message": i.message,
                    "active": i.active,
                }
                for i in incidents
            ],
            "results": [
                {
                    "when": iso_time(r.at),
                    "status": r.status,
                    "latency": format_latency(r.latency_us / 1_000_000),
                    "message": r.message,
                }
                for r in results
            ],
        }
        return self._env.get_template("check.html").render(context)

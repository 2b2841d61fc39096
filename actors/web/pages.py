"""The status page routes: `/`, `/checks/{name}`, badges and the uptime API (a blueprint).

- `GET /?window=24h|7d|30d|90d` and `GET /checks/{name}?window=...`: the pages of
  `actors.web.statuspage` (an unknown window answers 400, an unknown or hidden check 404).
- `GET /api/v1/checks/{name}/badge.svg`: a shields-style badge. `kind=status` (default): the
  check's status; `kind=uptime&window=24h`: its uptime over the window (default 24h);
  `kind=latency&window=24h`: its mean latency over the window. Cacheable for
  `BADGE_MAX_AGE` seconds (`public` in public mode, `private` otherwise).
- `GET /api/v1/checks/{name}/uptime?window=30d`: `{"check", "window", "ratio", "runs",
  "failures", "incidents": [...]}` (ratio null without runs; incidents of the window, newest
  first, with their first failure message unless the page is public).

Every error is `{"error": "..."}`: 404 for an unknown or hidden check, 400 for a bad `window` or
`kind`.

Access (`actors.web.access`): every route here needs the `read` scope, or none in public mode
(`[status_page] public = true`: scope `public`, also outside `allow_from`).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from quart import Blueprint, Response, request

from actors.clock import Clock
from actors.history.errors import WindowError
from actors.history.rollup import WINDOWS, Window, parse_window
from actors.state import HealthState
from actors.web.access import Scope, requires
from actors.web.charts import badge
from actors.web.documents import iso_time
from actors.web.responses import json_error
from actors.web.statuspage import STATUS_PAGE_HEADERS, StatusPages, format_latency, format_ratio

__all__ = ["BADGE_MAX_AGE", "BADGE_KINDS", "create_blueprint"]

BADGE_MAX_AGE = 60
BADGE_KINDS = ("status", "uptime", "latency")

_HTML = "text/html; charset=utf-8"
_STATUS_TONES = {"pass": "pass", "warn": "warn", "fail": "fail"}


def _uptime_tone(ratio: float | None) -> str:
    if ratio is None:
        return "none"
    return "good" if ratio >= 0.999 else "fair" if ratio >= 0.99 else "poor"


def create_blueprint(
    *,
    pages: StatusPages,
    health: HealthState,
    clock: Clock,
    uptime: Callable[[], float],
) -> Blueprint:
    """The status page routes (see the module docstring); `uptime()` is the monitor's."""
    bp = Blueprint("statuspage", __name__)
    scope = Scope.PUBLIC if pages.public else Scope.READ

    def _window(default: str = "24h") -> Window | Response:
        try:
            return parse_window(request.args.get("window"), default)
        except WindowError as exc:
            return json_error(400, str(exc))

    def _html(body: str, status: int = 200) -> Response:
        response = Response(body, status=status, content_type=_HTML)
        response.headers.update(STATUS_PAGE_HEADERS)
        return response

    @bp.get("/")
    @requires(scope)
    async def overview() -> Response:
        window = _window()
        if isinstance(window, Response):
            return window
        snapshot = health.snapshot
        return _html(pages.overview(snapshot, window, now=clock.now(), uptime=uptime()))

    @bp.get("/checks/<name>")
    @requires(scope)
    async def check_page(name: str) -> Response:
        snapshot = health.snapshot
        if not pages.visible(snapshot, name):
            return json_error(404, f"no check named {name!r}")
        window = _window()
        if isinstance(window, Response):
            return window
        body = await pages.check_page(snapshot, name, window, now=clock.now(), uptime=uptime())
        return _html(body)

    @bp.get("/api/v1/checks/<name>/badge.svg")
    @requires(scope)
    async def check_badge(name: str) -> Response:
        snapshot = health.snapshot
        if not pages.visible(snapshot, name):
            return json_error(404, f"no check named {name!r}")
        kind = request.args.get("kind") or "status"
        if kind not in BADGE_KINDS:
            return json_error(
                400, f"unknown badge kind {kind!r}; use one of {', '.join(BADGE_KINDS)}"
            )
        window = _window()
        if isinstance(window, Response):
            return window
        now = clock.now()
        history = pages.history
        if kind == "status":
            result = snapshot.results.get(name)
            value = "pending" if result is None else result.status.value
            svg = badge(name, value, _STATUS_TONES.get(value, "pending"))
        elif kind == "uptime":
            count, failures = (0, 0) if history is None else history.totals(name, window, now)
            ratio = (count - failures) / count if count else None
            svg = badge(f"uptime {window.name}", format_ratio(ratio), _uptime_tone(ratio))
        else:
            runs, _, sums, _ = (
                ([], [], [], []) if history is None else history.columns(name, window, now)
            )
            total = sum(runs)
            value = format_latency(sum(sums) / total / 1_000_000) if total else "-"
            svg = badge(f"latency {window.name}", value, "good" if total else "none")
        response = Response(svg, status=200, content_type="image/svg+xml; charset=utf-8")
        scope = "public" if pages.public else "private"
        response.headers["Cache-Control"] = f"{scope}, max-age={BADGE_MAX_AGE}"
        response.headers["Content-Security-Policy"] = "default-src 'none'"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    @bp.get("/api/v1/checks/<name>/uptime")
    @requires(scope)
    async def check_uptime(name: str) -> Response:
        snapshot = health.snapshot
        if not pages.visible(snapshot, name):
            return json_error(404, f"no check named {name!r}")
        window = _window("30d")
        if isinstance(window, Response):
            return window
        now = clock.now()
        history = pages.history
        count, failures = (0, 0) if history is None else history.totals(name, window, now)
        incidents = [] if history is None else await history.incidents(name, now - window.seconds)
        body = {
            "check": name,
            "window": window.name,
            "windows": list(WINDOWS),
            "ratio": (count - failures) / count if count else None,
            "runs": count,
            "failures": failures,
            "incidents": [
                {
                    "start": iso_time(i.started),
                    "startUnix": i.started,
                    "end": None if i.ended is None else iso_time(i.ended),
                    "endUnix": i.ended,
                    "durationSeconds": round(i.duration(now), 3),
                    **({} if pages.public else {"message": i.message}),
                }
                for i in incidents
            ],
        }
        return Response(json.dumps(body), status=200, content_type="application/json")

    return bp

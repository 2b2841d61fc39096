"""The status page with history, as a person sees it in headless Chromium: uptime bars drawn
from the stored history, a failing check highlighted, the check page's latency chart, badges,
and public mode. Screenshots (light and dark) of the overview and a check page are written to
$STATUS_SCREENSHOTS when set (the README's images: `STATUS_SCREENSHOTS=docs/images`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest
import trio

from actors.history import WINDOWS
from actors.store import Database
from actors.web.access import AccessGuard
from actors.web.app import create_app
from actors.web.charts import bar_class
from actors.web.config import SecurityConfig
from actors.web.server import HttpServer
from actors.web.statusconfig import StatusPageConfig
from actors.web.statuspage import PageSources, format_ratio

from .conftest import require_binary
from .history_demo import CHECKS, NOW, Demo, record_demo
from .test_statuspage_browser import Node, Rendered, png_size, render

SHOT = (1280, 1500)


@pytest.fixture
def chromium() -> str:
    """Chromium's path."""
    return require_binary("chromium")


class _Server:
    """The demo's app served on a free port for the length of an `async with`."""

    def __init__(self, demo: Demo, config: StatusPageConfig | None = None) -> None:
        app = create_app(
            health=demo.health,
            clock=demo.clock,
            version="1.2.3",
            service="blipee-os",
            status_page=config,
            history=demo.recorder,
            sources=PageSources(groups=lambda: demo.groups),
        )
        self.server = HttpServer(app=app, listen="127.0.0.1:0")
        self._nursery_manager = trio.open_nursery()

    async def __aenter__(self) -> str:
        self._nursery = await self._nursery_manager.__aenter__()
        await self._nursery.start(self.server.run)
        return f"http://127.0.0.1:{self.server.port}"

    async def __aexit__(self, *exc: object) -> None:
        self.server.stop()
        await self._nursery_manager.__aexit__(*exc)  # type: ignore[arg-type]


def _clean(rendered: Rendered, origin: str) -> None:
    """No console line (a blocked style or script logs one), nothing loaded from elsewhere."""
    assert rendered.console == []
    assert rendered.dom.iter("script") == []
    assert rendered.dom.iter("link") == []
    for element in rendered.dom.iter():
        for attribute in ("src", "href", "action", "srcset", "poster", "data"):
            value = element.attrs.get(attribute)
            if value is not None:
                relative = value.startswith(("/", "?")) and not value.startswith("//")
                assert relative or value.startswith(origin + "/"), (element.tag, value)
        for attribute in ("fill", "style"):
            assert "url(http" not in element.attrs.get(attribute, "")


def _rows(dom: Node) -> dict[str, Node]:
    return {row.attrs["data-check"]: row for row in dom.iter("tr") if "data-check" in row.attrs}


def _bar_slots(row: Node) -> list[str]:
    """The class of each slot of the row's uptime bar, from its merged rectangles."""
    slots: list[str] = []
    for rect in row.iter("rect"):
        if "data-from" in rect.attrs:
            assert int(rect.attrs["data-from"]) == len(slots)
            slots.extend([rect.attrs["class"]] * int(rect.attrs["data-slots"]))
    return slots


async def _expected_slots(database: Database, check: str, window: str) -> list[list[int]]:
    """[runs, failures] of each slot of `check`'s bar over `window`, from the stored buckets."""
    w = WINDOWS[window]
    last = int(NOW + 30) // w.slot
    first = last - 89
    rows = await database.fetchall(
        "SELECT b.start, b.count, b.failures FROM history_buckets b JOIN history_checks c"
        " ON c.id = b.check_id WHERE c.name = ? AND b.res = ?",
        (check, w.resolution),
    )
    counts = [[0, 0] for _ in range(90)]
    for row in rows:
        slot = int(row[0]) // w.slot
        if first <= slot <= last:
            counts[slot - first][0] += int(row[1])
            counts[slot - first][1] += int(row[2])
    return counts


async def _expected_bar(database: Database, check: str, window: str) -> list[str]:
    """The slot classes of `check`'s bar over `window`, from the stored buckets."""
    return [bar_class(c, f) for c, f in await _expected_slots(database, check, window)]


async def _expected_uptime(database: Database, check: str, window: str) -> str:
    """`check`'s uptime over `window` as shown, from the stored buckets."""
    slots = await _expected_slots(database, check, window)
    runs = sum(c for c, _ in slots)
    return format_ratio((runs - sum(f for _, f in slots)) / runs)


async def _save(rendered: Rendered, name: str) -> None:
    target = os.environ.get("STATUS_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(rendered.screenshot, Path(target) / f"{name}.png")


async def test_uptime_bars_match_the_stored_history(chromium: str, tmp_path: Path) -> None:
    with Database(tmp_path / "h.db", offload=False) as database:
        demo = await record_demo(database)
        async with _Server(demo) as origin:
            for window in ("24h", "7d", "30d"):
                url = f"{origin}/?window={window}"
                rendered = await render(chromium, url, tmp_path, name=f"bars-{window}")
                _clean(rendered, origin)
                rows = _rows(rendered.dom)
                assert list(rows) == ["payments", "website", "api", "database", "cache", "queue"]
                for name in CHECKS:
                    expected = await _expected_bar(database, name, window)
                    assert _bar_slots(rows[name]) == expected, (window, name)
                current = [a for a in rendered.dom.iter("a") if "current" in a.classes()]
                assert [a.text() for a in current] == [window]
            # The 24h bar: the api outage 10 to 13 hours ago is there, and only it.
            day = await _expected_bar(database, "api", "24h")
            assert {"down"} <= set(day)
            assert day.count("up") > 60
            # The failing check is highlighted, named in the incident banner, in its group.
            rendered = await render(chromium, origin + "/", tmp_path, name="overview")
            rows = _rows(rendered.dom)
            failing = [n for n, row in rows.items() if "fail" in row.classes()]
            assert failing == ["database"]
            banner = next(d for d in rendered.dom.iter("div") if "incidents" in d.classes())
            assert [li.text() for li in banner.iter("li")] == [
                "database failing since 2025-07-16 00:47 UTC (20m30s):"
                " connection refused (10.0.4.12:5432)"
            ]
            headings = [h.text() for h in rendered.dom.iter("h2")]
            assert headings[:2] == ["Frontend", "Backend"]
            uptime = {
                n: [d.text() for d in row.iter("div") if "title" in d.attrs]
                for n, row in rows.items()
            }
            assert uptime["website"] == ["24h 100%", "7d 100%", "30d 100%", "90d 100%"]
            api = await _expected_uptime(database, "api", "24h")
            assert api.startswith("87.")  # 3 of 24 hours failed
            assert uptime["api"][0] == f"24h {api}"


async def test_check_page_chart_has_a_point_per_bucket(chromium: str, tmp_path: Path) -> None:
    with Database(tmp_path / "h.db", offload=False) as database:
        demo = await record_demo(database)
        async with _Server(demo) as origin:
            for window, resolution in (("24h", 60), ("7d", 3600)):
                url = f"{origin}/checks/api?window={window}"
                rendered = await render(chromium, url, tmp_path, name=f"api-{window}")
                _clean(rendered, origin)
                since = NOW + 30 - WINDOWS[window].seconds
                row = await database.fetchone(
                    "SELECT COUNT(*) FROM history_buckets b JOIN history_checks c"
                    " ON c.id = b.check_id WHERE c.name = 'api' AND b.res = ? AND b.start > ?"
                    " AND b.count > 0",
                    (resolution, since),
                )
                assert row is not None
                lines = [p for p in rendered.dom.iter("polyline") if "avg" in p.classes()]
                assert len(lines) == 1
                assert int(lines[0].attrs["data-points"]) == row[0]
                assert len(lines[0].attrs["points"].split()) == row[0]
            assert row is not None
            assert row[0] in (7 * 24, 7 * 24 + 1)  # one point per hour of the week
            incidents = [r for r in rendered.dom.iter("tr") if "incident" in r.classes()]
            assert len(incidents) == 2
            runs = [r for r in rendered.dom.iter("tr") if "run" in r.classes()]
            assert len(runs) == 50


async def test_screenshots_light_and_dark(chromium: str, tmp_path: Path) -> None:
    with Database(tmp_path / "h.db", offload=False) as database:
        demo = await record_demo(database)
        async with _Server(demo) as origin:
            for path, name in (("/", "overview"), ("/checks/api", "check")):
                for scheme in ("light", "dark"):
                    shot = await render(
                        chromium,
                        origin + path,
                        tmp_path,
                        window=SHOT,
                        dark=scheme == "dark",
                        name=f"{name}-{scheme}",
                    )
                    _clean(shot, origin)
                    assert png_size(shot.screenshot) == SHOT
                    await _save(shot, f"status-{name}-{scheme}")


async def test_badges_and_uptime_api(tmp_path: Path) -> None:
    with Database(tmp_path / "h.db", offload=False) as database:
        demo = await record_demo(database)
        async with _Server(demo) as origin, httpx.AsyncClient(base_url=origin) as client:
            response = await client.get("/api/v1/checks/database/badge.svg")
            assert response.status_code == 200
            assert response.headers["content-type"] == "image/svg+xml; charset=utf-8"
            assert response.headers["cache-control"] == "private, max-age=60"
            assert "database: fail" in response.text
            response = await client.get("/api/v1/checks/api/badge.svg?kind=uptime&window=24h")
            assert f"uptime 24h: {await _expected_uptime(database, 'api', '24h')}" in response.text
            response = await client.get("/api/v1/checks/website/badge.svg?kind=latency")
            assert "latency 24h: " in response.text
            assert " ms</title>" in response.text
            response = await client.get("/api/v1/checks/api/uptime?window=7d")
            body = response.json()
            assert body["window"] == "7d"
            assert body["ratio"] == pytest.approx(1 - (36 + 18) / (7 * 288), abs=0.003)
            assert [i["message"] for i in body["incidents"]] == [
                "HTTP 503 Service Unavailable",
                "connect timeout after 2s",
            ]
            assert body["incidents"][0]["durationSeconds"] == 3 * 3600
            for url, status in [
                ("/api/v1/checks/nope/badge.svg", 404),
                ("/api/v1/checks/nope/uptime", 404),
                ("/api/v1/checks/api/uptime?window=1y", 400),
                ("/api/v1/checks/api/badge.svg?kind=uptime&window=2d", 400),
                ("/api/v1/checks/api/badge.svg?kind=colour", 400),
                ("/?window=5m", 400),
                ("/checks/nope", 404),
            ]:
                response = await client.get(url)
                assert response.status_code == status, url
                assert "error" in response.json()


async def test_public_mode_shows_names_and_status_only(chromium: str, tmp_path: Path) -> None:
    config = StatusPageConfig(
        public=True, title="Acme status", description="Our services.", hide=("queue",)
    )
    with Database(tmp_path / "h.db", offload=False) as database:
        demo = await record_demo(database)
        async with _Server(demo, config) as origin:
            rendered = await render(chromium, origin + "/", tmp_path, name="public")
            _clean(rendered, origin)
            text = rendered.dom.text()
            assert rendered.dom.iter("h1")[0].text() == "Acme status unhealthy"
            assert "Our services." in text
            assert "queue" not in _rows(rendered.dom)
            for secret in ("10.0.4.12", "connection refused", "HTTP 503", "version", "Alerts"):
                assert secret not in text, secret
            page = await render(chromium, origin + "/checks/api", tmp_path, name="public-api")
            assert "HTTP 503" not in page.dom.text()
            async with httpx.AsyncClient(base_url=origin) as client:
                badge = await client.get("/api/v1/checks/api/badge.svg")
                assert badge.headers["cache-control"] == "public, max-age=60"
                assert (await client.get("/api/v1/checks/queue/badge.svg")).status_code == 404
                assert (await client.get("/checks/queue")).status_code == 404
                body = (await client.get("/api/v1/checks/api/uptime")).json()
                assert all("message" not in i for i in body["incidents"])


async def test_public_mode_routes_need_no_token_where_reads_do(tmp_path: Path) -> None:
    security = SecurityConfig(api_token="s3cret", read_requires_token=True)
    with Database(tmp_path / "h.db", offload=False) as database:
        demo = await record_demo(database)
        for public, expected in ((False, 401), (True, 200)):
            app = create_app(
                health=demo.health,
                clock=demo.clock,
                access=AccessGuard(security, listen="127.0.0.1:0"),
                status_page=StatusPageConfig(public=public),
                history=demo.recorder,
            )
            client = app.test_client()
            for url in (
                "/",
                "/checks/api",
                "/api/v1/checks/api/badge.svg",
                "/api/v1/checks/api/uptime",
            ):
                response = await client.get(url)
                assert response.status_code == expected, (public, url)
            # The rest of the API still needs its token.
            assert (await client.get("/api/v1/checks")).status_code == 401

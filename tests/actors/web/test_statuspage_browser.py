"""The status page (`GET /`) as a person sees it: the real app served on a socket, rendered by
headless Chromium (`--dump-dom` for the DOM after load, `--screenshot` for a picture).

Chromium runs as a subprocess through `trio.run_process`, so the server keeps answering on the
test's trio loop; each run is bounded and its whole process group killed on timeout. Chromium's
console is logged to stderr: a Content-Security-Policy violation (a style or script the page's
own policy blocks) shows up there as a CONSOLE line and fails the test.
"""

from __future__ import annotations

import contextlib
import os
import signal
import struct
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
import trio

from actors.clock import FixedClock
from actors.models import CheckStatus
from actors.state import HealthState
from actors.web.app import create_app
from actors.web.server import HttpServer

from .conftest import require_binary, result

P, W, F = CheckStatus.PASS, CheckStatus.WARN, CheckStatus.FAIL

BROWSER_TIMEOUT = 30.0
WINDOW = (1280, 900)
HOSTILE = (
    "<script>document.title='pwned'</script>"
    '<img src="https://evil.example/x.png" onerror="document.body.dataset.pwned=1">'
)


# -- a small DOM built from Chromium's serialisation ---------------------------------------------

_VOID = frozenset(
    ("area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr")
)

_BLOCK = frozenset(("div", "p", "ul", "li", "table", "tr", "td", "th", "h1", "footer", "main"))


@dataclass
class Node:
    """One element of the dumped DOM."""

    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    def iter(self, tag: str | None = None) -> list[Node]:
        """This element and its descendants (only `tag` elements when given), document order."""
        found = [self] if tag is None or self.tag == tag else []
        for child in self.children:
            if isinstance(child, Node):
                found.extend(child.iter(tag))
        return found

    def text(self) -> str:
        """The text content, whitespace collapsed; block elements start on their own line."""
        parts: list[str] = []
        for child in self.children:
            if isinstance(child, str):
                parts.append(child)
            else:
                parts.append(f" {child.text()} " if child.tag in _BLOCK else child.text())
        return " ".join("".join(parts).split())

    def classes(self) -> set[str]:
        """The element's classes."""
        return set(self.attrs.get("class", "").split())


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self._stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self._stack[-1].children.append(node)
        if tag not in _VOID:
            self._stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self._stack) - 1, 0, -1):
            if self._stack[i].tag == tag:
                del self._stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self._stack[-1].children.append(data)


def parse(html: str) -> Node:
    """The DOM tree of `html`."""
    builder = _Builder()
    builder.feed(html)
    builder.close()
    return builder.root


# -- the browser -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    """What Chromium made of a page."""

    dom: Node
    console: list[str]
    screenshot: Path


async def _kill_group(process: trio.Process) -> None:
    # Chromium starts a zygote, a renderer and a GPU process: end the whole group we started.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


async def render(
    chromium: str,
    url: str,
    workdir: Path,
    *,
    window: tuple[int, int] = WINDOW,
    dark: bool = False,
    name: str = "page",
) -> Rendered:
    """Load `url` in headless Chromium: the DOM after load, console lines, a screenshot
    (`dark`: the reader prefers a dark colour scheme).

    Raises:
        trio.TooSlowError: Chromium did not finish within BROWSER_TIMEOUT.
        AssertionError: Chromium exited with an error.
    """
    profile = workdir / f"profile-{name}"
    profile.mkdir()
    shot = workdir / f"{name}.png"
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        f"--window-size={window[0]},{window[1]}",
        *(["--blink-settings=preferredColorScheme=0", "--force-dark-mode"] if dark else []),
        f"--screenshot={shot}",
        "--dump-dom",
        url,
    ]
    with trio.fail_after(BROWSER_TIMEOUT):
        done = await trio.run_process(
            command,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            start_new_session=True,
            deliver_cancel=_kill_group,
        )
    stderr = done.stderr.decode(errors="replace")
    assert done.returncode == 0, f"chromium exited with {done.returncode}:\n{stderr[-3000:]}"
    console = [line for line in stderr.splitlines() if ":CONSOLE" in line]
    return Rendered(parse(done.stdout.decode()), console, shot)


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _rows(dom: Node) -> dict[str, Node]:
    """The check rows by check name."""
    return {row.attrs["data-check"]: row for row in dom.iter("tr") if "check" in row.classes()}


def _status_badge(row: Node) -> Node:
    """The status badge of a check row."""
    return next(span for span in row.iter("span") if "badge" in span.classes())


_TEXT_CELLS = ("name", "status", "message", "latency", "when")


def _cells(row: Node) -> dict[str, str]:
    """The text cells of a check row (the uptime bar and figures are checked on their own)."""
    cells = {cell.attrs.get("class", "").split()[0]: cell.text() for cell in row.iter("td")}
    return {key: cells[key] for key in _TEXT_CELLS if key in cells}


# -- the tests -------------------------------------------------------------------------------


@pytest.fixture
def chromium() -> str:
    """Chromium's path (a plain fixture: a skip raised inside the trio run loses its reason)."""
    return require_binary("chromium")


async def _serve_and_render(
    chromium: str, state: HealthState, clock: FixedClock, tmp_path: Path
) -> Rendered:
    app = create_app(health=state, clock=clock, version="1.2.3", service="blipee-os")
    server = HttpServer(app=app, listen="127.0.0.1:0")
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        origin = f"http://127.0.0.1:{server.port}"
        async with httpx.AsyncClient() as client:
            response = await client.get(origin + "/")
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        policy = [p.strip() for p in response.headers["content-security-policy"].split(";")]
        assert "default-src 'none'" in policy
        assert not any("unsafe" in p or "*" in p or "http" in p for p in policy), policy
        assert "frame-ancestors 'none'" in policy
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store"
        rendered = await render(chromium, origin + "/", tmp_path)
        server.stop()
    # Nothing on the page points anywhere but its own origin.
    for element in rendered.dom.iter():
        for attribute in ("src", "href", "action", "srcset", "poster", "data"):
            value = element.attrs.get(attribute)
            if value is not None:
                relative = value.startswith("/") and not value.startswith("//")
                assert relative or value.startswith(origin + "/"), (element.tag, value)
    assert rendered.dom.iter("script") == []
    assert rendered.dom.iter("link") == []
    assert rendered.dom.iter("iframe") == []
    # The page's own policy blocked nothing (a blocked style or script logs a CONSOLE line).
    assert rendered.console == []
    # Refreshes itself.
    refresh = [m for m in rendered.dom.iter("meta") if m.attrs.get("http-equiv") == "refresh"]
    assert [m.attrs["content"] for m in refresh] == ["10"]
    assert png_size(rendered.screenshot) == WINDOW
    return rendered


async def test_status_page_in_a_browser(chromium: str, tmp_path: Path) -> None:
    clock = FixedClock(1_752_580_800.0)
    configured = {"database": True, "api": False, "cache": False, "agents": False}
    state = HealthState(checks={**configured, "payments": False, "mlModels": False}, clock=clock)
    state.publish(
        result(
            "database",
            F,
            critical=True,
            message="postgres: connection refused (127.0.0.1:5432)",
            latency=2.0,
        )
    )
    state.publish(
        result(
            "api",
            F,
            message="blocked: dependency database fails",
            latency=0.012,
            details={"blocked_by": ["database"], "own_status": "pass", "own_message": "HTTP 200"},
        )
    )
    state.publish(result("cache", W, message="redis PONG (slow: 312 ms > 200 ms)", latency=0.312))
    state.publish(result("agents", P, message="All 3 agents healthy", latency=0.0004))
    state.publish(result("payments", W, message=HOSTILE, latency=0.087))
    clock.advance(3725)

    rendered = await _serve_and_render(chromium, state, clock, tmp_path)
    dom = rendered.dom

    title = dom.iter("title")[0].text()
    assert title == "blipee-os status: unhealthy"
    heading = dom.iter("h1")[0]
    assert heading.text() == "blipee-os unhealthy"
    assert "s-unhealthy" in heading.iter("span")[0].classes()
    banner = next(d for d in dom.iter("div") if "banner" in d.classes())
    assert "not-ready" in banner.classes()
    assert [li.text() for li in banner.iter("li")] == [
        "critical check database fails: postgres: connection refused (127.0.0.1:5432)"
    ]
    summary = dom.iter("p")[[("summary" in p.classes()) for p in dom.iter("p")].index(True)]
    assert summary.text() == "fail 2 warn 2 pass 1 pending 1"
    footer = dom.iter("footer")[0].text()
    assert "Up 1h2m5s" in footer
    assert "version 1.2.3" in footer
    assert "rendered 2025-07-15T13:02:05Z" in footer

    rows = _rows(dom)
    assert list(rows) == ["database", "api", "cache", "agents", "payments", "mlModels"]
    cells = {name: _cells(row) for name, row in rows.items()}
    assert cells["database"] == {
        "name": "database critical",
        "status": "fail",
        "message": "postgres: connection refused (127.0.0.1:5432)",
        "latency": "2000 ms",
        "when": "2025-07-15T12:00:00Z",
    }
    assert cells["api"] == {
        "name": "api",
        "status": "fail",
        "message": "blocked: dependency database fails"
        " blocked by database · own result: pass (HTTP 200)",
        "latency": "12 ms",
        "when": "2025-07-15T12:00:00Z",
    }
    assert cells["cache"]["status"] == "warn"
    assert cells["cache"]["message"] == "redis PONG (slow: 312 ms > 200 ms)"
    assert cells["cache"]["latency"] == "312 ms"
    assert cells["agents"]["status"] == "pass"
    assert cells["agents"]["message"] == "All 3 agents healthy"
    assert cells["agents"]["latency"] == "0.4 ms"
    assert cells["mlModels"] == {
        "name": "mlModels",
        "status": "pending",
        "message": "not run yet",
        "latency": "",
        "when": "",
    }
    assert "s-pending" in _status_badge(rows["mlModels"]).classes()
    assert "pending" in rows["mlModels"].classes()
    for name, status in [("database", "fail"), ("api", "fail"), ("cache", "warn")]:
        badge = _status_badge(rows[name])
        assert f"s-{status}" in badge.classes(), name

    # The failing critical check is highlighted; nothing else is.
    highlighted = [n for n, row in rows.items() if {"fail", "critical"} <= row.classes()]
    assert highlighted == ["database"]
    assert [d.classes() for d in rows["api"].iter("div") if "blocked" in d.classes()] == [
        {"blocked"}
    ]
    assert [b.text() for b in rows["api"].iter("b")] == ["database"]

    # A hostile message is shown as text and creates no element.
    payments = rows["payments"]
    assert cells["payments"]["message"] == " ".join(HOSTILE.split())
    assert payments.iter("script") == []
    assert payments.iter("img") == []
    assert dom.iter("img") == []
    assert "data-pwned" not in dom.iter("body")[0].attrs


async def test_checks_not_run_yet_look_neutral_in_a_browser(chromium: str, tmp_path: Path) -> None:
    """Right after the start: every configured check is listed; those not run yet are pending
    (grey badge, "not run yet"), count as pending only, and leave the page healthy and ready."""
    clock = FixedClock(1_752_580_800.0)
    state = HealthState(checks={"database": True, "api": False, "cache": False}, clock=clock)
    state.publish(result("database", P, critical=True, message="Database healthy"))
    rendered = await _serve_and_render(chromium, state, clock, tmp_path)
    dom = rendered.dom
    assert dom.iter("h1")[0].text() == "blipee-os healthy"
    banner = next(d for d in dom.iter("div") if "banner" in d.classes())
    assert "ready" in banner.classes()
    summary = next(p for p in dom.iter("p") if "summary" in p.classes())
    assert summary.text() == "pass 1 pending 2"
    rows = _rows(dom)
    assert list(rows) == ["database", "api", "cache"]
    for name in ("api", "cache"):
        assert _cells(rows[name]) == {
            "name": name,
            "status": "pending",
            "message": "not run yet",
            "latency": "",
            "when": "",
        }
        assert rows[name].classes() == {"check", "pending"}
        assert "s-pending" in _status_badge(rows[name]).classes()
    assert not any("fail" in row.classes() or "warn" in row.classes() for row in rows.values())


async def test_empty_status_page_in_a_browser(chromium: str, tmp_path: Path) -> None:
    clock = FixedClock(1_752_580_800.0)
    state = HealthState(clock=clock)
    state.mark_started()
    rendered = await _serve_and_render(chromium, state, clock, tmp_path)
    dom = rendered.dom
    assert dom.iter("h1")[0].text() == "blipee-os healthy"
    banner = next(d for d in dom.iter("div") if "banner" in d.classes())
    assert "ready" in banner.classes()
    assert banner.text().startswith("Ready")
    assert _rows(dom) == {}
    empty = [row for row in dom.iter("tr") if "empty" in row.classes()]
    assert [row.text() for row in empty] == ["No checks configured."]

"""The status page (`GET /`): server-rendered HTML, no external assets, every value escaped."""

from __future__ import annotations

from html import escape

from actors.state import HealthSnapshot
from actors.web.documents import iso_time

__all__ = ["render_status_page"]

_COLORS = {
    "healthy": "#1a7f37",
    "degraded": "#9a6700",
    "unhealthy": "#cf222e",
    "pass": "#1a7f37",
    "warn": "#9a6700",
    "fail": "#cf222e",
    "pending": "#57606a",
}

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#1f2328}
h1{font-size:1.4rem}table{border-collapse:collapse;width:100%;max-width:70rem}
th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid #d0d7de;vertical-align:top}
th{background:#f6f8fa}.badge{display:inline-block;padding:.1rem .5rem;border-radius:1rem;
color:#fff;font-size:.85rem}.muted{color:#57606a;font-size:.9rem}
"""


def _badge(status: str) -> str:
    color = _COLORS.get(status, "#57606a")
    return f'<span class="badge" style="background:{color}">{escape(status)}</span>'


def render_status_page(
    snapshot: HealthSnapshot, *, now: float, version: str, service: str, uptime: float
) -> str:
    """The whole page for `snapshot` (refreshes itself every 10 s)."""
    rows: list[str] = []
    names = list(snapshot.configured) + [
        n for n in snapshot.results if n not in snapshot.configured
    ]
    for name in names:
        result = snapshot.results.get(name)
        critical = snapshot.configured.get(name, result.critical if result else False)
        if result is None:
            status, message, latency, when = "pending", "waiting for the first run", "", ""
        else:
            status = result.status.value
            message = result.message
            latency = f"{result.latency_seconds * 1000:.0f} ms"
            when = iso_time(result.timestamp)
        rows.append(
            "<tr>"
            f"<td>{escape(name)}{' <span class=muted>(critical)</span>' if critical else ''}</td>"
            f"<td>{_badge(status)}</td><td>{escape(message)}</td>"
            f"<td>{escape(latency)}</td><td class=muted>{escape(when)}</td>"
            "</tr>"
        )
    if not rows:
        rows.append('<tr><td colspan="5" class="muted">No checks configured.</td></tr>')
    readiness = snapshot.readiness()
    ready = "ready" if readiness.ready else "not ready: " + "; ".join(readiness.reasons)
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        '<meta http-equiv="refresh" content="10">'
        f"<title>{escape(service)} status</title><style>{_STYLE}</style></head><body>"
        f"<h1>{escape(service)} {_badge(snapshot.status)}</h1>"
        f'<p class="muted">{escape(ready)} · up {int(uptime)} s · version {escape(version)}'
        f" · {escape(iso_time(now))}</p>"
        "<table><thead><tr><th>Check</th><th>Status</th><th>Message</th><th>Latency</th>"
        "<th>Last run</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
        '<p class="muted">JSON: <a href="/api/health">/api/health</a> · '
        '<a href="/api/v1/checks">/api/v1/checks</a> · <a href="/api/v1/actors">/api/v1/actors'
        "</a></p></body></html>"
    )

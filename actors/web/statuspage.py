"""The status page (`GET /`): server-rendered HTML, no external assets, every value escaped.

The page has no script and loads nothing: its only style is the inline `<style>` block, allowed
by hash in `CONTENT_SECURITY_POLICY` (so even a style or script that slipped past escaping
would not run). It refreshes itself every `REFRESH_SECONDS` with a meta refresh.

What a person sees: the overall status, readiness (with the reasons when not ready), a count of
checks by status, then one row per check in configuration order: name (and whether it is
critical), status, message, what it is blocked by (`details["blocked_by"]`, with the check's own
result), latency and last run. A failing critical check's row is highlighted. A configured check
that has not run yet is listed from the start with a neutral grey "pending" badge, the message
"not run yet" in grey italics, and empty latency and last run; it is counted as pending, never as
failing.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from html import escape

from actors.configtypes import format_duration
from actors.models import CheckResult
from actors.state import NOT_RUN_YET, PENDING, HealthSnapshot
from actors.web.documents import iso_time

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "REFRESH_SECONDS",
    "STATUS_PAGE_HEADERS",
    "render_status_page",
]

REFRESH_SECONDS = 10

_STYLE = """
:root{color-scheme:light}
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem;color:#1f2328;
background:#fff;line-height:1.4}
main{max-width:72rem}
h1{font-size:1.5rem;margin:0 0 .6rem;display:flex;align-items:center;gap:.6rem}
.banner{padding:.6rem .9rem;border-radius:.4rem;margin:0 0 1rem;border:1px solid}
.banner p{margin:0}.banner ul{margin:.3rem 0 0;padding-left:1.2rem}
.banner.ready{background:#dafbe1;border-color:#4ac26b}
.banner.not-ready{background:#ffebe9;border-color:#ff8182}
.summary{margin:0 0 .6rem}
.summary .count{margin-right:1rem}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.45rem .6rem;border-bottom:1px solid #d0d7de;vertical-align:top}
th{background:#f6f8fa;font-weight:600}
td.message{overflow-wrap:anywhere;min-width:16rem}
td.name,td.latency,td.when{white-space:nowrap}
td.latency{text-align:right}
tr.fail.critical td{background:#ffebe9}
tr.fail.critical td.name{box-shadow:inset 4px 0 0 #cf222e;font-weight:600}
tr.pending td.message{color:#57606a;font-style:italic}
.badge{display:inline-block;padding:.1rem .55rem;border-radius:1rem;color:#fff;
font-size:.85rem;font-weight:600;line-height:1.5}
.s-healthy,.s-pass{background:#1a7f37}.s-degraded,.s-warn{background:#9a6700}
.s-unhealthy,.s-fail{background:#cf222e}.s-pending,.s-unknown{background:#57606a}
.tag{display:inline-block;margin-left:.15rem;padding:0 .4rem;border:1px solid #cf222e;
border-radius:.3rem;color:#a40e26;font-size:.75rem;font-weight:600;vertical-align:middle}
.blocked{margin-top:.25rem;color:#57606a;font-size:.9rem}
.blocked b{color:#1f2328}
.muted{color:#57606a;font-size:.9rem}
footer{margin-top:1rem}
a{color:#0969da}
"""

_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; "
    f"style-src 'sha256-{_STYLE_HASH}'; "
    "img-src data:; "
    "base-uri 'none'; "
    "form-action 'none'; "
    "frame-ancestors 'none'"
)
"""Nothing but the page's own inline style block may load or run."""

STATUS_PAGE_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
"""Response headers of `GET /`."""

_KNOWN = frozenset(("healthy", "degraded", "unhealthy", "pass", "warn", "fail", "pending"))


def _badge(status: str) -> str:
    css = status if status in _KNOWN else "unknown"
    return f'<span class="badge s-{css}">{escape(status)}</span>'


def _milliseconds(seconds: float) -> str:
    """Latency as shown: whole milliseconds, one decimal below 10 ms (a 0.4 ms check is not 0)."""
    ms = seconds * 1000
    return f"{ms:.1f} ms" if ms < 10 else f"{ms:.0f} ms"


def _blocked_by(result: CheckResult) -> str:
    """The "blocked by" line of a check held by failing dependencies ("" when not blocked)."""
    blocked = result.details.get("blocked_by")
    if not blocked:
        return ""
    if isinstance(blocked, list | tuple):
        names = ", ".join(f"<b>{escape(str(name))}</b>" for name in blocked)
    else:
        names = f"<b>{escape(str(blocked))}</b>"
    own = ""
    own_status = result.details.get("own_status")
    if own_status is not None:
        own = f" · own result: {escape(str(own_status))}"
        own_message = result.details.get("own_message")
        if own_message:
            own += f" ({escape(str(own_message))})"
    return f'<div class="blocked">blocked by {names}{own}</div>'


def _row(name: str, critical: bool, result: CheckResult | None) -> tuple[str, str]:
    """(status, row HTML) of one check."""
    if result is None:
        status, message, latency, when, blocked = PENDING, NOT_RUN_YET, "", "", ""
    else:
        status = result.status.value
        message = result.message
        latency = _milliseconds(result.latency_seconds)
        when = iso_time(result.timestamp)
        blocked = _blocked_by(result)
    classes = f"check {status}" + (" critical" if critical else "")
    tag = ' <span class="tag">critical</span>' if critical else ""
    return status, (
        f'<tr class="{classes}">'
        f'<td class="name">{escape(name)}{tag}</td>'
        f'<td class="status">{_badge(status)}</td>'
        f'<td class="message">{escape(message)}{blocked}</td>'
        f'<td class="latency">{escape(latency)}</td>'
        f'<td class="when muted">{escape(when)}</td>'
        "</tr>"
    )


def render_status_page(
    snapshot: HealthSnapshot, *, now: float, version: str, service: str, uptime: float
) -> str:
    """The whole page for `snapshot` (refreshes itself every `REFRESH_SECONDS`)."""
    rows: list[str] = []
    counts: dict[str, int] = {}
    for name in snapshot.names:
        result = snapshot.results.get(name)
        critical = snapshot.configured.get(name, result.critical if result else False)
        status, row = _row(name, critical, result)
        counts[status] = counts.get(status, 0) + 1
        rows.append(row)
    if not rows:
        rows.append(
            '<tr class="empty"><td colspan="5" class="muted">No checks configured.</td></tr>'
        )
    summary = " ".join(
        f'<span class="count">{_badge(status)} {counts[status]}</span>'
        for status in ("fail", "warn", "pass", "pending")
        if counts.get(status)
    )
    readiness = snapshot.readiness()
    if readiness.ready:
        banner = '<div class="banner ready"><p><b>Ready</b>: the readiness probe passes.</p></div>'
    else:
        reasons = "".join(f"<li>{escape(reason)}</li>" for reason in readiness.reasons)
        banner = f'<div class="banner not-ready"><p><b>Not ready</b></p><ul>{reasons}</ul></div>'
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">'
        f"<title>{escape(service)} status: {escape(snapshot.status)}</title>"
        f"<style>{_STYLE}</style></head><body><main>"
        f"<h1>{escape(service)} {_badge(snapshot.status)}</h1>"
        f"{banner}"
        + (f'<p class="summary">{summary}</p>' if summary else "")
        + "<table><thead><tr><th>Check</th><th>Status</th><th>Message</th><th>Latency</th>"
        "<th>Last run</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
        f'<footer class="muted"><p>Up {escape(format_duration(int(uptime)))} · version '
        f"{escape(version)} · rendered {escape(iso_time(now))} · refreshes every "
        f"{REFRESH_SECONDS} s</p>"
        '<p>JSON: <a href="/api/health">/api/health</a> · '
        '<a href="/api/v1/checks">/api/v1/checks</a> · <a href="/api/v1/actors">/api/v1/actors'
        "</a></p></footer></main></body></html>"
    )

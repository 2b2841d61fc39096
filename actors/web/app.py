"""`create_app`: the Quart-Trio application of the API listener (health, probes, status page).

Every answer is read from the `HealthState` snapshot and the metric store; no request runs a
check. Routes (see CONTRACT.md): `/api/health` (seed document, or the IETF draft format for
`Accept: application/health+json`; 503 when unhealthy; every configured check is listed, those
not run yet as pending, see `actors.web.documents`), `/api/health/live` (never depends on
checks), `/api/health/ready` (503 with reasons), `/api/v1/checks`, `/api/v1/checks/<name>`
(404 JSON when unknown), `/api/v1/actors` (the supervision tree), `/api/v1/audit` (the newest
`limit` entries of the access guard's audit log, `?limit=1..1000`, default 100; a token with
`read` always), `/openapi.json` (the API as OpenAPI 3.1, `actors.web.openapi`), and the
status pages and badges of `actors.web.pages` (`/`, `/checks/{name}`,
`/api/v1/checks/{name}/badge.svg`, `/api/v1/checks/{name}/uptime`). Other packages' blueprints
are registered as given. Every route declares its scope (`actors.web.access`): live and ready
are public, the others `read` (the status pages and badges `public` in public mode); the access
guard decides every request, the probe fast path included.

`/api/health` is rendered at most once per `render_interval` (100 ms) while checks keep
publishing, and reused while nothing changed (for up to 1 s): thousands of checks and thousands
of probe requests per second stay cheap.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable, Sequence
from importlib import metadata
from typing import Any

from quart import Blueprint, Response, request
from quart_trio import QuartTrio

from actors.clock import Clock, SystemClock
from actors.state import HealthState, OverallStatus
from actors.store.errors import StoreError
from actors.telemetry.protocols import MetricReader
from actors.web.access import AccessGuard, Scope, requires
from actors.web.config import SecurityConfig, ServerConfig
from actors.web.documents import (
    AppFigures,
    check_document,
    health_document,
    ietf_document,
    tree_document,
)
from actors.web.openapi import openapi_document
from actors.web.pages import create_blueprint as pages_blueprint
from actors.web.responses import json_error
from actors.web.statusconfig import StatusPageConfig
from actors.web.statuspage import HistoryReader, PageSources, StatusPages

__all__ = ["create_app", "read_figures"]

JSON = "application/json"
HEALTH_JSON = "application/health+json"
_LIVE = json.dumps({"status": "pass"}).encode()
_READY = json.dumps({"status": "ready"}).encode()
_PROBES = frozenset(("/api/health", "/api/health/live", "/api/health/ready"))


def _total(store: MetricReader, name: str, aggregate: str, window: float, now: float) -> float:
    try:
        return sum(store.aggregate(name, {}, aggregate, window, now=now).values())
    except Exception:  # not declared (yet): the figure is 0
        return 0.0


def read_figures(store: MetricReader | None, *, now: float, uptime: float) -> AppFigures:
    """The `/api/health` metrics block from the application's metrics over the last minute.

    requestsPerMinute = increase of api_requests_total; averageResponseTime (ms) = sum / count of
    api_request_duration_seconds observations; activeUsers = the `active_users` gauge(s).
    """
    if store is None:
        return AppFigures(uptime, 0.0, 0.0, 0.0)
    requests = _total(store, "api_requests_total", "increase", 60.0, now)
    count = _total(store, "api_request_duration_seconds", "count", 60.0, now)
    total = _total(store, "api_request_duration_seconds", "sum", 60.0, now)
    users = _total(store, "active_users", "last", 60.0, now)
    average = total / count * 1000.0 if count else 0.0
    return AppFigures(uptime, requests, average, users)


class _Rendered:
    __slots__ = ("at", "body", "status", "version")

    def __init__(self, version: int, at: float, body: bytes, status: int) -> None:
        self.version = version
        self.at = at
        self.body = body
        self.status = status


def _kind(accept: str) -> str:
    return HEALTH_JSON if HEALTH_JSON in accept else JSON


class _Documents:
    """Renders the probe documents from the current snapshot (with the render cache)."""

    def __init__(
        self,
        *,
        health: HealthState,
        store: MetricReader | None,
        clock: Clock,
        release: str,
        service: str,
        render_interval: float,
    ) -> None:
        self._health = health
        self._store = store
        self._clock = clock
        self._release = release
        self._service = service
        self._interval = render_interval
        self._cache: dict[str, _Rendered] = {}

    def health(self, kind: str) -> tuple[int, bytes]:
        """(status, body) of /api/health in `kind` (JSON or HEALTH_JSON)."""
        health = self._health
        snapshot = health.snapshot
        mono = self._clock.monotonic()
        cached = self._cache.get(kind)
        if cached is not None:
            age = mono - cached.at
            if age < self._interval or (cached.version == snapshot.version and age < 1.0):
                return cached.status, cached.body
        now = self._clock.now()
        uptime = health.uptime()
        if kind == HEALTH_JSON:
            document = ietf_document(
                snapshot, now=now, version=self._release, service=self._service, uptime=uptime
            )
        else:
            figures = read_figures(self._store, now=now, uptime=uptime)
            document = health_document(snapshot, now=now, version=self._release, figures=figures)
        status = 503 if snapshot.status == OverallStatus.UNHEALTHY else 200
        rendered = _Rendered(snapshot.version, mono, json.dumps(document).encode(), status)
        self._cache[kind] = rendered
        return status, rendered.body

    def ready(self) -> tuple[int, bytes]:
        """(status, body) of /api/health/ready."""
        readiness = self._health.snapshot.readiness()
        if readiness.ready:
            return 200, _READY
        body = {"status": "not ready", "reasons": list(readiness.reasons)}
        return 503, json.dumps(body).encode()


_Asgi = Callable[[Any, Any, Any], Awaitable[None]]


class _ProbeFastPath:
    """ASGI middleware answering GET/HEAD on the three probe routes without the framework.

    Probes are the hot path (Kubernetes, load balancers, uptime monitors); the rest of the
    routes go through Quart as usual. `/api/health` is decided by the access guard (`read`);
    live and ready are public.
    """

    def __init__(self, inner: _Asgi, documents: _Documents, access: AccessGuard) -> None:
        self._inner = inner
        self._documents = documents
        self._access = access

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path") if scope["type"] == "http" else None
        if path not in _PROBES or scope["method"] not in ("GET", "HEAD"):
            await self._inner(scope, receive, send)
            return
        kind = JSON
        decision = None
        if path == "/api/health":
            decision = await self._access.admit_asgi(Scope.READ, scope)
        if decision is not None and not decision.allowed:
            status, headers, body = decision.asgi()
            headers.append((b"content-length", str(len(body)).encode()))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            body = b"" if scope["method"] == "HEAD" else body
            await send({"type": "http.response.body", "body": body})
            return
        if path == "/api/health/live":
            status, body = 200, _LIVE
        elif path == "/api/health/ready":
            status, body = self._documents.ready()
        else:
            accept = b""
            for key, value in scope["headers"]:
                if key == b"accept":
                    accept = value
                    break
            kind = _kind(accept.decode("latin-1"))
            status, body = self._documents.health(kind)
        headers = [
            (b"content-type", kind.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )


def create_app(
    *,
    health: HealthState,
    blueprints: Sequence[Blueprint] = (),
    store: MetricReader | None = None,
    tree: Callable[[], object | None] | None = None,
    access: AccessGuard | None = None,
    version: str | None = None,
    service: str = "blipee-monitor",
    clock: Clock | None = None,
    render_interval: float = 0.1,
    status_page: StatusPageConfig | None = None,
    history: HistoryReader | None = None,
    sources: PageSources | None = None,
) -> QuartTrio:
    """Build the API application.

    `status_page` ([status_page]), `history` (the check history) and `sources` (alerts,
    silences, maintenance, groups; the tree defaults to `tree`) feed the status pages. `store`
    gives the document's request figures; `tree()` returns the supervision tree snapshot
    (None before the tree runs); `access` decides every request (default: the defaults of
    `[security]` and `[server]`: no token, listening on all addresses, so writes are refused);
    `version` defaults to the installed package's version.
    """
    # No static folder: the status page inlines its CSS, and a route without a scope is refused.
    app = QuartTrio(__name__, static_folder=None)
    app.config["JSON_SORT_KEYS"] = False
    wall: Clock = clock or SystemClock()
    release = version or _package_version()
    guard = access or AccessGuard(SecurityConfig(), listen=ServerConfig().listen)
    guard.install(app)
    documents = _Documents(
        health=health,
        store=store,
        clock=wall,
        release=release,
        service=service,
        render_interval=render_interval,
    )
    app.asgi_app = _ProbeFastPath(app.asgi_app, documents, guard)  # type: ignore[method-assign]

    # The probe routes are answered by `_ProbeFastPath` before Quart sees the request; these
    # views serve the same documents when the app is driven without it (Quart's test client).
    @app.get("/api/health")
    @requires(Scope.READ)
    async def api_health() -> Response:
        kind = _kind(request.headers.get("Accept", ""))
        status, body = documents.health(kind)
        return Response(body, status=status, content_type=kind)

    @app.get("/api/health/live")
    @requires(Scope.PUBLIC)
    async def api_live() -> Response:
        return Response(_LIVE, status=200, content_type=JSON)

    @app.get("/api/health/ready")
    @requires(Scope.PUBLIC)
    async def api_ready() -> Response:
        status, body = documents.ready()
        return Response(body, status=status, content_type=JSON)

    @app.get("/api/v1/checks")
    @requires(Scope.READ)
    async def api_checks() -> Response:
        snapshot = health.snapshot
        body = {
            "status": snapshot.status,
            "checks": [check_document(snapshot, name, history=False) for name in snapshot.names],
        }
        return Response(json.dumps(body).encode(), status=200, content_type=JSON)

    @app.get("/api/v1/checks/<name>")
    @requires(Scope.READ)
    async def api_check(name: str) -> Response:
        snapshot = health.snapshot
        if name not in snapshot.configured and name not in snapshot.results:
            return json_error(404, f"no check named {name!r}")
        body = check_document(snapshot, name, history=True)
        return Response(json.dumps(body).encode(), status=200, content_type=JSON)

    @app.get("/api/v1/actors")
    @requires(Scope.READ)
    async def api_actors() -> Response:
        snapshot = tree() if tree is not None else None
        if snapshot is None:
            return json_error(503, "the supervision tree is not running")
        document = tree_document(snapshot, loop_now=wall.monotonic(), wall_now=wall.now())
        body = json.dumps(document).encode()
        return Response(body, status=200, content_type=JSON)

    @app.get("/api/v1/audit")
    @requires(Scope.READ_WITH_TOKEN)
    async def api_audit() -> Response:
        try:
            limit = int(request.args.get("limit", "100"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 1000:
            return json_error(400, "limit must be a whole number from 1 to 1000")
        try:
            entries = await guard.audit.recent(limit)
        except StoreError as exc:
            return json_error(503, f"the audit log cannot be read: {exc}")
        body = json.dumps({"entries": [entry.to_json() for entry in entries]}).encode()
        return Response(body, status=200, content_type=JSON)

    described: list[bytes] = []

    @app.get("/openapi.json")
    @requires(Scope.READ)
    async def openapi() -> Response:
        if not described:  # built once, when every blueprint is registered
            described.append(json.dumps(openapi_document(app, version=release)).encode())
        return Response(described[0], status=200, content_type=JSON)

    @app.after_request
    async def _drain_body(response: Response) -> Response:
        # A view that answers without reading the request body (a 401 from a token check)
        # leaves the body unread; Hypercorn then cannot recycle the keep-alive connection and
        # the client's next request on it stalls. Reading it here (bounded by
        # MAX_CONTENT_LENGTH) keeps the connection usable.
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            with contextlib.suppress(Exception):
                await request.get_data()
        return response

    @app.errorhandler(404)
    async def not_found(_error: Exception) -> Response:
        return json_error(404, f"no route {request.path}")

    @app.errorhandler(405)
    async def not_allowed(_error: Exception) -> Response:
        return json_error(405, f"method {request.method} not allowed on {request.path}")

    @app.errorhandler(500)
    async def internal(_error: Exception) -> Response:
        return json_error(500, "internal error")

    if sources is None:
        sources = PageSources(tree=tree or (lambda: None))
    pages = StatusPages(
        config=status_page or StatusPageConfig(),
        service=service,
        version=release,
        history=history,
        sources=sources,
    )
    app.register_blueprint(
        pages_blueprint(pages=pages, health=health, clock=wall, uptime=health.uptime)
    )
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    return app


def _package_version() -> str:
    try:
        return metadata.version("blipee-monitor")
    except metadata.PackageNotFoundError:
        return "0.0.0"

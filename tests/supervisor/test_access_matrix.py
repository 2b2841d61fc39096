"""Every route x every kind of caller -> the status the access guard lets through or answers.

One table-driven test over the real composition (`supervisor.app.App` built from a TOML file:
the API app with every blueprint, and the /metrics app), driven in-process through ASGI (the
probe fast path included) with the caller's address set per case; the rows marked below also
run through real Hypercorn listeners of a running `App`.

Configurations:
- A: a named token per scope, `api_token`, `read_requires_token`, `allow_from` 127.0.0.0/8 and
  a `metrics_token`, on a loopback listener;
- B: the same with reads open (`read_requires_token = false`);
- C: no token at all, listening on 0.0.0.0 (the packaged default): writes refused;
- D: no token at all, listening on 127.0.0.1 (a laptop): writes open.

Cases (columns): `none` no Authorization; `wrong` an unknown bearer token; `read`, `events`,
`silences`, `test`, `reload` a named token holding just that scope (`read`, `events:write`,
`silences:write`, `alerts:test`, `config:reload`); `api` the `api_token` (every scope); `metrics`
the `metrics_token`; `outside` the `api_token` from an address outside `allow_from`; `origin` the
`api_token` with a foreign `Origin`; `form` the `api_token` with a `text/plain` body.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from actors.web.access import required_scope
from supervisor.app import App
from supervisor.config import load_config

# case -> (token name, token, scope): a named token holding just that scope.
SCOPED = {
    "read": ("reader", "t-read", "read"),
    "events": ("ingest", "t-events", "events:write"),
    "silences": ("silencer", "t-silences", "silences:write"),
    "test": ("tester", "t-test", "alerts:test"),
    "reload": ("reloader", "t-reload", "config:reload"),
}
TOKENS = {
    **{case: token for case, (_, token, _) in SCOPED.items()},
    "api": "t-api",
    "metrics": "t-metrics",
    "wrong": "t-wrong",
}
_NAMED = "".join(
    f'\n[[security.tokens]]\nname = "{name}"\ntoken = "{token}"\nscopes = ["{scope}"]\n'
    for name, token, scope in SCOPED.values()
)

_REST = """
[storage]
path = "{db}"

[[checks]]
name = "self"
kind = "self"
interval = "10s"
timeout = "1s"
critical = false

[channels.console]
kind = "console"
"""


def _toml(listen: str, security: str, named: bool) -> str:
    server = f'[server]\nlisten = "{listen}"\nmetrics_listen = "127.0.0.1:0"\n'
    # Every case fails from 127.0.0.1: the failed-authentication limit (429) has its own test.
    security += "auth_failures = 0\n"
    return server + "\n[security]\n" + security + (_NAMED if named else "") + _REST


CONFIGS = {
    "A": _toml(
        "127.0.0.1:0",
        'api_token = "t-api"\nmetrics_token = "t-metrics"\nallow_from = ["127.0.0.0/8"]\n'
        "read_requires_token = true\n",
        named=True,
    ),
    "B": _toml(
        "127.0.0.1:0",
        'api_token = "t-api"\nmetrics_token = "t-metrics"\nallow_from = ["127.0.0.0/8"]\n',
        named=True,
    ),
    "C": _toml("0.0.0.0:0", "", named=False),
    "D": _toml("127.0.0.1:0", "", named=False),
}

# Within the longest silence the API takes (actors.routing.limits.MAX_SILENCE_DURATION).
_FUTURE = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    body: Any = None
    listener: str = "api"

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


ROUTES = {
    "health": Route("GET", "/api/health"),
    "live": Route("GET", "/api/health/live"),
    "ready": Route("GET", "/api/health/ready"),
    "checks": Route("GET", "/api/v1/checks"),
    "check": Route("GET", "/api/v1/checks/self"),
    "actors": Route("GET", "/api/v1/actors"),
    "cluster": Route("GET", "/api/v1/cluster"),
    "agents": Route("GET", "/api/v1/agents/status"),
    "events": Route("POST", "/api/v1/events", {"events": [{"type": "heartbeat", "agent": "a"}]}),
    "otlpmetrics": Route("POST", "/v1/metrics", {"resourceMetrics": []}),
    "otlptraces": Route("POST", "/v1/traces", {"resourceSpans": []}),
    "alerts": Route("GET", "/api/v1/alerts"),
    "slos": Route("GET", "/api/v1/slos"),
    "silences": Route("GET", "/api/v1/silences"),
    "silence": Route("GET", "/api/v1/silences/nope"),
    "silence+": Route("POST", "/api/v1/silences", {"matchers": ["alertname=x"], "duration": "1h"}),
    "silence-": Route("DELETE", "/api/v1/silences/nope"),
    "v2status": Route("GET", "/api/v2/status"),
    "v2silences": Route("GET", "/api/v2/silences"),
    "v2silence": Route("GET", "/api/v2/silence/nope"),
    "v2silence+": Route(
        "POST",
        "/api/v2/silences",
        {"matchers": [{"name": "alertname", "value": "x", "isRegex": False}], "endsAt": _FUTURE},
    ),
    "v2silence-": Route("DELETE", "/api/v2/silence/nope"),
    "testalert": Route("POST", "/api/test-alert?channel=console"),
    "notifications": Route("GET", "/api/v1/notifications"),
    "reload": Route("POST", "/api/v1/reload"),
    "audit": Route("GET", "/api/v1/audit"),
    "openapi": Route("GET", "/openapi.json"),
    "page": Route("GET", "/"),
    "checkpage": Route("GET", "/checks/self"),
    "badge": Route("GET", "/api/v1/checks/self/badge.svg"),
    "uptime": Route("GET", "/api/v1/checks/self/uptime"),
    "noroute": Route("GET", "/api/v1/nope"),
    "static": Route("GET", "/static/status.css"),
    "metrics": Route("GET", "/metrics", listener="metrics"),
}

# Configuration A. 404/503 are the routes' own answers to a caller the guard let through (an
# unknown silence, the tree or the first check round not running in-process).
MATRIX_A = """
route          none wrong read events silences test reload api metrics outside origin form
health          401  401  200   403    403    403   403   200   401    403     200   200
live            200  200  200   200    200    200   200   200   200    200     200   200
ready           200  200  200   200    200    200   200   200   200    200     200   200
checks          401  401  200   403    403    403   403   200   401    403     200   200
check           401  401  200   403    403    403   403   200   401    403     200   200
actors          401  401  503   403    403    403   403   503   401    403     503   503
cluster         401  401  200   403    403    403   403   200   401    403     200   200
agents          401  401  200   403    403    403   403   200   401    403     200   200
events          401  401  403   202    403    403   403   202   401    403     403   415
otlpmetrics     401  401  403   200    403    403   403   200   401    403     403   415
otlptraces      401  401  403   200    403    403   403   200   401    403     403   415
alerts          401  401  200   403    403    403   403   200   401    403     200   200
slos            401  401  200   403    403    403   403   200   401    403     200   200
silences        401  401  200   403    403    403   403   200   401    403     200   200
silence         401  401  404   403    403    403   403   404   401    403     404   404
silence+        401  401  403   403    201    403   403   201   401    403     403   415
silence-        401  401  403   403    404    403   403   404   401    403     403   415
v2status        401  401  200   403    403    403   403   200   401    403     200   200
v2silences      401  401  200   403    403    403   403   200   401    403     200   200
v2silence       401  401  404   403    403    403   403   404   401    403     404   404
v2silence+      401  401  403   403    200    403   403   200   401    403     403   415
v2silence-      401  401  403   403    404    403   403   404   401    403     403   415
testalert       401  401  403   403    403    200   403   200   401    403     403   415
notifications   401  401  200   403    403    403   403   200   401    403     200   200
reload          401  401  403   403    403    403   200   200   401    403     403   415
audit           401  401  200   403    403    403   403   200   401    403     200   200
openapi         401  401  200   403    403    403   403   200   401    403     200   200
page            401  401  200   403    403    403   403   200   401    403     200   200
checkpage       401  401  200   403    403    403   403   200   401    403     200   200
badge           401  401  200   403    403    403   403   200   401    403     200   200
uptime          401  401  200   403    403    403   403   200   401    403     200   200
noroute         404  404  404   404    404    404   404   404   404    403     404   404
static          404  404  404   404    404    404   404   404   404    403     404   404
metrics         401  401  401   401    401    401   401   401   200    403     401   401
"""

# B: reads open.
MATRIX_B = """
route        B:none  B:wrong  B:events  B:outside
health         200     200      200       403
checks         200     200      200       403
slos           200     200      200       403
events         401     401      202       403
otlpmetrics    401     401      200       403
silence+       401     401      403       403
v2silence-     401     401      403       403
testalert      401     401      403       403
reload         401     401      403       403
audit          401     401      403       403
metrics        401     401      401       403
"""

# C: no token, 0.0.0.0 (writes refused); D: no token, 127.0.0.1 (writes open).
MATRIX_CD = """
route        C:none  C:wrong  C:outside  C:origin  D:none  D:origin  D:form
health         200     200      200        200       200     200       200
checks         200     200      200        200       200     200       200
events         403     403      403        403       202     403       415
otlpmetrics    403     403      403        403       200     403       415
silence+       403     403      403        403       201     403       415
v2silence-     403     403      403        403       404     403       415
testalert      403     403      403        403       200     403       415
reload         403     403      403        403       200     403       415
audit          403     403      403        403       403     403       403
metrics        200     200      200        200       200     200       200
"""

# These cells also run through the real Hypercorn listeners of a running App (the caller is
# 127.0.0.1 there, so no `outside` case).
THROUGH_HYPERCORN = {
    ("A", "events"): ("none", "wrong", "read", "events", "origin", "form"),
    ("A", "otlpmetrics"): ("none", "events"),
    ("A", "metrics"): ("none", "metrics"),
    ("A", "health"): ("none",),
    ("C", "events"): ("none",),
}


def _parse(table: str, config: str | None) -> list[tuple[str, str, str, int]]:
    lines = [line.split() for line in table.strip().splitlines()]
    header, rows = lines[0][1:], lines[1:]
    cells = []
    for row in rows:
        for column, status in zip(header, row[1:], strict=True):
            which, _, case = column.rpartition(":")
            cells.append((which or str(config), row[0], case, int(status)))
    return cells


CELLS = _parse(MATRIX_A, "A") + _parse(MATRIX_B, None) + _parse(MATRIX_CD, None)
PARAMS = [
    pytest.param(config, route, case, status, "asgi", id=f"{config}-{route}-{case}")
    for config, route, case, status in CELLS
] + [
    pytest.param(config, route, case, status, "hypercorn", id=f"{config}-{route}-{case}-hypercorn")
    for config, route, case, status in CELLS
    if case in THROUGH_HYPERCORN.get((config, route), ())
]


def _request(route: Route, case: str) -> tuple[dict[str, str], bytes | None]:
    headers: dict[str, str] = {}
    token = TOKENS.get(case) or (TOKENS["api"] if case in ("outside", "origin", "form") else None)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if case == "origin":
        headers["Origin"] = "https://evil.example"
    body = None if route.body is None else json.dumps(route.body).encode()
    if body is not None or route.method in ("POST", "DELETE"):
        headers["Content-Type"] = "text/plain" if case == "form" else "application/json"
    return headers, body


async def _send(client: httpx.AsyncClient, route: Route, case: str) -> httpx.Response:
    headers, body = _request(route, case)
    return await client.request(route.method, route.path, headers=headers, content=body)


def _app(config: str, directory: Path) -> App:
    path = directory / f"{config}.toml"
    path.write_text(CONFIGS[config].format(db=directory / f"{config}.db"))
    return App(load_config(path, env={}), path=path, env={})


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, App]]:
    """One App per configuration for the in-process cases (what they write, a silence or an
    event, changes no other case's status)."""
    directory = tmp_path_factory.mktemp("matrix")
    apps = {config: _app(config, directory) for config in CONFIGS}
    yield apps
    for app in apps.values():
        app.database.close()


@pytest.mark.parametrize(("config", "route", "case", "expected", "via"), PARAMS)
async def test_access_matrix(
    config: str,
    route: str,
    case: str,
    expected: int,
    via: str,
    built: dict[str, App],
    tmp_path: Path,
) -> None:
    target = ROUTES[route]
    if via == "asgi":
        app = built[config]
        server = app.api_server if target.listener == "api" else app.metrics_server
        address = "10.9.8.7" if case == "outside" else "127.0.0.1"
        transport = httpx.ASGITransport(app=server.app, client=(address, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://monitor.test") as c:
            response = await _send(c, target, case)
    else:
        app = _app(config, tmp_path)
        async with trio.open_nursery() as nursery:
            await nursery.start(app.run)
            server = app.api_server if target.listener == "api" else app.metrics_server
            base = f"http://127.0.0.1:{server.port}"
            async with httpx.AsyncClient(base_url=base, timeout=10) as c:
                response = await _send(c, target, case)
            await app.stop()
    assert response.status_code == expected, response.text
    if expected in (401, 403, 415) and route not in ("live", "ready"):
        assert set(response.json()) == {"error"}, response.text
    if expected == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer realm="), response.headers


def test_the_matrix_covers_every_route_and_every_route_declares_a_scope(
    built: dict[str, App],
) -> None:
    api = built["A"].api_server.app
    adapter = api.url_map.bind("monitor.test")
    covered = {
        adapter.match(route.path.partition("?")[0], route.method)[0]
        for name, route in ROUTES.items()
        if route.listener == "api" and name not in ("noroute", "static")
    }
    endpoints = {rule.endpoint for rule in api.url_map.iter_rules()}
    assert covered == endpoints
    for endpoint in endpoints:
        assert required_scope(api.view_functions[endpoint]) is not None, endpoint
    rows = {row.split()[0] for row in MATRIX_A.strip().splitlines()[1:]}
    assert rows == set(ROUTES)

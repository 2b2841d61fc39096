"""The HTTP side: the API application (health, probes, status page), /metrics, the server actor.

app.py         create_app: the Quart-Trio API app
documents.py   pure builders of the health documents
statuspage.py  the HTML status page
auth.py        bearer tokens, CIDR allow-list, JSON errors (shared with other blueprints)
metrics.py     create_metrics_app: the /metrics ASGI app
server.py      HttpServer: the supervised Hypercorn actor
"""

from __future__ import annotations

from actors.web.app import create_app, read_figures
from actors.web.auth import AllowList, json_error, require_token, token_matches
from actors.web.errors import ServerStartError, WebError
from actors.web.metrics import RuntimeCollector, build_registry, create_metrics_app
from actors.web.server import HttpServer

__all__ = [
    "AllowList",
    "HttpServer",
    "RuntimeCollector",
    "ServerStartError",
    "WebError",
    "build_registry",
    "create_app",
    "create_metrics_app",
    "json_error",
    "read_figures",
    "require_token",
    "token_matches",
]

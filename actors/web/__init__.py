"""The HTTP side: the API application (health, probes, status page), /metrics, the server actor.

app.py         create_app: the Quart-Trio API app
documents.py   pure builders of the health documents
statuspage.py  the HTML status page
access.py      the access guard: scopes, tokens, CIDR allow-list, CSRF rules, body limit
responses.py   json_error: the one shape of error answers
metrics.py     create_metrics_app: the /metrics ASGI app
server.py      HttpServer: the supervised Hypercorn actor
"""

from __future__ import annotations

from actors.web.access import AccessGuard, AccessPolicy, AllowList, Scope, requires
from actors.web.app import create_app, read_figures
from actors.web.errors import ServerStartError, WebError
from actors.web.metrics import RuntimeCollector, build_registry, create_metrics_app
from actors.web.responses import json_error
from actors.web.server import HttpServer

__all__ = [
    "AccessGuard",
    "AccessPolicy",
    "AllowList",
    "HttpServer",
    "RuntimeCollector",
    "Scope",
    "ServerStartError",
    "WebError",
    "build_registry",
    "create_app",
    "create_metrics_app",
    "json_error",
    "read_figures",
    "requires",
]

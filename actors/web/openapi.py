"""`GET /openapi.json`: the API described as OpenAPI 3.1.

Each operation is described here, by hand, in `OPERATIONS` (path, method, summary, parameters,
body, answers); the security of each comes from the scope its view declares to the access guard
(`actors.web.access.requires`), so the document cannot disagree with the guard. A test compares
the app's routes with `OPERATIONS`: a route added without a description fails it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from actors.web.access import Scope, required_scope

__all__ = ["OPERATIONS", "Operation", "app_operations", "openapi_document"]

_ERROR = {"$ref": "#/components/schemas/Error"}
_OBJECT: dict[str, Any] = {"type": "object"}
_MATCHER = {"type": "string", "maxLength": 4096, "examples": ['alertname="HighLatency"']}
_SILENCE_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["matchers"],
    "additionalProperties": False,
    "properties": {
        "matchers": {
            "type": "array",
            "minItems": 1,
            "maxItems": 32,
            "items": {
                "oneOf": [
                    _MATCHER,
                    {
                        "type": "object",
                        "required": ["name", "value"],
                        "properties": {
                            "name": {"type": "string"},
                            "value": {"type": "string"},
                            "isRegex": {"type": "boolean"},
                            "isEqual": {"type": "boolean"},
                        },
                    },
                ]
            },
        },
        "startsAt": {"type": "string", "format": "date-time"},
        "endsAt": {"type": "string", "format": "date-time"},
        "duration": {"type": "string", "examples": ["2h"]},
        "createdBy": {"type": "string", "maxLength": 200},
        "comment": {"type": "string", "maxLength": 2000},
        "id": {"type": "string", "description": "v2 only: the silence this one replaces"},
    },
}
_EVENTS_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["events"],
    "properties": {
        "events": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type"],
                "properties": {
                    "type": {
                        "enum": [
                            "agent_execution",
                            "heartbeat",
                            "ml_prediction",
                            "ml_accuracy",
                            "api_request",
                            "business_metric",
                            "user_message",
                        ]
                    }
                },
            },
        }
    },
}


@dataclass(frozen=True, slots=True)
class Operation:
    """One described operation: `query` maps parameter names to their JSON schema."""

    method: str
    path: str
    summary: str
    ok: int = 200
    query: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    body: Mapping[str, Any] | None = None
    media: str = "application/json"


_FILTER = {"type": "array", "items": _MATCHER, "maxItems": 32}
_WINDOW = {"type": "string", "examples": ["24h", "7d", "30d", "90d"]}
OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", "/api/health", "Health document (seed format, or the IETF draft format)"),
    Operation("GET", "/api/health/live", "Liveness: the process and its event loop work"),
    Operation("GET", "/api/health/ready", "Readiness: started, critical checks pass (503 if not)"),
    Operation("GET", "/api/v1/checks", "Every check's current status"),
    Operation("GET", "/api/v1/checks/{name}", "One check with its recent history"),
    Operation("GET", "/api/v1/actors", "The supervision tree"),
    Operation(
        "GET",
        "/api/v1/audit",
        "The audit log, newest first",
        query={"limit": {"type": "integer", "minimum": 1, "maximum": 1000}},
    ),
    Operation("GET", "/", "The status page", media="text/html", query={"window": _WINDOW}),
    Operation(
        "GET", "/checks/{name}", "One check's page", media="text/html", query={"window": _WINDOW}
    ),
    Operation(
        "GET",
        "/api/v1/checks/{name}/badge.svg",
        "A check's status badge",
        media="image/svg+xml",
        query={"kind": {"enum": ["status", "uptime", "latency"]}, "window": _WINDOW},
    ),
    Operation(
        "GET",
        "/api/v1/checks/{name}/uptime",
        "A check's uptime ratio and incidents over a window",
        query={"window": _WINDOW},
    ),
    Operation("POST", "/api/v1/events", "Record a batch of events", ok=202, body=_EVENTS_BODY),
    Operation(
        "POST",
        "/v1/metrics",
        "OTLP/HTTP metrics export (JSON here; also application/x-protobuf, gzip)",
        body={"type": "object", "properties": {"resourceMetrics": {"type": "array"}}},
    ),
    Operation(
        "POST",
        "/v1/traces",
        "OTLP/HTTP traces export: RED metrics per service and span (spans are not stored)",
        body={"type": "object", "properties": {"resourceSpans": {"type": "array"}}},
    ),
    Operation("GET", "/api/v1/slos", "Each SLO: SLI now, error budget left, burn rates"),
    Operation("GET", "/api/v1/cluster", "This replica, the mode and the live replicas"),
    Operation("GET", "/api/v1/agents/status", "Agents that report in"),
    Operation(
        "GET",
        "/api/v1/alerts",
        "Pending and firing alerts",
        query={"state": {"enum": ["firing", "pending"]}, "filter": _FILTER},
    ),
    Operation("GET", "/api/v1/silences", "Every silence"),
    Operation("GET", "/api/v1/silences/{silence_id}", "One silence"),
    Operation("POST", "/api/v1/silences", "Create a silence", ok=201, body=_SILENCE_BODY),
    Operation("DELETE", "/api/v1/silences/{silence_id}", "Expire a silence"),
    Operation("GET", "/api/v2/status", "Alertmanager's status (for amtool)"),
    Operation("GET", "/api/v2/silences", "Silences, Alertmanager v2", query={"filter": _FILTER}),
    Operation("GET", "/api/v2/silence/{silence_id}", "One silence, Alertmanager v2"),
    Operation("POST", "/api/v2/silences", "Create or replace a silence (v2)", body=_SILENCE_BODY),
    Operation("DELETE", "/api/v2/silence/{silence_id}", "Expire a silence (v2)"),
    Operation(
        "POST",
        "/api/test-alert",
        "Send a test notification",
        query={"channel": {"type": "string"}},
    ),
    Operation("GET", "/api/v1/notifications", "Recent notifications and their outcome"),
    Operation("POST", "/api/v1/reload", "Reload the configuration file"),
    Operation("GET", "/openapi.json", "This document"),
)
"""Every operation of the API listener."""

_SCOPE_NOTE = {
    Scope.PUBLIC: "No token, and not subject to allow_from.",
    Scope.READ: "A token with `read` when security.read_requires_token is set.",
    Scope.READ_WITH_TOKEN: "A token with `read`, always.",
}


def _security(scope: Scope | None) -> list[dict[str, list[str]]]:
    if scope is Scope.PUBLIC:
        return []
    if scope is Scope.READ:
        return [{}, {"bearer": ["read"]}]
    if scope is Scope.READ_WITH_TOKEN or scope is None:
        return [{"bearer": ["read"]}]
    return [{"bearer": [str(scope)]}]


def _rule_path(rule: str) -> str:
    """Quart's `/x/<name>` (or `<conv:name>`) as OpenAPI's `/x/{name}`."""
    out = []
    for part in rule.split("/"):
        if part.startswith("<") and part.endswith(">"):
            part = "{" + part[1:-1].rpartition(":")[2] + "}"
        out.append(part)
    return "/".join(out)


def app_operations(app: Any) -> dict[tuple[str, str], Scope | None]:
    """The (method, OpenAPI path) of every route of the Quart `app` (HEAD and OPTIONS, which
    every GET and route answers, aside), with the scope declared."""
    found: dict[tuple[str, str], Scope | None] = {}
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        for method in sorted(set(rule.methods or ()) - {"HEAD", "OPTIONS"}):
            found[(method, _rule_path(rule.rule))] = required_scope(view)
    return found


def _operation_id(op: Operation) -> str:
    words = op.path.replace("{", "").replace("}", "").replace(".", "_").split("/")
    return "_".join([op.method.lower(), *(word for word in words if word)]) or op.method.lower()


def openapi_document(app: Any, *, version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `OPERATIONS`, with each operation's security from the scope
    its view in `app` declares."""
    scopes = app_operations(app)
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        scope = scopes.get((op.method, op.path))
        parameters: list[dict[str, Any]] = [
            {"name": name[:-1], "in": "path", "required": True, "schema": {"type": "string"}}
            for name in (part[1:] for part in op.path.split("/") if part.startswith("{"))
        ]
        for name, schema in op.query.items():
            explode = {"explode": True} if schema.get("type") == "array" else {}
            parameters.append({"name": name, "in": "query", "schema": dict(schema), **explode})
        responses: dict[str, Any] = {
            str(op.ok): {
                "description": "OK",
                "content": {op.media: {"schema": _OBJECT if op.media.endswith("json") else {}}},
            },
            "4XX": {
                "description": "Refused: bad request, token, scope, address, size or limit",
                "content": {"application/json": {"schema": _ERROR}},
            },
        }
        if op.path in ("/api/health", "/api/health/ready"):
            responses["503"] = {"description": "Unhealthy, or not ready"}
        operation: dict[str, Any] = {
            "operationId": _operation_id(op),
            "summary": op.summary,
            "parameters": parameters,
            "responses": responses,
            "security": _security(scope),
        }
        if scope in _SCOPE_NOTE:
            operation["description"] = _SCOPE_NOTE[scope]
        if op.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": dict(op.body)}},
            }
        paths.setdefault(op.path, {})[op.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "blipee-monitor", "version": version},
        "paths": paths,
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}},
                }
            },
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }

"""Pure builders of the health documents (plain data in, JSON-ready dicts out).

- `health_document`: the seed's `/api/health` document.
- `ietf_document`: the same state in the IETF "Health Check Response Format for HTTP APIs" draft
  (application/health+json): status pass/warn/fail, checks keyed "name:responseTime".
- `check_document`: one check with its recent history (`/api/v1/checks/{name}`).

Every configured check is listed in each of them from the start. One that has not run yet is
`{"status": "pending", "message": "not run yet", "details": {}}` in the seed document (no
`latency`: nothing was measured; the seed's own `agents` entry has none either), `status: warn`
with `output: "not run yet"` (and no observed value or time) in the draft's format, `pending` in
`check_document`; it never makes the overall status degraded or unhealthy.
- `tree_document`: a supervision tree snapshot (any nesting of dataclasses and enums) as JSON.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections.abc import Mapping
from typing import Any

from actors.models import CheckResult
from actors.state import NOT_RUN_YET, PENDING, HealthSnapshot, OverallStatus

__all__ = [
    "AppFigures",
    "check_document",
    "check_entry",
    "health_document",
    "ietf_document",
    "iso_time",
    "pending_entry",
    "tree_document",
]

_IETF_STATUS = {
    OverallStatus.HEALTHY: "pass",
    OverallStatus.DEGRADED: "warn",
    OverallStatus.UNHEALTHY: "fail",
}


@dataclasses.dataclass(frozen=True, slots=True)
class AppFigures:
    """The document's `metrics` block: uptime of the monitor (s), the application's request rate
    (per minute) and mean response time (ms) over the last minute, and its active users."""

    uptime: float
    requests_per_minute: float
    average_response_time: float
    active_users: float


def iso_time(timestamp: float) -> str:
    """RFC 3339 UTC with second precision, as in the seed ("2025-07-15T12:00:00Z")."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def _number(value: float) -> int | float:
    rounded = round(value, 1)
    return int(rounded) if rounded == int(rounded) else rounded


def _json_safe(value: object) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_safe(v) for v in value]
    if isinstance(value, enum.Enum):
        return _json_safe(value.value)
    return str(value)


def check_entry(result: CheckResult) -> dict[str, Any]:
    """One check as the seed shows it: status, message, latency (ms), details."""
    return {
        "status": result.status.value,
        "message": result.message,
        "latency": round(result.latency_seconds * 1000),
        "details": _json_safe(result.details),
    }


def pending_entry() -> dict[str, Any]:
    """A configured check that has not run yet, as the seed document shows it."""
    return {"status": PENDING, "message": NOT_RUN_YET, "details": {}}


def health_document(
    snapshot: HealthSnapshot, *, now: float, version: str, figures: AppFigures
) -> dict[str, Any]:
    """The seed's document (checks in configuration order, then any others; pending included)."""
    results = snapshot.results
    checks = {
        name: check_entry(results[name]) if name in results else pending_entry()
        for name in snapshot.names
    }
    return {
        "status": snapshot.status,
        "timestamp": iso_time(now),
        "version": version,
        "checks": checks,
        "metrics": {
            "uptime": int(figures.uptime),
            "requestsPerMinute": _number(figures.requests_per_minute),
            "averageResponseTime": _number(figures.average_response_time),
            "activeUsers": _number(figures.active_users),
        },
    }


def ietf_document(
    snapshot: HealthSnapshot, *, now: float, version: str, service: str, uptime: float
) -> dict[str, Any]:
    """The IETF health draft document for the same snapshot (pending checks: warn, not run yet)."""
    checks: dict[str, list[dict[str, Any]]] = {}
    for name in snapshot.names:
        result = snapshot.results.get(name)
        if result is None:
            checks[f"{name}:responseTime"] = [
                {
                    "componentId": name,
                    "componentType": "component",
                    "status": "warn",
                    "output": NOT_RUN_YET,
                }
            ]
            continue
        entry: dict[str, Any] = {
            "componentId": name,
            "componentType": "component",
            "observedValue": round(result.latency_seconds * 1000, 3),
            "observedUnit": "ms",
            "status": result.status.value,
            "time": iso_time(result.timestamp),
        }
        if result.status.value != "pass":
            entry["output"] = result.message
        checks[f"{name}:responseTime"] = [entry]
    checks["uptime"] = [
        {
            "componentType": "system",
            "observedValue": int(uptime),
            "observedUnit": "s",
            "status": "pass",
            "time": iso_time(now),
        }
    ]
    document: dict[str, Any] = {
        "status": _IETF_STATUS[snapshot.status],
        "version": version.split(".")[0],
        "releaseId": version,
        "serviceId": service,
        "description": f"health of {service}",
        "checks": checks,
    }
    if snapshot.status != OverallStatus.HEALTHY:
        failing = [n for n, r in snapshot.results.items() if r.status.value != "pass"]
        document["output"] = "checks not passing: " + ", ".join(failing[:20])
    return document


def _result_json(result: CheckResult) -> dict[str, Any]:
    return {
        "status": result.status.value,
        "observed": result.observed.value,
        "message": result.message,
        "latency": round(result.latency_seconds * 1000, 3),
        "timestamp": iso_time(result.timestamp),
        "details": _json_safe(result.details),
    }


def check_document(snapshot: HealthSnapshot, name: str, *, history: bool) -> dict[str, Any]:
    """A check's current state (and its recent history, oldest first, when asked)."""
    result = snapshot.results.get(name)
    out: dict[str, Any] = {
        "name": name,
        "critical": snapshot.configured.get(name, result.critical if result else False),
    }
    if result is None:
        out.update({"status": PENDING, "message": NOT_RUN_YET})
    else:
        out.update(_result_json(result))
    if history:
        out["history"] = [_result_json(r) for r in snapshot.history.get(name, ())]
    return out


def tree_document(tree: object, *, loop_now: float | None = None, wall_now: float = 0.0) -> Any:
    """A runtime snapshot (frozen dataclasses, enums, tuples) as JSON-ready data.

    Fields named `since` hold event-loop times; given `loop_now` (the loop's clock now) and
    `wall_now`, they are shown as RFC 3339 wall times instead.
    """
    if dataclasses.is_dataclass(tree) and not isinstance(tree, type):
        out: dict[str, Any] = {}
        for field in dataclasses.fields(tree):
            value = getattr(tree, field.name)
            if field.name == "since" and loop_now is not None and isinstance(value, int | float):
                out[field.name] = iso_time(wall_now - (loop_now - value))
            else:
                out[field.name] = tree_document(value, loop_now=loop_now, wall_now=wall_now)
        return out
    if isinstance(tree, list | tuple):
        return [tree_document(item, loop_now=loop_now, wall_now=wall_now) for item in tree]
    return _json_safe(tree)

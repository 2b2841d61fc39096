"""The one shape of error answers of every route: `{"error": "...", ...}`."""

from __future__ import annotations

from typing import Any

from quart import Response, jsonify

__all__ = ["json_error"]


def json_error(status: int, message: str, **extra: Any) -> Response:
    """A JSON error answer `{"error": message, ...extra}` with `status`.

    Needs an application context (as every Quart view has).
    """
    response = jsonify({"error": message, **extra})
    response.status_code = status
    return response

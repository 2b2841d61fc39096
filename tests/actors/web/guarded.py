"""The API app around other packages' blueprints, behind a real access guard, for their tests."""

from __future__ import annotations

from typing import Any

from quart import Blueprint
from quart_trio import QuartTrio

from actors.state import HealthState
from actors.web.access import AccessGuard
from actors.web.app import create_app
from actors.web.config import SecurityConfig

__all__ = ["guarded_app"]


def guarded_app(
    *blueprints: Blueprint,
    listen: str = "127.0.0.1:3000",
    health: HealthState | None = None,
    **security: Any,
) -> QuartTrio:
    """`create_app` with `blueprints`, its guard built from `SecurityConfig(**security)` for an
    API listening on `listen` (loopback by default: writes pass when no token is set)."""
    guard = AccessGuard(SecurityConfig(**security), listen=listen)
    return create_app(health=health or HealthState(), blueprints=blueprints, access=guard)

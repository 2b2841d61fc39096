"""HTTP API of the SLOs (a Quart blueprint).

- `GET /api/v1/slos` (scope `read`): `{"slos": [{name, objective, window, sli,
  errorBudgetRemaining, burnRates: {"5m": .., "30m": .., "1h": .., "2h": .., "6h": .., "1d": ..,
  "3d": ..}, alerts: {page: bool, ticket: bool}, error}]}` in configuration order; `sli`,
  `errorBudgetRemaining` and a burn rate are null over a window without events. Answered from
  the SLO actor's latest round; nothing is evaluated.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Protocol

from quart import Blueprint, Response

from actors.rules.slo import SloStatus
from actors.web.access import Scope, requires

__all__ = ["SloView", "create_blueprint"]


class SloView(Protocol):
    """What the API reads: the SLO actor's latest statuses."""

    def statuses(self) -> Sequence[SloStatus]:
        """Each SLO's latest status, in configuration order."""
        ...


def create_blueprint(*, slos: SloView) -> Blueprint:
    """The blueprint serving `GET /api/v1/slos` from `slos`."""
    bp = Blueprint("slos", __name__)

    @bp.get("/api/v1/slos")
    @requires(Scope.READ)
    async def list_slos() -> Response:
        body = {"slos": [status.to_json() for status in slos.statuses()]}
        return Response(json.dumps(body).encode(), status=200, content_type="application/json")

    return bp

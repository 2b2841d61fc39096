"""`GET /api/v1/cluster` (scope `read`): this replica and the live replicas it sees.

The list is the one this replica read at its last heartbeat (`Membership.members`), so it is at
most one heartbeat old and costs no query per request. Without replicas (SQLite, one process)
the mode is "single" and the list is empty. Sharded replicas also list, for each live replica,
the checks it runs (`checks`), as this replica's last assignment has them
(`actors.cluster.ownership`), and `checks_owned`, how many this replica runs.
"""

from __future__ import annotations

import json
from typing import Any

from quart import Blueprint, Response

from actors.cluster.membership import Membership
from actors.cluster.ownership import Ownership
from actors.web.access import Scope, requires

__all__ = ["cluster_document", "create_blueprint"]


def cluster_document(
    membership: Membership | None, ownership: Ownership | None = None
) -> dict[str, Any]:
    """The document: `replica` (this one), `mode`, `replicas` (live: name, mode, last
    heartbeat and its age, in database epoch seconds; sharded: `checks`, those it runs) and
    `live` (their count); sharded: `checks_owned` (this replica's count)."""
    if membership is None:
        return {"replica": None, "mode": "single", "live": 1, "replicas": []}
    members = [m.to_json(membership.now) for m in membership.members]
    document: dict[str, Any] = {
        "replica": membership.replica,
        "mode": membership.mode,
        "heartbeat_seconds": membership.heartbeat,
        "live": len(members),
        "replicas": members,
    }
    if ownership is not None:
        shares = ownership.shares()
        for member in members:
            if member["mode"] == "sharded":
                member["checks"] = list(shares.get(str(member["name"]), ()))
        document["checks_owned"] = len(ownership.owned)
    return document


def create_blueprint(
    *, membership: Membership | None, ownership: Ownership | None = None
) -> Blueprint:
    """The cluster route; its scope is enforced by the web app's access guard."""
    bp = Blueprint("cluster", __name__)

    @bp.get("/api/v1/cluster")
    @requires(Scope.READ)
    async def cluster() -> Response:
        body = json.dumps(cluster_document(membership, ownership)).encode()
        return Response(body, status=200, content_type="application/json")

    return bp

"""Silences are one object of the process: a silence created through the API keeps muting when
the routing actor crashes and is restarted, and when a reload replaces it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import httpx
import trio

from actors.models import AlertEvent
from supervisor.app import App
from supervisor.config import Config, parse_config

CONFIG = """
[server]
listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:0"

[storage]
path = "{db}"

[[rules]]
id = "low"
name = "LowAccuracy"
channels = ["console"]
condition = {{ metric = "ml_model_accuracy", operator = "<", threshold = 0.8 }}

[channels.console]
kind = "console"
{extra}
"""


def _config(tmp_path: Path, extra: str = "") -> Config:
    return parse_config(CONFIG.format(db=tmp_path / "m.db", extra=extra), env={})


def _routing_starts(app: App) -> int:
    return {child.id: child.starts for child in app.root.which_children()}["routing"]


async def _firing(client: httpx.AsyncClient) -> dict[str, Any]:
    """The firing alert of rule `low`, once the rules actor has it."""
    while True:
        alerts = (await client.get("/api/v1/alerts?state=firing")).json()["alerts"]
        if alerts:
            alert: dict[str, Any] = alerts[0]
            return alert
        await trio.sleep(0.02)


async def test_an_api_silence_mutes_across_a_routing_crash_and_a_reload(tmp_path: Path) -> None:
    app = App(_config(tmp_path), env={})
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(app.run)
            base = f"http://127.0.0.1:{app.api_server.port}"
            async with httpx.AsyncClient(base_url=base) as client:
                app.metrics.record("ml_model_accuracy", 0.1, {"model": "m"})
                assert (await _firing(client))["silencedBy"] == []
                created = await client.post(
                    "/api/v1/silences", json={"matchers": ["rule=low"], "duration": "1h"}
                )
                assert created.status_code == 201, created.text
                sid = created.json()["silenceID"]
                assert (await _firing(client))["silencedBy"] == [sid]

                # The routing actor crashes on a malformed event; its supervisor restarts it.
                await app.routing.alerts.send(cast("AlertEvent", None))
                while _routing_starts(app) < 2:
                    await trio.sleep(0.02)
                assert (await _firing(client))["silencedBy"] == [sid]

                # A reload that changes [routing] builds a new routing actor.
                report = await app.apply(_config(tmp_path, '[routing]\ngroup_interval = "5m"'))
                assert report.restarted == ("routing",)
                assert _routing_starts(app) == 3
                assert (await _firing(client))["silencedBy"] == [sid]
                listed = (await client.get("/api/v1/silences")).json()["silences"]
                assert [(s["id"], s["status"]["state"]) for s in listed] == [(sid, "active")]
            await app.stop()

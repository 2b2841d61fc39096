"""Each channel is built once: its delivery actor and `POST /api/test-alert` send through the
same object; a reload rebuilds a changed channel once (both see the new one) and closes the
channels it replaces or removes."""

from __future__ import annotations

from pathlib import Path

import httpx
import trio

from actors.notify.channels import Channel
from supervisor.app import App
from supervisor.config import Config, parse_config
from tests.actors.notify.servers import ScriptedReceiver, serve_receiver

CONFIG = """
[server]
listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:0"

[storage]
path = "{db}"

[channels.console]
kind = "console"
{hooks}
"""

HOOKS = """
[channels.hooks]
kind = "webhook"
url = "{url}"
"""


def _config(tmp_path: Path, url: str | None) -> Config:
    hooks = HOOKS.format(url=url) if url is not None else ""
    return parse_config(CONFIG.format(db=tmp_path / "m.db", hooks=hooks), env={})


def _track_close(channel: Channel, closed: list[Channel]) -> None:
    original = channel.aclose

    async def aclose() -> None:
        closed.append(channel)
        await original()

    channel.aclose = aclose  # type: ignore[method-assign]


def _shared(app: App, name: str) -> Channel:
    """The channel `name`, after checking its delivery actor sends through the same object."""
    channel = app.notify.channels[name]
    assert app.notify.deliveries[name].channel is channel
    return channel


async def test_a_channel_is_shared_rebuilt_once_on_change_and_closed_on_removal(
    tmp_path: Path,
) -> None:
    receiver = ScriptedReceiver()
    closed: list[Channel] = []
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            base = await serve_receiver(nursery, receiver)
            app = App(_config(tmp_path, f"{base}/one"), env={})
            await nursery.start(app.run)
            api = f"http://127.0.0.1:{app.api_server.port}"
            async with httpx.AsyncClient(base_url=api) as client:
                first = _shared(app, "hooks")
                _track_close(first, closed)
                sent = await client.post("/api/test-alert?channel=hooks")
                assert sent.status_code == 200, sent.text
                assert [r.path for r in receiver.received] == ["/one"]

                report = await app.apply(_config(tmp_path, f"{base}/two"))
                assert report.restarted == ("deliver:hooks",)
                second = _shared(app, "hooks")
                assert second is not first
                assert first in closed  # by its delivery actor as it stopped, and by notify
                _track_close(second, closed)
                sent = await client.post("/api/test-alert?channel=hooks")
                assert sent.status_code == 200, sent.text
                assert [r.path for r in receiver.received] == ["/one", "/two"]

                report = await app.apply(_config(tmp_path, None))
                assert report.stopped == ("deliver:hooks",)
                assert "hooks" not in app.notify.channels
                assert "hooks" not in app.notify.deliveries
                assert second in closed
                sent = await client.post("/api/test-alert?channel=hooks")
                assert sent.status_code == 404
            await app.stop()
            nursery.cancel_scope.cancel()

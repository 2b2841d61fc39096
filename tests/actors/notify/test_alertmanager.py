"""The alertmanager channel against a real prometheus-alertmanager, plus its resend loop."""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from actors.clock import SystemClock, VirtualClock
from actors.models import AlertStatus
from actors.notify.channels import AlertmanagerChannel
from actors.notify.channels.alertmanager import AlertmanagerChannelConfig
from actors.notify.delivery import DeliveryActor
from actors.notify.outbox import EntryState, Outbox
from actors.notify.outcome import Delivered, Permanent
from actors.store import Database
from tests.actors.notify.factories import (
    channel_config,
    channel_context,
    make_alert,
    make_notification,
)
from tests.actors.notify.servers import free_port, require_binary

LOG = logging.getLogger("test.notify.alertmanager")

CONFIG = """
route:
  receiver: blackhole
  group_wait: 1h
receivers:
  - name: blackhole
"""


@pytest.fixture
async def alertmanager(tmp_path: Path) -> AsyncIterator[str]:
    binary = require_binary("/usr/bin/prometheus-alertmanager")
    config = tmp_path / "alertmanager.yml"
    config.write_text(CONFIG)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        async with httpx.AsyncClient() as client:
            with trio.fail_after(20):
                while True:
                    if proc.poll() is not None:
                        assert proc.stderr is not None
                        pytest.fail(f"alertmanager exited: {proc.stderr.read().decode()[-500:]}")
                    try:
                        if (await client.get(f"{url}/-/ready")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await trio.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


async def _alerts(url: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{url}/api/v2/alerts")
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result


async def test_real_alertmanager_receives_and_resolves(alertmanager: str) -> None:
    clock = SystemClock()
    now = clock.now()
    config = channel_config(
        AlertmanagerChannelConfig, url=alertmanager, timeout="5s", resend_interval="60s"
    )
    channel = AlertmanagerChannel("am", config, channel_context(clock=clock, logger=LOG))
    firing = make_alert(
        "Database Connection Issues",
        severity="critical",
        starts_at=now - 30,
        extra={"check": "database"},
    )
    outcome = await channel.send(make_notification("f", channel="am", alerts=[firing]))
    assert isinstance(outcome, Delivered)
    [alert] = await _alerts(alertmanager)
    assert alert["labels"]["alertname"] == "Database Connection Issues"
    assert alert["labels"]["check"] == "database"
    assert alert["labels"]["severity"] == "critical"
    assert alert["status"]["state"] == "active"
    assert alert["annotations"]["summary"].startswith("Database Connection Issues")
    assert alert["generatorURL"] == "http://monitor.local/rules/x"
    assert set(channel.firing) == {"fp1"}

    resolved = make_alert(
        "Database Connection Issues",
        severity="critical",
        starts_at=now - 30,
        status=AlertStatus.RESOLVED,
        ends_at=now - 1,
        extra={"check": "database"},
    )
    outcome = await channel.send(make_notification("r", channel="am", alerts=[resolved]))
    assert isinstance(outcome, Delivered)
    assert await _alerts(alertmanager) == []  # resolved alerts are no longer listed
    assert channel.firing == {}

    bad = make_alert(extra={"bad label!": "x"})
    outcome = await channel.send(make_notification("b", channel="am", alerts=[bad]))
    assert isinstance(outcome, Permanent)
    assert outcome.reason.startswith("HTTP 400")
    await channel.aclose()


async def test_resends_firing_alerts_and_survives_restart(
    autojump_clock: trio.testing.MockClock,
) -> None:
    posts: list[tuple[float, list[dict[str, Any]]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        posts.append((trio.current_time(), json.loads(request.content)))
        return httpx.Response(200)

    clock = VirtualClock()
    db = Database(":memory:", offload=False)

    def channel() -> AlertmanagerChannel:
        return AlertmanagerChannel(
            "am",
            channel_config(AlertmanagerChannelConfig, url="http://am.test/", resend_interval="60s"),
            channel_context(
                clock=clock, logger=LOG, database=db, transport=httpx.MockTransport(handler)
            ),
        )

    first = channel()
    await first.send(make_notification("f", channel="am", alerts=[make_alert()]))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(first.maintain)
        await trio.sleep(150)
        nursery.cancel_scope.cancel()
    assert [round(t) for t, _ in posts] == [0, 60, 120]
    assert posts[-1][1][0]["labels"]["alertname"] == "High API Latency"
    await first.aclose()

    second = channel()  # a restart: the firing set comes back from the store
    async with trio.open_nursery() as nursery:
        nursery.start_soon(second.maintain)
        await trio.sleep(61)
        nursery.cancel_scope.cancel()
    assert len(posts) == 4
    resolved = make_alert(status=AlertStatus.RESOLVED, ends_at=clock.now())
    await second.send(make_notification("r", channel="am", alerts=[resolved]))
    assert second.firing == {}
    assert await db.fetchall("SELECT * FROM notify_am_firing") == []
    await second.aclose()
    db.close()


@pytest.mark.parametrize("resolution", ["skipped", "dead_letter"])
async def test_an_unsent_resolution_stops_the_resending(
    autojump_clock: trio.testing.MockClock, resolution: str
) -> None:
    """send_resolved = false (or a refused resolution) must not leave a zombie firing alert."""
    posts: list[list[dict[str, Any]]] = []
    refuse = False

    def handler(request: httpx.Request) -> httpx.Response:
        posts.append(json.loads(request.content))
        return httpx.Response(400 if refuse else 200)

    clock = VirtualClock()
    db = Database(":memory:", offload=False)
    outbox = Outbox(database=db, clock=clock)
    config = channel_config(
        AlertmanagerChannelConfig,
        url="http://am.test/",
        resend_interval="60s",
        send_resolved=resolution != "skipped",
    )
    context = channel_context(
        clock=clock, logger=LOG, database=db, transport=httpx.MockTransport(handler)
    )
    channel = AlertmanagerChannel("am", config, context)
    actor = DeliveryActor(channel=channel, outbox=outbox, clock=clock, logger=LOG)
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        await outbox.enqueue(make_notification("f", channel="am", alerts=[make_alert()]))
        await trio.sleep(1)
        assert set(channel.firing) == {"fp1"}
        refuse = resolution == "dead_letter"
        resolved = make_alert(status=AlertStatus.RESOLVED, ends_at=clock.now())
        await outbox.enqueue(make_notification("r", channel="am", alerts=[resolved]))
        await trio.sleep(1)
        sent = len(posts)
        await trio.sleep(600)
        nursery.cancel_scope.cancel()
    assert channel.firing == {}
    assert await db.fetchall("SELECT * FROM notify_am_firing") == []
    assert len(posts) == sent  # nothing re-sent as firing after the resolution
    state = EntryState.DELIVERED if resolution == "skipped" else EntryState.DEAD
    assert "r" in [entry.key for entry in await outbox.recent(state, channel="am")]
    db.close()


async def test_real_alertmanager_accepts_the_held_annotation(alertmanager: str) -> None:
    clock = SystemClock()
    now = clock.now()
    config = channel_config(AlertmanagerChannelConfig, url=alertmanager, timeout="5s")
    channel = AlertmanagerChannel("am", config, channel_context(clock=clock, logger=LOG))
    parent = make_alert(
        "Database Connection Issues",
        severity="critical",
        starts_at=now - 30,
        extra={"check": "database"},
    )
    held = [{"alertname": "API Down", "check": "api", "blocked_by": "database", "fingerprint": "x"}]
    notification = dataclasses.replace(
        make_notification("h", channel="am", alerts=[parent]), context={"held": held}
    )
    assert isinstance(await channel.send(notification), Delivered)
    [alert] = await _alerts(alertmanager)
    assert alert["annotations"]["held_alerts"] == "API Down (check api), blocked by database"
    await channel.aclose()


def test_stored_firing_alerts_of_the_older_row_format_still_load() -> None:
    """Rows written before the alert JSON was shared with the outbox codec had no status."""
    from actors.notify.channels.alertmanager import _alert_from_json, _alert_json

    old = json.dumps(
        {
            "fingerprint": "fp9",
            "labels": {"alertname": "A", "check": "db"},
            "annotations": {"summary": "s"},
            "starts_at": 1.5,
            "value": None,
            "generator_url": "",
        }
    )
    alert = _alert_from_json(old)
    assert (alert.fingerprint, alert.status, alert.ends_at) == ("fp9", AlertStatus.FIRING, None)
    assert dict(alert.labels) == {"alertname": "A", "check": "db"}
    current = make_alert(fingerprint="fp8", extra={"check": "db"})
    assert _alert_from_json(_alert_json(current)) == current

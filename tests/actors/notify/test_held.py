"""Alerts held by a dependency (routing's `Notification.context["held"]`) in every channel."""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

import httpx

from actors.clock import FixedClock
from actors.models import AlertStatus, Notification
from actors.notify.channels import AlertmanagerChannel
from actors.notify.channels.alertmanager import AlertmanagerChannelConfig
from actors.notify.channels.console import console_line
from actors.notify.channels.email import build_email
from actors.notify.channels.pagerduty import build_pagerduty_event
from actors.notify.channels.render import HELD_ANNOTATION, held_alerts
from actors.notify.channels.slack import build_slack_payload
from actors.notify.channels.webhook import build_webhook_payload
from actors.notify.codec import decode_notification, encode_notification
from actors.notify.outcome import Delivered
from actors.routing.holds import held_for
from tests.actors.notify.factories import (
    T0,
    V4_KEYS,
    channel_config,
    channel_context,
    make_alert,
    make_notification,
)

LOG = logging.getLogger("test.notify.held")


def _parent_notification() -> Notification:
    """A database alert whose notification names the API alert it holds, as routing builds it,
    after a round trip through the outbox's JSON."""
    parent = make_alert(
        "Database Connection Issues", severity="critical", extra={"check": "database"}
    )
    other = make_alert("Disk Full", fingerprint="fp3", extra={"check": "disk"})
    held = make_alert("API Down", fingerprint="fp2", extra={"check": "api"})
    entries = held_for([parent, other], [(held, ("database",))])
    notification = dataclasses.replace(
        make_notification(alerts=[parent, other]), context={"held": entries}
    )
    return decode_notification(encode_notification(notification))


def test_held_entries_keep_routing_shape_through_the_outbox() -> None:
    assert held_alerts(_parent_notification()) == [
        {
            "alertname": "API Down",
            "check": "api",
            "blocked_by": "database",
            "fingerprint": "fp2",
        }
    ]
    # garbage contexts (an older version, a hand-edited outbox) are ignored, not an error
    for context in ({"held": "API Down"}, {"held": [1, None]}, {"held": None}, {}):
        bad = dataclasses.replace(make_notification(), context=context)
        assert held_alerts(bad) == []
        assert "heldAlerts" not in build_webhook_payload(bad, receiver="hooks")
    partial = dataclasses.replace(make_notification(), context={"held": [{"alertname": "X"}]})
    assert held_alerts(partial) == [
        {"alertname": "X", "check": "", "blocked_by": "", "fingerprint": ""}
    ]


def test_email_lists_held_alerts_in_text_and_html() -> None:
    message = build_email(_parent_notification(), sender="m@x", recipients=["o@x"], now=T0)
    plain = message.get_body(("plain",))
    page = message.get_body(("html",))
    assert plain is not None
    assert page is not None
    text = plain.get_content()
    assert "Held, blocked by a failing dependency (1):" in text
    assert "API Down (check api), blocked by database" in text
    assert "<li>API Down (check api), blocked by database</li>" in page.get_content()
    without = build_email(make_notification(), sender="m@x", recipients=["o@x"], now=T0)
    assert "Held" not in str(without)


def test_slack_blocks_and_fallback_show_held_alerts() -> None:
    payload = build_slack_payload(_parent_notification())
    sections = [b["text"]["text"] for b in payload["blocks"] if b["type"] == "section"]
    assert any(
        s.startswith("*Held, blocked by a failing dependency (1):*")
        and "API Down (check api), blocked by database" in s
        for s in sections
    )
    assert "holding 1: API Down" in payload["text"]
    assert len(build_slack_payload(make_notification())["blocks"]) == 3


def test_pagerduty_custom_details_carry_held_alerts() -> None:
    event = build_pagerduty_event(_parent_notification(), routing_key="k")
    details = event["payload"]["custom_details"]
    assert details["num_held"] == 1
    assert details["held"][0]["alertname"] == "API Down"
    assert details["held"][0]["blocked_by"] == "database"
    plain = build_pagerduty_event(make_notification(), routing_key="k")
    assert "held" not in plain["payload"]["custom_details"]


def test_console_line_names_held_alerts() -> None:
    line = console_line(_parent_notification())
    assert "held: API Down (check api), blocked by database" in line


def test_webhook_v4_payload_annotates_the_parent_and_adds_held_alerts() -> None:
    payload = build_webhook_payload(_parent_notification(), receiver="hooks")
    assert set(payload) == V4_KEYS | {"heldAlerts"}
    assert payload["heldAlerts"] == [
        {"alertname": "API Down", "check": "api", "blockedBy": "database", "fingerprint": "fp2"}
    ]
    parent, other = payload["alerts"]
    assert parent["annotations"][HELD_ANNOTATION] == "API Down (check api), blocked by database"
    assert HELD_ANNOTATION not in other["annotations"]  # the disk alert holds nothing
    assert HELD_ANNOTATION not in payload["commonAnnotations"]
    # still Alertmanager's shape: string-to-string labels and annotations, v4 keys intact
    for alert in payload["alerts"]:
        assert all(isinstance(v, str) for v in alert["annotations"].values())
    assert payload["version"] == "4"
    assert set(build_webhook_payload(make_notification(), receiver="hooks")) == V4_KEYS


async def test_alertmanager_channel_posts_the_held_annotation_and_resends_it() -> None:
    posted: list[list[dict[str, Any]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        posted.append(json.loads(request.content))
        return httpx.Response(200)

    channel = AlertmanagerChannel(
        "am",
        channel_config(AlertmanagerChannelConfig, url="http://am.local"),
        channel_context(
            clock=FixedClock(T0 + 5), logger=LOG, transport=httpx.MockTransport(handler)
        ),
    )
    outcome = await channel.send(_parent_notification())
    assert isinstance(outcome, Delivered)
    [body] = posted
    by_name = {a["labels"]["alertname"]: a for a in body}
    assert by_name["Database Connection Issues"]["annotations"][HELD_ANNOTATION] == (
        "API Down (check api), blocked by database"
    )
    assert HELD_ANNOTATION not in by_name["Disk Full"]["annotations"]
    # the re-sent copy keeps the annotation (Alertmanager would otherwise drop it)
    assert dict(channel.firing["fp1"].annotations)[HELD_ANNOTATION].startswith("API Down")
    assert all(a.status is AlertStatus.FIRING for a in channel.firing.values())
    await channel.aclose()

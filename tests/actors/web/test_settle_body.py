"""The body-settling middleware of our server (actors/web/serving.py `_SettleBody`) beside an
app that reads the request body in a task of its own, as quart-trio does: the response ends as
soon as the body has arrived, whichever task read its last chunk (virtual time: no waiting)."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from actors.web.serving import _DRAIN_TIME, _SettleBody

SCOPE = {"type": "http", "headers": [(b"content-length", b"6")]}


async def _exchange(app: Any) -> tuple[list[dict[str, Any]], float]:
    """Run `app` behind the middleware; the body arrives in two chunks at 0.1 s and 0.2 s.
    Returns what was sent and the (virtual) time the response ended."""
    to_app, from_client = trio.open_memory_channel[dict[str, Any]](10)
    sent: list[dict[str, Any]] = []
    ended = trio.Event()
    at = [0.0]

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            at[0] = trio.current_time()
            ended.set()

    async def client() -> None:
        await trio.sleep(0.1)
        await to_app.send({"type": "http.request", "body": b"abc", "more_body": True})
        await trio.sleep(0.1)
        await to_app.send({"type": "http.request", "body": b"def", "more_body": False})
        await ended.wait()
        await to_app.send({"type": "http.disconnect"})

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client)
        await _SettleBody(app)(SCOPE, from_client.receive, send)
    return sent, at[0] - start


async def _answers_at_once_while_reading_in_a_task(scope: Any, receive: Any, send: Any) -> None:
    async def reader() -> None:  # quart-trio's request reader, running beside the handler
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        await send({"type": "http.response.start", "status": 403, "headers": []})
        await send({"type": "http.response.body", "body": b"no", "more_body": False})
        nursery.cancel_scope.cancel()


async def test_the_response_ends_when_the_apps_own_reader_took_the_last_chunk(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sent, ended = await _exchange(_answers_at_once_while_reading_in_a_task)
    assert ended < 1.0 < _DRAIN_TIME  # at the last chunk (0.2 s), not after the drain limit
    assert [m["type"] for m in sent] == [
        "http.response.start",
        "http.response.body",
        "http.response.body",
    ]
    assert b"".join(m.get("body", b"") for m in sent) == b"no"


async def _answers_at_once_ignoring_the_body(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def test_the_response_ends_when_the_middleware_read_the_last_chunk(
    autojump_clock: trio.testing.MockClock,
) -> None:
    _, ended = await _exchange(_answers_at_once_ignoring_the_body)
    assert 0.2 <= ended < 1.0

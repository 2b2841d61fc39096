"""Secrets of a check never reach its message, and never follow a redirect to another origin.

Against real local servers (Hypercorn): a token with a trailing newline (the h11 error quotes it
repr-escaped), credential headers on same- and cross-origin redirects, `user:password@` URLs.
"""

from __future__ import annotations

import base64
from typing import Any

import pydantic
import pytest
import trio

from actors.checks.actor import CheckActor
from actors.checks.http import HttpProbe
from actors.checks.probe import CheckContext
from actors.models import CheckResult, CheckStatus
from actors.secrets import config_secrets, redact
from actors.state import HealthState
from supervisor.config import ConfigError, parse_config
from tests.actors.notify.servers import Answer, ScriptedReceiver, serve_receiver

from .conftest import LocalServer, make_config

SECRET = "tok-SECRET-7f3a9c"


async def _once(config: Any) -> CheckResult:
    probe = HttpProbe(config, CheckContext())
    actor = CheckActor(config=config, probe=probe, health=HealthState())
    try:
        return await actor.run_once()
    finally:
        await probe.aclose()


@pytest.mark.parametrize(
    "header",
    [f"Bearer {SECRET}\n", f"Bearer {SECRET}\r\n", f"Bearer {SECRET}\x00"],
    ids=["newline", "crlf", "nul"],
)
async def test_an_illegal_token_is_not_echoed_in_the_message(
    http_server: LocalServer, header: str
) -> None:
    config = make_config(
        name="api",
        kind="http",
        url=f"http://127.0.0.1:{http_server.port}/ok",
        timeout="2s",
        headers={"Authorization": header},
    )
    result = await _once(config)
    assert result.status is CheckStatus.FAIL
    assert "header" in result.message.lower(), result.message
    assert SECRET not in result.message
    assert "***" in result.message


def test_redact_cuts_every_quoted_form() -> None:
    secret = f"Bearer {SECRET}\n"
    texts = [
        f"Illegal header value {secret.encode()!r}",
        f"value {secret!r}",
        f'{{"echo": "{secret.strip()}"}}',
        '{"echo": "Bearer ' + SECRET + '\\n"}',
    ]
    for text in texts:
        assert SECRET not in redact(text, [secret]), text


def test_config_secrets_of_a_check() -> None:
    config = make_config(
        name="api",
        kind="http",
        url="http://monitor:pa55word-x@127.0.0.1:1/ok",
        headers={"X-Custom": "custom-secret", "Accept": "text/plain", "Cookie": "sid=abcd"},
        secret_headers=["X-Custom"],
    )
    assert config_secrets(config) == {"pa55word-x", "custom-secret", "sid=abcd"}


async def _redirecting(nursery: trio.Nursery, location_of: Any) -> tuple[ScriptedReceiver, str]:
    target = ScriptedReceiver()
    target_url = await serve_receiver(nursery, target)
    first = ScriptedReceiver(script=[Answer(302, b"", (("Location", location_of(target_url)),))])
    first_url = await serve_receiver(nursery, first)
    return target, first_url


_CREDENTIALS = {
    "Authorization": "Bearer abc-credential",
    "X-Api-Key": "key-credential",
    "Cookie": "sid=cookie-credential",
    "X-Custom-Auth-Thing": "marked-credential",
    "X-Trace": "not-a-secret",
}


async def test_credentials_are_dropped_on_a_cross_origin_redirect(nursery: trio.Nursery) -> None:
    target, first_url = await _redirecting(nursery, lambda url: f"{url}/landing")
    config = make_config(
        name="api",
        kind="http",
        url=f"{first_url}/start",
        timeout="5s",
        headers={**_CREDENTIALS, "X-Tenant": "tenant-credential"},
        secret_headers=["x-tenant"],
    )
    result = await _once(config)
    assert result.status is CheckStatus.PASS, result.message
    (landed,) = target.received
    assert landed.path == "/landing"
    for name in ("authorization", "x-api-key", "cookie", "x-custom-auth-thing", "x-tenant"):
        assert name not in landed.headers, name
    assert landed.headers["x-trace"] == "not-a-secret"


async def test_credentials_follow_a_same_origin_redirect(nursery: trio.Nursery) -> None:
    server = ScriptedReceiver(script=[Answer(302, b"", (("Location", "/landing"),))])
    url = await serve_receiver(nursery, server)
    config = make_config(
        name="api", kind="http", url=f"{url}/start", timeout="5s", headers=_CREDENTIALS
    )
    assert (await _once(config)).status is CheckStatus.PASS
    _first, landed = server.received
    assert landed.path == "/landing"
    assert landed.headers["authorization"] == "Bearer abc-credential"
    assert landed.headers["cookie"] == "sid=cookie-credential"


async def test_userinfo_in_the_url_is_basic_auth(nursery: trio.Nursery) -> None:
    server = ScriptedReceiver()
    url = await serve_receiver(nursery, server)
    host = url.removeprefix("http://")
    config = make_config(name="api", kind="http", url=f"http://mon%40x:p%3Ass-9x@{host}/ok")
    assert (await _once(config)).status is CheckStatus.PASS
    (got,) = server.received
    assert got.headers["authorization"] == "Basic " + base64.b64encode(b"mon@x:p:ss-9x").decode()
    assert "@" not in got.headers["host"]


async def test_userinfo_password_never_in_a_message(http_server: LocalServer) -> None:
    config = make_config(
        name="api",
        kind="http",
        url=f"http://mon:hunter2-pw@127.0.0.1:{http_server.port}/status/500",
    )
    result = await _once(config)
    assert result.status is CheckStatus.FAIL
    assert "hunter2-pw" not in result.message


def test_userinfo_with_an_authorization_header_is_a_config_error() -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        make_config(
            name="api",
            kind="http",
            url="http://mon:hunter2-pw@127.0.0.1:80/ok",
            headers={"Authorization": "Bearer x"},
        )
    assert "keep one" in str(caught.value)


def test_check_config_never_prints_the_url_password() -> None:
    source = (
        '[[checks]]\nname = "api"\nkind = "http"\nurl = "http://mon:hunter2-pw@127.0.0.1:0/ok"\n'
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(source, env={})
    assert "port" in str(caught.value)
    assert "hunter2-pw" not in str(caught.value)

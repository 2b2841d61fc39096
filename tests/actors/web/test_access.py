"""The access policy as plain functions: tokens, scopes, origins, content types, addresses."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from actors.web.access import (
    AccessPolicy,
    AllowList,
    Presented,
    Scope,
    listen_is_loopback,
    required_scope,
    requires,
    unprotected_writes,
)
from actors.web.config import SecurityConfig, TokenConfig

POLICY = AccessPolicy(
    tokens=[
        ("ci", "t-ci", [Scope.EVENTS_WRITE]),
        ("ops", "t-ops", [Scope.READ, Scope.SILENCES_WRITE]),
    ],
    read_requires_token=True,
)


def _with(authorization: str | None = None, **fields: str) -> Presented:
    return Presented(address="127.0.0.1", authorization=authorization, **fields)


@pytest.mark.parametrize(
    ("authorization", "scope", "status", "token"),
    [
        (None, Scope.EVENTS_WRITE, 401, None),
        ("Bearer t-ci", Scope.EVENTS_WRITE, 200, "ci"),
        ("bearer   t-ci  ", Scope.EVENTS_WRITE, 200, "ci"),
        ("Basic t-ci", Scope.EVENTS_WRITE, 401, None),
        ("Bearer", Scope.EVENTS_WRITE, 401, None),
        ("Bearer t-c", Scope.EVENTS_WRITE, 401, None),
        ("Bearer t-ci", Scope.SILENCES_WRITE, 403, "ci"),
        ("Bearer t-ci", Scope.READ, 403, "ci"),
        ("Bearer t-ops", Scope.READ, 200, "ops"),
        ("Bearer t-ops", Scope.SILENCES_WRITE, 200, "ops"),
        ("Bearer t-ops", Scope.CONFIG_RELOAD, 403, "ops"),
        (None, Scope.PUBLIC, 200, None),
    ],
)
def test_tokens_and_scopes(
    authorization: str | None, scope: Scope, status: int, token: str | None
) -> None:
    decision = POLICY.decide(scope, _with(authorization))
    assert (decision.allowed, decision.status, decision.token) == (status == 200, status, token)
    challenge = dict(decision.headers).get("WWW-Authenticate", "")
    if status == 401:
        assert challenge == 'Bearer realm="blipee-monitor"'
    if status == 403:
        assert f'error="insufficient_scope", scope="{scope}"' in challenge
        assert f"the token '{token}' does not have the scope '{scope}'" in decision.message


@pytest.mark.parametrize(
    ("origin", "host", "scheme", "allowed"),
    [
        (None, "monitor:3000", "http", True),
        ("http://monitor:3000", "monitor:3000", "http", True),
        ("http://MONITOR:3000", "monitor:3000", "http", True),
        ("http://monitor:3001", "monitor:3000", "http", False),
        ("https://monitor", "monitor", "http", True),  # TLS ended by a proxy in front
        ("http://monitor", "monitor:80", "http", True),
        ("https://evil.example", "monitor:3000", "http", False),
        ("null", "monitor:3000", "http", False),
        ("http://monitor:3000", None, "http", False),
        ("https://status.example.com", "10.0.0.5:3000", "http", True),  # external_url
        ("http://[::1]:3000", "[::1]:3000", "http", True),
        ("http://[::1]:3001", "[::1]:3000", "http", False),
        ("ftp://monitor:3000", "monitor:3000", "http", False),
        ("http://monitor:99999", "monitor:3000", "http", False),
    ],
)
def test_writes_refuse_a_foreign_origin(
    origin: str | None, host: str | None, scheme: str, allowed: bool
) -> None:
    policy = AccessPolicy(
        tokens=[("a", "t", [Scope.EVENTS_WRITE])], origins=["https://status.example.com/x"]
    )
    presented = Presented(
        authorization="Bearer t", origin=origin, host=host, scheme=scheme, address="10.0.0.1"
    )
    decision = policy.decide(Scope.EVENTS_WRITE, presented)
    assert decision.allowed is allowed
    if not allowed:
        assert decision.status == 403
        assert decision.message.startswith("cross-origin request refused")
    # Reads are not refused for their Origin: a page cannot read the answer without CORS.
    assert policy.decide(Scope.READ, presented).allowed


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        (None, 200),
        ("application/json", 200),
        ("application/json; charset=utf-8", 200),
        ("text/plain", 415),
        ("Text/Plain; charset=utf-8", 415),
        ("application/x-www-form-urlencoded", 415),
        ("multipart/form-data; boundary=x", 415),
    ],
)
def test_writes_refuse_form_and_text_bodies(content_type: str | None, status: int) -> None:
    decision = POLICY.decide(
        Scope.EVENTS_WRITE, Presented(authorization="Bearer t-ci", content_type=content_type)
    )
    assert decision.status == status
    if status == 415:
        assert "send the body as application/json" in decision.message


def test_without_a_token_writes_pass_on_loopback_only() -> None:
    laptop = AccessPolicy.from_config(SecurityConfig(), listen="127.0.0.1:3000")
    assert laptop.decide(Scope.SILENCES_WRITE, Presented()).allowed
    exposed = AccessPolicy.from_config(SecurityConfig(), listen="0.0.0.0:3000")
    refused = exposed.decide(Scope.SILENCES_WRITE, Presented())
    assert (refused.allowed, refused.status) == (False, 403)
    assert "set [security] api_token" in refused.message
    assert exposed.decide(Scope.READ, Presented()).allowed
    # The CSRF rules hold on loopback too: a page in the operator's browser reaches 127.0.0.1.
    foreign = Presented(origin="https://evil.example", host="127.0.0.1:3000")
    assert laptop.decide(Scope.SILENCES_WRITE, foreign).status == 403
    assert laptop.decide(Scope.SILENCES_WRITE, Presented(content_type="text/plain")).status == 415


@pytest.mark.parametrize(
    ("listen", "loopback"),
    [
        ("127.0.0.1:3000", True),
        ("127.1.2.3:3000", True),
        ("localhost:3000", True),
        ("[::1]:3000", True),
        ("0.0.0.0:3000", False),
        ("[::]:3000", False),
        ("10.0.0.5:3000", False),
        ("monitor.internal:3000", False),
    ],
)
def test_loopback_listeners(listen: str, loopback: bool) -> None:
    assert listen_is_loopback(listen) is loopback
    assert (unprotected_writes(SecurityConfig(), listen) is None) is loopback
    token = SecurityConfig(api_token=SecretStr("t"))
    assert unprotected_writes(token, listen) is None


def test_allow_list_applies_to_every_scope_but_public() -> None:
    policy = AccessPolicy(allow_from=["10.0.0.0/8"], metrics_token="m")
    outside = Presented(address="192.168.1.1", authorization="Bearer m")
    for scope in Scope:
        decision = policy.decide(scope, outside)
        assert decision.allowed is (scope is Scope.PUBLIC), scope
        if scope is not Scope.PUBLIC:
            assert (decision.status, decision.message) == (403, "client address not allowed")
    assert policy.decide(
        Scope.METRICS, Presented(address="10.1.1.1", authorization="Bearer m")
    ).allowed
    assert policy.decide(Scope.METRICS, Presented(address="10.1.1.1")).status == 401
    assert not policy.decide_address(outside).allowed
    allow = AllowList(["127.0.0.1/32", "::1"])
    assert allow.allows("127.0.0.1")
    assert allow.allows("::ffff:127.0.0.1")
    assert not allow.allows("garbage")
    assert not allow.allows(None)


def test_presented_from_an_asgi_scope() -> None:
    scope = {
        "type": "http",
        "scheme": "https",
        "client": ("10.0.0.9", 5555),
        "headers": [
            (b"Authorization", b"Bearer x"),
            (b"origin", b"https://a"),
            (b"host", b"a"),
            (b"content-type", b"application/json"),
        ],
    }
    assert Presented.from_asgi(scope) == Presented(
        address="10.0.0.9",
        authorization="Bearer x",
        origin="https://a",
        host="a",
        content_type="application/json",
        scheme="https",
    )
    assert Presented.from_asgi({"type": "http"}) == Presented()


def test_a_route_declares_its_scope() -> None:
    @requires(Scope.ALERTS_TEST)
    async def view() -> None:
        return None

    async def bare() -> None:
        return None

    assert required_scope(view) is Scope.ALERTS_TEST
    assert required_scope(bare) is None


def test_api_token_holds_every_scope_and_named_tokens_theirs() -> None:
    security = SecurityConfig(
        api_token=SecretStr("t-all"),
        tokens=(TokenConfig(name="ci", token=SecretStr("t-ci"), scopes=("events:write",)),),
    )
    policy = AccessPolicy.from_config(security, listen="0.0.0.0:3000")
    for scope in (Scope.EVENTS_WRITE, Scope.SILENCES_WRITE, Scope.ALERTS_TEST, Scope.CONFIG_RELOAD):
        decision = policy.decide(scope, Presented(authorization="Bearer t-all"))
        assert (decision.allowed, decision.token) == (True, "api_token")
    assert policy.decide(Scope.EVENTS_WRITE, Presented(authorization="Bearer t-ci")).allowed
    assert policy.decide(Scope.CONFIG_RELOAD, Presented(authorization="Bearer t-ci")).status == 403
    # Reads stay open unless read_requires_token: the token is not even looked at.
    assert policy.decide(Scope.READ, Presented(authorization="Bearer nope")).allowed

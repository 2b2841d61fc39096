"""[security] tokens and scopes: validation, summary, warning, and reload without a restart."""

from __future__ import annotations

import textwrap
from pathlib import Path

import httpx
import pytest
import trio

from supervisor.app import App
from supervisor.app.reload import diff_configs
from supervisor.config import (
    ConfigError,
    default_config_path,
    load_config,
    load_config_and_warnings,
    parse_config,
    parse_config_and_warnings,
    summarize,
)

LOOPBACK = '[server]\nlisten = "127.0.0.1:3000"\n'
ALL_SCOPES = "(scopes: read, events:write, silences:write, alerts:test, config:reload)"


def _errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(textwrap.dedent(text), file="c.toml", env={})
    return [str(issue) for issue in caught.value.issues]


def test_an_unknown_scope_is_an_error_listing_the_scopes() -> None:
    errors = _errors(
        """\
        [[security.tokens]]
        name = "ci"
        token = "t-ci"
        scopes = ["events:write", "silence:write", "admin"]
        """
    )
    assert errors == [
        "c.toml:4:27: security.tokens[0].scopes[1]: unknown scope 'silence:write'; did you"
        f" mean 'silences:write'? {ALL_SCOPES}",
        f"c.toml:4:44: security.tokens[0].scopes[2]: unknown scope 'admin' {ALL_SCOPES}",
    ]


def _token(name: str, token: str, scopes: str) -> str:
    return f'\n[[security.tokens]]\nname = "{name}"\ntoken = "{token}"\nscopes = {scopes}\n'


SAME = '[security]\napi_token = "t-same"\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            SAME + _token("api_token", "t-other", '["read"]'),
            "c.toml:4:1: security.tokens: token names must be unique: api_token is used more"
            " than once (api_token names the [security] api_token)",
        ),
        (
            SAME + _token("ci", "t-same", '["read"]'),
            "c.toml:4:1: security.tokens: token values must be unique: api_token, ci have the"
            " same value",
        ),
        (
            _token("ci", "${UNSET:-}", '["read"]'),
            "c.toml:4:1: security.tokens[0].token: the token is empty; give it a long random"
            " value (e.g. from `openssl rand -hex 32`) or remove the entry",
        ),
        (
            _token("ci", "t", "[]"),
            f"c.toml:5:1: security.tokens[0].scopes: give at least one scope {ALL_SCOPES}",
        ),
        (
            _token("ci", "t", '["read", "read"]'),
            "c.toml:5:1: security.tokens[0].scopes: a scope is listed twice",
        ),
        (
            "[security]\nread_requires_token = true\n" + _token("ci", "t", '["events:write"]'),
            "c.toml:2:1: security.read_requires_token: read_requires_token needs a token with"
            " the 'read' scope: set api_token or add a [[security.tokens]] entry",
        ),
    ],
    ids=["name-twice", "value-twice", "empty", "no-scope", "scope-twice", "no-reader"],
)
def test_tokens_are_named_and_valued_once_and_hold_scopes(text: str, expected: str) -> None:
    assert _errors(text) == [expected]
    assert "t-same" not in expected


def test_reads_can_require_a_token() -> None:
    config = parse_config('[security]\napi_token = "t"\nread_requires_token = true\n', env={})
    assert config.security.read_requires_token


def test_summary_lists_token_names_and_scopes_never_values() -> None:
    text = LOOPBACK + textwrap.dedent(
        """\
        [security]
        api_token = "t-very-secret-api"
        read_requires_token = true

        [[security.tokens]]
        name = "ci"
        token = "t-very-secret-ci"
        scopes = ["events:write", "read"]
        """
    )
    config = parse_config(text, env={})
    summary = summarize(config, "c.toml")
    assert "api_token <set>" in summary
    assert "reads need a token" in summary
    assert "  token ci: events:write, read" in summary
    assert "t-very-secret" not in summary
    # Named tokens are secrets like the others: kept out of every log line.
    assert {"t-very-secret-api", "t-very-secret-ci"} <= config.secret_values()


def test_no_token_beyond_loopback_is_a_warning_saying_how_to_set_one() -> None:
    _, warnings = parse_config_and_warnings('[server]\nlisten = "0.0.0.0:3000"\n', file="c.toml")
    assert [str(w) for w in warnings] == [
        "c.toml:2:1: server.listen: no API token is configured and the API listens on"
        " 0.0.0.0:3000, which is not a loopback address, so write routes (events, silences,"
        " test alerts, reload) answer 403: set [security] api_token (e.g. api_token ="
        ' "${BLIPEE_API_TOKEN}" and export BLIPEE_API_TOKEN=$(openssl rand -hex 32)) or add a'
        " [[security.tokens]] entry, or listen on 127.0.0.1"
    ]
    assert parse_config_and_warnings(LOOPBACK, env={})[1] == ()
    token = '[server]\nlisten = "0.0.0.0:3000"\n[security]\napi_token = "t"\n'
    assert parse_config_and_warnings(token, env={})[1] == ()
    # The packaged default binds every address: without BLIPEE_API_TOKEN it refuses writes.
    _, warnings = load_config_and_warnings(default_config_path(), env={})
    assert any("no API token is configured" in str(w) for w in warnings)
    _, warnings = load_config_and_warnings(default_config_path(), env={"BLIPEE_API_TOKEN": "t"})
    assert not any("no API token is configured" in str(w) for w in warnings)


def test_access_keys_reload_live_anonymisation_needs_a_restart() -> None:
    old = parse_config(LOOPBACK + '[security]\napi_token = "a"\n', env={})
    live = parse_config(
        LOOPBACK
        + '[security]\napi_token = "b"\nallow_from = ["10.0.0.0/8"]\nmax_body_bytes = 2048\n'
        + '[[security.tokens]]\nname = "ci"\ntoken = "c"\nscopes = ["read"]\n',
        env={},
    )
    assert diff_configs(old, live).needs_restart == ()
    hashed = parse_config(
        LOOPBACK + '[security]\napi_token = "a"\nanonymize_labels = ["org"]\nanonymize_key = "k"\n',
        env={},
    )
    assert diff_configs(old, hashed).needs_restart == ("security",)


CONFIG = """
[server]
listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:0"

[storage]
path = "{db}"

[security]
max_body_bytes = {limit}
{tokens}
"""

OLD = """
[[security.tokens]]
name = "ci-old"
token = "t-old"
scopes = ["events:write", "config:reload"]
"""

NEW = """
[[security.tokens]]
name = "ci-new"
token = "t-new"
scopes = ["events:write"]

[[security.tokens]]
name = "ops"
token = "t-ops"
scopes = ["config:reload"]
"""

EVENTS = b'{"events": [{"type": "heartbeat", "agent": "a"}]}'
JSON = {"Content-Type": "application/json"}


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **JSON}


async def test_tokens_rotate_on_reload_without_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    db = tmp_path / "m.db"
    path.write_text(CONFIG.format(db=db, limit=1_048_576, tokens=OLD))
    app = App(load_config(path, env={}), path=path, env={})
    async with trio.open_nursery() as nursery:
        await nursery.start(app.run)
        started = {info.id: info.starts for info in app.root.which_children()}
        base = f"http://127.0.0.1:{app.api_server.port}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            post = http.post
            assert (
                await post("/api/v1/events", content=EVENTS, headers=_auth("t-old"))
            ).status_code == 202
            assert (
                await post("/api/v1/events", content=EVENTS, headers=_auth("t-new"))
            ).status_code == 401
            # Rotate: the new file replaces ci-old by ci-new and ops, and lowers the body limit.
            path.write_text(CONFIG.format(db=db, limit=2048, tokens=NEW))
            reloaded = await post("/api/v1/reload", headers=_auth("t-old"))
            assert reloaded.status_code == 200, reloaded.text
            assert reloaded.json()["needsRestart"] == []
            # Same connection, next request: the new tokens and limit apply.
            assert (
                await post("/api/v1/events", content=EVENTS, headers=_auth("t-old"))
            ).status_code == 401
            assert (
                await post("/api/v1/events", content=EVENTS, headers=_auth("t-new"))
            ).status_code == 202
            denied = await post("/api/v1/reload", headers=_auth("t-new"))
            assert denied.status_code == 403
            assert "'ci-new' does not have the scope 'config:reload'" in denied.json()["error"]
            assert (await post("/api/v1/reload", headers=_auth("t-ops"))).status_code == 200
            big = b'{"events": [' + b'{"type": "heartbeat", "agent": "a"},' * 100 + b"]}"
            too_large = await post("/api/v1/events", content=big, headers=_auth("t-new"))
            assert too_large.status_code == 413
            assert too_large.json() == {
                "error": "request body larger than 2048 bytes (security.max_body_bytes)"
            }
        # Nothing restarted for it.
        assert {info.id: info.starts for info in app.root.which_children()} == started
        await app.stop()

"""Valid configurations, interpolation, positions, disabled channels and the summary."""

from __future__ import annotations

import inspect
import textwrap
from pathlib import Path

import pytest
import trustme

from actors.telemetry.store import MetricStore
from supervisor._config.interpolate import interpolate
from supervisor._config.positions import Position, index_positions
from supervisor.config import (
    ConfigError,
    LimitsConfig,
    default_config_path,
    load_config,
    load_config_and_warnings,
    parse_config,
    parse_config_and_warnings,
    resolve_config_path,
    summarize,
)

ROOT = Path(__file__).resolve().parents[2]


def test_packaged_default_validates_without_any_environment() -> None:
    config = load_config(default_config_path(), env={})
    assert [rule.name for rule in config.rules] == [
        "High Agent Failure Rate",
        "High API Latency",
        "Low ML Model Accuracy",
        "Database Connection Issues",
        "Network Growth Stalled",
    ]
    assert config.server.listen == "0.0.0.0:3000"
    assert config.server.metrics_listen == "0.0.0.0:9464"
    assert [check.kind for check in config.checks] == ["self"]
    assert config.disabled_channels() == {
        "email": "smtp_host is empty",
        "slack": "webhook_url is empty",
        "pagerduty": "routing_key is empty",
    }
    assert list(config.enabled_channels()) == ["console"]


def test_default_rules_match_the_seed() -> None:
    config = load_config(default_config_path(), env={})
    by_id = {rule.id: rule for rule in config.rules}
    failure = by_id["high-agent-failure-rate"]
    assert (failure.severity, failure.channels) == ("critical", ("email", "slack"))
    assert (failure.condition.aggregate, failure.condition.window) == ("increase", 300.0)
    assert (failure.condition.operator, failure.condition.threshold) == (">", 10)
    database = by_id["database-connection-issues"]
    assert database.condition.labels == {"check": "database"}
    assert database.channels == ("email", "pagerduty")
    stalled = by_id["network-growth-stalled"]
    assert (stalled.severity, stalled.condition.window) == ("info", 86400.0)
    assert (stalled.condition.aggregate, stalled.condition.duration) == ("increase", 86400.0)


def test_default_channels_enable_with_their_secrets() -> None:
    env = {"SLACK_WEBHOOK_URL": "https://hooks.slack.com/x", "SMTP_HOST": "mail"}
    config = load_config(default_config_path(), env=env)
    assert config.disabled_channels() == {"pagerduty": "routing_key is empty"}


def test_repository_example_validates_without_any_environment() -> None:
    config = load_config(ROOT / "config.toml", env={})
    assert config.server.listen.startswith("127.0.0.1:")
    assert "console" in config.enabled_channels()
    kinds = {check.kind for check in config.checks}
    assert kinds == {"self", "http", "tcp", "postgres", "redis", "agents", "metric"}


def test_repository_example_has_no_warnings() -> None:
    _, warnings = load_config_and_warnings(ROOT / "config.toml", env={})
    assert warnings == ()


def test_packaged_default_warns_until_its_database_check_is_enabled(tmp_path: Path) -> None:
    path = default_config_path()
    # With a token (without one, writes are refused and that is a warning too: test_security).
    _, warnings = load_config_and_warnings(path, env={"BLIPEE_API_TOKEN": "t0ken"})
    line = _line_of(path, 'labels = { check = "database" }')
    assert [str(w) for w in warnings] == [
        f"{path}:{line}:12:"
        " rules[3].condition.labels.check: no check named 'database' is defined"
        " (defined: self): this rule watches samples that nothing records"
    ]
    # The commented check next to it is valid, and enabling it silences the warning.
    text = path.read_text(encoding="utf-8")
    block = text[text.index("# [[checks]]") : text.index("# The seed's five")]
    enabled = text.replace(block, "".join(line[2:] + "\n" for line in block.splitlines()))
    env = {
        "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/postgres",
        "BLIPEE_API_TOKEN": "t0ken",
    }
    config, warnings = parse_config_and_warnings(enabled, env=env)
    assert warnings == ()
    database = next(check for check in config.checks if check.name == "database")
    assert (database.kind, database.critical) == ("postgres", True)


def _line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(needle)


def test_a_condition_on_an_undefined_check_is_a_warning_not_an_error() -> None:
    source = textwrap.dedent(
        """\
        [[checks]]
        name = "database"
        kind = "self"

        [[checks]]
        name = "cache-errors"
        kind = "metric"
        condition = { metric = "health_check_up", labels = { check = "cache" } }

        [[rules]]
        id = "db"
        name = "DB"
        condition = { metric = "health_check_up", labels = { check = "databse" } }

        [[rules]]
        id = "ok"
        name = "OK"
        condition = { metric = "health_check_up", labels = { check = "database" } }

        [[rules]]
        id = "other-label"
        name = "Other"
        condition = { metric = "api_errors_total", labels = { route = "database" } }

        [server]
        listen = "127.0.0.1:3000"  # writes without a token are open: no warning about that
        """
    )
    config, warnings = parse_config_and_warnings(source, file="c.toml", env={})
    assert len(config.rules) == 3
    assert [str(w) for w in warnings] == [
        "c.toml:8:54: checks[1].condition.labels.check: no check named 'cache' is defined"
        " (defined: cache-errors, database): this check watches samples that nothing records",
        "c.toml:13:54: rules[0].condition.labels.check: no check named 'databse' is defined;"
        " did you mean 'database'?: this rule watches samples that nothing records",
    ]
    assert parse_config(source, env={}) == config


def test_check_timeout_defaults_to_the_interval_when_shorter() -> None:
    config = parse_config(
        textwrap.dedent(
            """\
            [[checks]]
            name = "fast"
            kind = "self"
            interval = "1s"

            [[checks]]
            name = "faster"
            kind = "self"
            interval = "500ms"

            [[checks]]
            name = "slow"
            kind = "self"
            interval = "1m"

            [[checks]]
            name = "explicit"
            kind = "self"
            interval = "1s"
            timeout = "250ms"
            """
        ),
        env={},
    )
    assert [(c.name, c.timeout) for c in config.checks] == [
        ("fast", 1.0),
        ("faster", 0.5),
        ("slow", 2.0),
        ("explicit", 0.25),
    ]
    assert "fast: self every 1s, timeout 1s" in summarize(config, "c.toml")


def test_tls_certificate_and_key_are_loaded(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    other_key = tmp_path / "other.pem"
    ca.issue_cert("other").private_key_pem.write_to_path(str(other_key))

    def server(cert_path: Path, key_path: Path) -> str:
        return f'[server]\ntls_cert = "{cert_path}"\ntls_key = "{key_path}"\n'

    config = parse_config(server(cert_file, key_file), env={})
    assert config.server.tls_cert == str(cert_file)
    with pytest.raises(ConfigError) as mismatch:
        parse_config(server(cert_file, other_key), file="c.toml", env={})
    assert str(mismatch.value) == (
        f"c.toml:2:1: server.tls_cert: cannot load {cert_file}:"
        " tls_key is not the key of this certificate"
    )
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("not a certificate\n")
    with pytest.raises(ConfigError) as garbage:
        parse_config(server(not_pem, key_file), file="c.toml", env={})
    assert str(garbage.value) == (
        f"c.toml:2:1: server.tls_cert: cannot load {not_pem}:"
        " not a PEM certificate with a PEM private key in tls_key"
    )


def test_resolve_config_path(tmp_path: Path) -> None:
    assert resolve_config_path("x.toml", cwd=tmp_path) == Path("x.toml")
    assert resolve_config_path(None, cwd=tmp_path) == default_config_path()
    (tmp_path / "config.toml").write_text("")
    assert resolve_config_path(None, cwd=tmp_path) == tmp_path / "config.toml"


def test_missing_file_is_one_issue(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.toml")
    assert str(caught.value) == f"{tmp_path / 'nope.toml'}: no such file"


def test_empty_file_is_a_valid_configuration() -> None:
    config = parse_config("", env={})
    assert config.checks == ()
    assert config.supervisor.shutdown_timeout == 10.0
    assert config.log.format == "logfmt"


def test_interpolation_rules() -> None:
    tree = {
        "a": "${X}",
        "b": "${UNSET:-fallback}",
        "c": "${EMPTY:-fallback}",
        "d": "$${X} and ${X}",
        "e": ["${X}", {"f": "${X:-}"}],
        "g": 5,
    }
    env = {"X": "x", "EMPTY": ""}
    out, problems = interpolate(tree, env)
    assert out == {
        "a": "x",
        "b": "fallback",
        "c": "fallback",
        "d": "${X} and x",
        "e": ["x", {"f": "x"}],
        "g": 5,
    }
    assert problems == []


def test_interpolation_reports_the_variable_and_key_never_a_value() -> None:
    _, problems = interpolate({"t": {"k": ["ok", "${NOPE}"]}}, {"OTHER": "s3cr3t"})
    assert [(p.path, p.message) for p in problems] == [
        (
            ("t", "k", 1),
            "environment variable NOPE is not set and ${NOPE} has no default "
            "(set it, or write ${NOPE:-default})",
        )
    ]


def test_positions_cover_headers_arrays_of_tables_inline_and_dotted_keys() -> None:
    text = textwrap.dedent(
        """\
        # comment
        top = 1
        [a.b]
        c = "x # not a comment"
        d.e = { f = 1, "g h" = [1, { i = 2 }] }

        [[checks]]
        name = '''multi
        line'''
        [[checks]]
          name = \"\"\"x\"\"\"
        [checks.condition]
        metric = "m"
        arr = [
          "one",
          "two",
        ]
        """
    )
    index = index_positions(text)
    assert index.get(("top",)) == Position(2, 1)
    assert index.get(("a",)) == Position(3, 1)
    assert index.get(("a", "b", "c")) == Position(4, 1)
    assert index.get(("a", "b", "d", "e", "f")) == Position(5, 9)
    assert index.get(("a", "b", "d", "e", "g h", 1, "i")) == Position(5, 30)
    assert index.get(("checks", 0)) == Position(7, 1)
    assert index.get(("checks", 1, "name")) == Position(11, 3)
    assert index.get(("checks", 1, "condition", "metric")) == Position(13, 1)
    assert index.get(("checks", 1, "condition", "arr", 1)) == Position(16, 3)
    assert index.find(("checks", 1, "condition", "nope")) == Position(12, 1)
    assert index.find(("nowhere",)) is None


def test_summary_never_shows_secret_values() -> None:
    source = textwrap.dedent(
        """\
        [security]
        api_token = "tok-very-secret"
        [channels.slack]
        kind = "slack"
        webhook_url = "https://hooks.slack.com/services/SECRETPATH"
        [channels.pd]
        kind = "pagerduty"
        """
    )
    config = parse_config(source, env={})
    text = summarize(config, "c.toml")
    assert "tok-very-secret" not in text
    assert "SECRETPATH" not in text
    assert "api_token <set>" in text
    assert "slack: slack (webhook_url <set>) enabled" in text
    assert "pd: pagerduty (routing_key <empty>) disabled: routing_key is empty" in text


def test_error_messages_never_show_secret_values() -> None:
    source = textwrap.dedent(
        """\
        [[checks]]
        name = "db"
        kind = "postgres"
        dsn = "postgresql://u:hunter2hunter2@h/db"
        query = 5
        timeout = "9s"
        interval = "1s"
        [channels.hooks]
        kind = "webhook"
        url = "ftp://user:hunter2hunter2@example.com"
        """
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(source, file="c.toml", env={})
    text = str(caught.value)
    assert "hunter2" not in text
    assert "c.toml:10:1: channels.hooks.url: expected an http:// or https:// URL" in text


def test_equal_configurations_compare_equal() -> None:
    source = (ROOT / "config.toml").read_text()
    assert parse_config(source, env={}) == parse_config(source, env={})
    changed = source.replace('timeout = "1s"', 'timeout = "2s"', 1)
    assert parse_config(source, env={}).checks[0] != parse_config(changed, env={}).checks[0]


def test_limits_default_to_the_metric_store_budgets() -> None:
    defaults = inspect.signature(MetricStore).parameters
    limits = LimitsConfig()
    assert limits.max_series == defaults["max_total_series"].default
    assert limits.max_points == defaults["max_total_points"].default
    assert limits.max_series_per_metric == defaults["max_series"].default
    assert limits.max_points_per_series == defaults["max_points"].default


def test_limits_are_configurable_and_summarised() -> None:
    source = textwrap.dedent(
        """\
        [limits]
        max_series = 20000
        max_points = 500000
        max_series_per_metric = 2000
        max_points_per_series = 3600
        """
    )
    config = parse_config(source, env={})
    assert config.limits == LimitsConfig(
        max_series=20_000,
        max_points=500_000,
        max_series_per_metric=2_000,
        max_points_per_series=3_600,
    )
    assert (
        "limits: metric store 20,000 series, 500,000 points (2,000 series per metric,"
        " 3,600 points per series)"
    ) in summarize(config, "c.toml")


def test_secret_values_of_a_configuration() -> None:
    source = textwrap.dedent(
        """\
        [security]
        api_token = "tok-very-secret"
        [[checks]]
        name = "api"
        kind = "http"
        url = "http://127.0.0.1:8080/health"
        headers = { Authorization = "Bearer check-token", Accept = "application/json" }
        [channels.slack]
        kind = "slack"
        webhook_url = "https://hooks.slack.com/services/SECRETPATH"
        [channels.pd]
        kind = "pagerduty"
        """
    )
    assert parse_config(source, env={}).secret_values() == {
        "tok-very-secret",
        "Bearer check-token",
        "https://hooks.slack.com/services/SECRETPATH",
    }

"""A table of broken configuration files and the exact messages users get for them."""

from __future__ import annotations

import ast
import sys
import textwrap
from pathlib import Path

import pytest

from actors.checks.kinds import KINDS as CHECK_KINDS
from actors.configtypes import ConfigModel
from actors.notify.channels.kinds import KINDS as CHANNEL_KINDS
from supervisor.config import _ERROR_KEYS, ConfigError, parse_config

ENV = {"HOME": "/root", "SMTP_HOST": "mail.example.com"}

# (id, TOML source, expected messages: one `c.toml:LINE:COL: KEY.PATH: message` each)
CASES: list[tuple[str, str, list[str]]] = [
    (
        "toml-syntax",
        """
        [server
        listen = "0.0.0.0:3000"
        """,
        ["c.toml:1:8: TOML syntax: expected ']' at the end of a table declaration"],
    ),
    (
        "toml-duplicate-key",
        """
        [server]
        listen = "0.0.0.0:3000"
        listen = "0.0.0.0:3001"
        """,
        ["c.toml:3:24: TOML syntax: cannot overwrite a value"],
    ),
    (
        "unknown-table-did-you-mean",
        """
        [sever]
        listen = "0.0.0.0:3000"
        """,
        ["c.toml:1:1: sever: unknown key; did you mean 'server'?"],
    ),
    (
        "unknown-key-no-close-match",
        """
        [storage]
        path = "x.db"
        colour = "blue"
        """,
        [
            "c.toml:3:1: storage.colour: unknown key;"
            " expected one of: path, spool_limit, spool_path, url"
        ],
    ),
    (
        "storage-path-and-url",
        """
        [storage]
        path = "x.db"
        url = "postgresql://monitor@db/monitor"
        """,
        [
            "c.toml:2:1: storage.path: set either path (SQLite) or url (PostgreSQL), not both:"
            " path and url"
        ],
    ),
    (
        "storage-url-not-postgresql",
        """
        [storage]
        url = "mysql://monitor@db/monitor"
        """,
        ["c.toml:2:1: storage.url: url must be a PostgreSQL URL: postgresql://user@host:5432/db"],
    ),
    (
        "cluster-without-url",
        """
        [cluster]
        mode = "redundant"
        """,
        [
            "c.toml:1:1: cluster: [cluster] needs storage.url: replicas share their state in"
            ' PostgreSQL (set [storage] url = "postgresql://...", or remove [cluster])'
        ],
    ),
    (
        "cluster-bad-values",
        """
        [storage]
        url = "postgresql://monitor@db/monitor"
        [cluster]
        replica = "a b"
        mode = "shared"
        heartbeat = "0s"
        """,
        [
            "c.toml:4:1: cluster.replica: replica must be at most 128 letters, digits, '_', '.',"
            " ':' or '-' (got 'a b')",
            "c.toml:5:1: cluster.mode: must be 'redundant' or 'sharded' (got \"shared\")",
            "c.toml:6:1: cluster.heartbeat: heartbeat must be longer than 0s",
        ],
    ),
    (
        "unknown-check-key-did-you-mean",
        """
        [[checks]]
        name = "self"
        kind = "self"
        timout = "1s"
        """,
        ["c.toml:4:1: checks[0].timout: unknown key; did you mean 'timeout'?"],
    ),
    (
        "bad-duration",
        """
        [[checks]]
        name = "self"
        kind = "self"
        interval = "10x"
        """,
        [
            "c.toml:4:1: checks[0].interval: invalid duration '10x'; use a number with a unit"
            " (ms, s, m, h, d, w), e.g. '250ms', '10s', '1h30m'"
        ],
    ),
    (
        "duration-without-unit",
        """
        [supervisor]
        period = 60
        """,
        ["c.toml:2:1: supervisor.period: a duration needs a unit: write '60s' or '60ms'"],
    ),
    (
        "unknown-check-kind",
        """
        [[checks]]
        name = "api"
        kind = "htp"
        url = "http://127.0.0.1/"
        """,
        [
            "c.toml:3:1: checks[0].kind: unknown kind 'htp' (expected one of: "
            + ", ".join(kind.name for kind in CHECK_KINDS)  # http, tcp, ... in order
            + "); did you mean 'http'?"
        ],
    ),
    (
        "missing-check-kind",
        """
        [[checks]]
        name = "api"
        """,
        [
            "c.toml:1:1: checks[0].kind: required key is missing (one of: "
            + ", ".join(kind.name for kind in CHECK_KINDS)
            + ")"
        ],
    ),
    (
        "missing-http-url",
        """
        [[checks]]
        name = "self"
        kind = "self"

        [[checks]]
        name = "api"
        kind = "http"
        """,
        ["c.toml:5:1: checks[1].url: required key is missing"],
    ),
    (
        "timeout-longer-than-interval",
        """
        [[checks]]
        name = "self"
        kind = "self"
        interval = "1s"
        timeout = "5s"
        """,
        ["c.toml:5:1: checks[0].timeout: timeout must not be longer than interval"],
    ),
    (
        "tcp-port-out-of-range",
        """
        [[checks]]
        name = "port"
        kind = "tcp"
        host = "127.0.0.1"
        port = 70000
        """,
        ["c.toml:5:1: checks[0].port: must be less than or equal to 65535 (got 70000)"],
    ),
    (
        "bad-listen-address",
        """
        [server]
        listen = "3000"
        """,
        [
            "c.toml:2:1: server.listen: expected 'host:port', e.g. '0.0.0.0:3000', got '3000'",
        ],
    ),
    # A model-level error is reported with the key errors of the same table, in one pass.
    (
        "timeout-longer-than-interval-besides-a-key-error",
        """
        [[checks]]
        name = "port"
        kind = "tcp"
        host = "127.0.0.1"
        port = 70000
        interval = "1s"
        timeout = "5s"
        """,
        [
            "c.toml:5:1: checks[0].port: must be less than or equal to 65535 (got 70000)",
            "c.toml:7:1: checks[0].timeout: timeout must not be longer than interval",
        ],
    ),
    (
        "model-errors-besides-key-errors-in-several-tables",
        """
        [server]
        listen = "127.0.0.1:3000"
        metrics_listen = "127.0.0.1:3000"
        external_url = 5

        [supervisor]
        intensity = -1
        backoff_initial = "1m"
        backoff_max = "1s"
        """,
        [
            "c.toml:3:1: server.metrics_listen: metrics_listen 127.0.0.1:3000 and listen"
            " 127.0.0.1:3000 bind the same address and port; give /metrics its own port",
            "c.toml:4:1: server.external_url: must be a valid string (got 5)",
            "c.toml:7:1: supervisor.intensity: must be greater than or equal to 0 (got -1)",
            "c.toml:8:1: supervisor.backoff_initial: backoff_initial must not be longer than"
            " backoff_max",
        ],
    ),
    (
        "model-error-about-an-invalid-key-is-not-reported",
        """
        [[checks]]
        name = "self"
        kind = "self"
        interval = "1"
        timeout = "5s"
        """,
        [
            "c.toml:4:1: checks[0].interval: invalid duration '1'; use a number with a unit"
            " (ms, s, m, h, d, w), e.g. '250ms', '10s', '1h30m'",
        ],
    ),
    (
        "listen-equals-metrics-listen",
        """
        [server]
        listen = "127.0.0.1:9000"
        metrics_listen = "127.0.0.1:9000"
        """,
        [
            "c.toml:3:1: server.metrics_listen: metrics_listen 127.0.0.1:9000 and listen"
            " 127.0.0.1:9000 bind the same address and port; give /metrics its own port",
        ],
    ),
    (
        "listen-covers-metrics-listen",
        """
        [server]
        listen = "0.0.0.0:9000"
        metrics_listen = "localhost:9000"
        """,
        [
            "c.toml:3:1: server.metrics_listen: metrics_listen localhost:9000 and listen"
            " 0.0.0.0:9000 bind the same address and port; give /metrics its own port",
        ],
    ),
    (
        "default-metrics-listen-taken-by-listen",
        """
        [server]
        listen = "[::]:9464"
        """,
        [
            "c.toml:2:1: server.listen: metrics_listen 0.0.0.0:9464 and listen"
            " [::]:9464 bind the same address and port; give /metrics its own port",
        ],
    ),
    (
        "malformed-ipv6-listen",
        """
        [server]
        listen = "127.0.0.1:3000"
        metrics_listen = "[::1:9464"
        """,
        [
            "c.toml:3:1: server.metrics_listen: invalid IPv6 address in '[::1:9464';"
            " expected '[ADDRESS]:PORT', e.g. '[::1]:3000'",
        ],
    ),
    (
        "unbracketed-ipv6-listen",
        """
        [server]
        listen = "::1:3000"
        """,
        [
            "c.toml:2:1: server.listen: write an IPv6 address in brackets, e.g. '[::1]:3000',"
            " got '::1:3000'",
        ],
    ),
    (
        "invalid-listen-host",
        """
        [server]
        listen = "300.1.2.3:3000"
        metrics_listen = "my host:9464"
        """,
        [
            "c.toml:2:1: server.listen: invalid host '300.1.2.3' in '300.1.2.3:3000';"
            " expected an IP address or a name",
            "c.toml:3:1: server.metrics_listen: invalid host 'my host' in 'my host:9464';"
            " expected an IP address or a name",
        ],
    ),
    # What `run` reads besides the file, and values its actors parse again at start.
    (
        "tls-files-missing",
        """
        [server]
        tls_cert = "/nonexistent/cert.pem"
        tls_key = "/nonexistent/key.pem"
        """,
        [
            "c.toml:2:1: server.tls_cert: no such file /nonexistent/cert.pem",
            "c.toml:3:1: server.tls_key: no such file",
        ],
    ),
    (
        "maintenance-unknown-time-zone-and-cron-out-of-range",
        """
        [[maintenance]]
        cron = "99 2 * * *"
        duration = "1h"
        timezone = "Mars/Olympus"
        """,
        [
            "c.toml:2:1: maintenance[0].cron: invalid cron expression '99 2 * * *':"
            " '99' is out of range 0-59",
            "c.toml:4:1: maintenance[0].timezone: unknown time zone 'Mars/Olympus';"
            " use an IANA name such as 'Europe/Lisbon'",
        ],
    ),
    (
        "url-port-out-of-range",
        """
        [[checks]]
        name = "api"
        kind = "http"
        url = "http://127.0.0.1:99999/health"

        [channels.alertmanager]
        kind = "alertmanager"
        url = "http://127.0.0.1:0"
        """,
        [
            "c.toml:4:1: checks[0].url: invalid port in 'http://127.0.0.1:99999/health';"
            " expected 1-65535",
            "c.toml:8:1: channels.alertmanager.url: invalid port in 'http://127.0.0.1:0';"
            " expected 1-65535",
        ],
    ),
    (
        "wrong-type-bool",
        """
        [[checks]]
        name = "self"
        kind = "self"
        critical = "yes please"
        """,
        [
            "c.toml:4:1: checks[0].critical: must be a valid boolean, unable to interpret input"
            ' (got "yes please")'
        ],
    ),
    (
        "env-var-without-default",
        """
        [[checks]]
        name = "database"
        kind = "postgres"
        dsn = "${DATABASE_URL}"
        """,
        [
            "c.toml:4:1: checks[0].dsn: environment variable DATABASE_URL is not set and"
            " ${DATABASE_URL} has no default (set it, or write ${DATABASE_URL:-default})"
        ],
    ),
    (
        "invalid-interpolation",
        """
        [storage]
        path = "${data dir}/monitor.db"
        """,
        [
            "c.toml:2:1: storage.path: invalid '${' expression; write ${NAME} or"
            " ${NAME:-default} (NAME: letters, digits, '_'), or '$${' for a literal '${'"
        ],
    ),
    (
        "rule-unknown-channel",
        """
        [[rules]]
        id = "r1"
        name = "R1"
        channels = ["console", "slak"]
        condition = { metric = "up" }

        [channels.slack]
        kind = "slack"

        [channels.console]
        kind = "console"
        """,
        ["c.toml:4:24: rules[0].channels[1]: unknown channel 'slak'; did you mean 'slack'?"],
    ),
    (
        "route-unknown-channel",
        """
        [[routing.routes]]
        matchers = ["severity=critical"]
        channels = ["pager"]

        [channels.console]
        kind = "console"
        """,
        ["c.toml:3:13: routing.routes[0].channels[0]: unknown channel 'pager' (defined: console)"],
    ),
    (
        "depends-on-unknown",
        """
        [[checks]]
        name = "api"
        kind = "tcp"
        host = "127.0.0.1"
        port = 80
        depends_on = ["databse"]

        [[checks]]
        name = "database"
        kind = "tcp"
        host = "127.0.0.1"
        port = 5432
        """,
        ["c.toml:6:15: checks[0].depends_on[0]: unknown check 'databse'; did you mean 'database'?"],
    ),
    (
        "depends-on-cycle",
        """
        [[checks]]
        name = "a"
        kind = "self"
        depends_on = ["b"]

        [[checks]]
        name = "b"
        kind = "self"
        depends_on = ["c"]

        [[checks]]
        name = "c"
        kind = "self"
        depends_on = ["a"]
        """,
        ["c.toml:4:1: checks[0].depends_on: dependency cycle: a -> b -> c -> a"],
    ),
    (
        "depends-on-itself",
        """
        [[checks]]
        name = "a"
        kind = "self"
        depends_on = ["a"]
        """,
        ["c.toml:4:1: checks[0].depends_on: a check cannot depend on itself"],
    ),
    (
        "duplicate-check-name",
        """
        [[checks]]
        name = "self"
        kind = "self"

        [[checks]]
        name = "self"
        kind = "self"
        """,
        ["c.toml:6:1: checks[1].name: duplicate check name 'self' (first at line 2)"],
    ),
    (
        "duplicate-rule-id",
        """
        [[rules]]
        id = "r"
        name = "First"
        condition = { metric = "up" }

        [[rules]]
        id = "r"
        name = "Second"
        condition = { metric = "up" }
        """,
        ["c.toml:7:1: rules[1].id: duplicate rule id 'r' (first at line 2)"],
    ),
    (
        "bad-aggregate",
        """
        [[rules]]
        id = "r"
        name = "R"
        [rules.condition]
        metric = "up"
        aggregate = "average"
        """,
        [
            "c.toml:6:1: rules[0].condition.aggregate: must be 'last', 'avg', 'min', 'max',"
            " 'sum', 'count', 'rate', 'increase', 'p50', 'p90', 'p95', 'p99' or 'absent'"
            ' (got "average")'
        ],
    ),
    (
        "bad-severity",
        """
        [[rules]]
        id = "r"
        name = "R"
        severity = "page"
        condition = { metric = "up" }
        """,
        ["c.toml:4:1: rules[0].severity: must be 'critical', 'warning' or 'info' (got \"page\")"],
    ),
    (
        "rule-without-condition-metric",
        """
        [[rules]]
        id = "r"
        name = "R"
        [rules.condition]
        threshold = 1
        """,
        ["c.toml:4:1: rules[0].condition.metric: required key is missing"],
    ),
    (
        "rule-missing-condition",
        """
        [[rules]]
        id = "r"
        name = "R"
        """,
        ["c.toml:1:1: rules[0].condition: required key is missing"],
    ),
    (
        "rule-reserved-label",
        """
        [[rules]]
        id = "r"
        name = "R"
        labels = { severity = "high" }
        condition = { metric = "up" }
        """,
        ["c.toml:4:1: rules[0].labels: labels may not set severity: the rule sets them"],
    ),
    (
        "inline-condition-bad-window",
        """
        [[rules]]
        id = "r"
        name = "R"
        condition = { metric = "up", window = "0s" }
        """,
        ["c.toml:4:30: rules[0].condition.window: window must be longer than 0s"],
    ),
    (
        "unknown-channel-kind",
        """
        [channels.ops]
        kind = "sms"
        """,
        [
            "c.toml:2:1: channels.ops.kind: unknown kind 'sms' (expected one of: "
            + ", ".join(kind.name for kind in CHANNEL_KINDS)  # console, email, ... in order
            + ")"
        ],
    ),
    (
        "channel-not-a-table",
        """
        [channels]
        ops = "slack"
        """,
        ['c.toml:2:1: channels.ops: must be a table (got "slack")'],
    ),
    (
        "secret-never-echoed",
        """
        [channels.slack]
        kind = "slack"
        webhook_url = "hooks.slack.com/services/T000/B000/XXXXSECRET"

        [security]
        api_token = 12345678
        """,
        [
            "c.toml:3:1: channels.slack.webhook_url: expected an http:// or https:// URL",
            "c.toml:6:1: security.api_token: must be a valid string",
        ],
    ),
    (
        "email-both-tls-modes",
        """
        [channels.mail]
        kind = "email"
        smtp_host = "${SMTP_HOST}"
        to = ["ops@example.com"]
        tls = true
        starttls = true
        """,
        ["c.toml:5:1: channels.mail.tls: choose one of tls (implicit TLS) and starttls"],
    ),
    (
        "bad-matcher",
        """
        [[inhibit]]
        source = ["severity critical"]
        target = ["severity=warning"]
        """,
        [
            "c.toml:2:11: inhibit[0].source[0]: invalid matcher 'severity critical'; expected"
            " label=value, label!=value, label=~regex or label!~regex"
        ],
    ),
    (
        "silence-without-timezone",
        """
        [[silences]]
        matchers = ["alertname=X"]
        ends = "2030-01-01T00:00:00"
        """,
        ['c.toml:3:1: silences[0].ends: must have timezone info (got "2030-01-01T00:00:00")'],
    ),
    (
        "log-format",
        """
        [log]
        format = "text"
        """,
        ["c.toml:2:1: log.format: must be 'logfmt' or 'json' (got \"text\")"],
    ),
    (
        "backoff-order",
        """
        [supervisor]
        backoff_initial = "1m"
        backoff_max = "1s"
        """,
        [
            "c.toml:2:1: supervisor.backoff_initial: backoff_initial must not be longer"
            " than backoff_max"
        ],
    ),
    (
        "bad-channel-name",
        """
        [channels."my channel"]
        kind = "console"
        """,
        [
            "c.toml:1:1: channels.\"my channel\": invalid channel name 'my channel'; use letters,"
            " digits,"
            " '_', '.', '-'"
        ],
    ),
    (
        "several-errors-sorted-by-line",
        """
        [[checks]]
        name = "api"
        kind = "http"
        url = "ftp://example.com"

        [server]
        metrics_listen = "0.0.0.0:-1"
        listen = "0.0.0.0"
        """,
        [
            "c.toml:4:1: checks[0].url: expected an http:// or https:// URL,"
            " got 'ftp://example.com'",
            "c.toml:7:1: server.metrics_listen: port must be a number from 0 to 65535, got '-1'",
            "c.toml:8:1: server.listen: expected 'host:port', e.g. '0.0.0.0:3000', got '0.0.0.0'",
        ],
    ),
    (
        "inline-array-of-checks",
        """
        checks = [
          { name = "self", kind = "self" },
          { name = "port", kind = "tcp", host = "127.0.0.1", port = 0 },
        ]
        """,
        ["c.toml:3:54: checks[1].port: must be greater than or equal to 1 (got 0)"],
    ),
    (
        "limits-not-positive",
        """
        [limits]
        max_series = 0
        max_points = "lots"
        """,
        [
            "c.toml:2:1: limits.max_series: must be greater than or equal to 1 (got 0)",
            "c.toml:3:1: limits.max_points: must be a valid integer, unable to parse string as an"
            ' integer (got "lots")',
        ],
    ),
    # Errors of a model validator are shown at the key they are about, not at its table.
    (
        "timeout-longer-than-default-interval",
        """
        [[checks]]
        name = "self"
        kind = "self"
        timeout = "20s"
        """,
        [
            "c.toml:4:1: checks[0].timeout: timeout must not be longer than interval",
        ],
    ),
    (
        "interval-zero",
        """
        [[checks]]
        name = "self"
        kind = "self"
        interval = "0s"
        """,
        [
            "c.toml:4:1: checks[0].interval: interval must be longer than 0s",
        ],
    ),
    (
        "json-equals-without-json-path",
        """
        [[checks]]
        name = "api"
        kind = "http"
        url = "http://127.0.0.1:8080/health"
        json_equals = "ok"
        """,
        [
            "c.toml:5:1: checks[0].json_equals: json_equals needs json_path",
        ],
    ),
    (
        "tls-key-without-cert",
        """
        [server]
        listen = "0.0.0.0:3000"
        tls_key = "key.pem"
        """,
        [
            "c.toml:3:1: server.tls_key: tls_cert and tls_key must be set together",
        ],
    ),
    (
        "tls-cert-without-key",
        """
        [server]
        tls_cert = "cert.pem"
        """,
        [
            "c.toml:2:1: server.tls_cert: tls_cert and tls_key must be set together",
        ],
    ),
    (
        "escalate-to-without-escalate-after",
        """
        [routing]
        group_wait = "0s"
        escalate_to = ["console"]

        [channels.console]
        kind = "console"
        """,
        [
            "c.toml:3:1: routing.escalate_to: escalate_after and escalate_to must be set together",
        ],
    ),
    (
        "silence-starts-after-ends",
        """
        [[silences]]
        matchers = ["alertname=X"]
        starts = "2030-02-01T00:00:00Z"
        ends = "2030-01-01T00:00:00Z"
        """,
        [
            "c.toml:3:1: silences[0].starts: starts must be before ends",
        ],
    ),
    (
        "counter-name-without-total",
        """
        [[metrics]]
        type = "counter"
        name = "jobs"
        """,
        [
            "c.toml:3:1: metrics[0].name: a counter's name must end in '_total'"
            " (e.g. 'jobs_total')",
        ],
    ),
    (
        "buckets-on-a-gauge",
        """
        [[metrics]]
        name = "queue_depth"
        type = "gauge"
        buckets = [1.0, 2.0]
        """,
        [
            "c.toml:4:1: metrics[0].buckets: buckets are only for histograms",
        ],
    ),
    (
        "period-zero",
        """
        [supervisor]
        intensity = 3
        period = "0s"
        """,
        [
            "c.toml:3:1: supervisor.period: period must be longer than 0s",
        ],
    ),
    (
        "backoff-max-below-default-initial",
        """
        [supervisor]
        backoff_max = "50ms"
        """,
        [
            "c.toml:2:1: supervisor.backoff_max: backoff_initial must not be longer than"
            " backoff_max",
        ],
    ),
    # Schema and reference errors of one file are reported together.
    (
        "mixed-schema-and-unknown-channel",
        """
        [[rules]]
        id = "r"
        name = "R"
        severity = "page"
        channels = ["slak"]
        condition = { metric = "up" }

        [channels.slack]
        kind = "slack"
        """,
        [
            "c.toml:4:1: rules[0].severity: must be 'critical', 'warning' or 'info' (got \"page\")",
            "c.toml:5:13: rules[0].channels[0]: unknown channel 'slak'; did you mean 'slack'?",
        ],
    ),
    (
        "mixed-invalid-check-still-defined",
        """
        [[checks]]
        name = "database"
        kind = "tcp"
        host = "127.0.0.1"
        port = 70000

        [[checks]]
        name = "api"
        kind = "tcp"
        host = "127.0.0.1"
        port = 80
        depends_on = ["database", "cache"]
        """,
        [
            "c.toml:5:1: checks[0].port: must be less than or equal to 65535 (got 70000)",
            "c.toml:12:27: checks[1].depends_on[1]: unknown check 'cache' (defined: api, database)",
        ],
    ),
    (
        "mixed-invalid-channel-still-defined",
        """
        [[rules]]
        id = "r"
        name = "R"
        channels = ["hooks", "pager"]
        condition = { metric = "up", aggregate = "average" }

        [channels.hooks]
        kind = "webhook"
        url = "not-a-url"
        """,
        [
            "c.toml:4:22: rules[0].channels[1]: unknown channel 'pager' (defined: hooks)",
            "c.toml:5:30: rules[0].condition.aggregate: must be 'last', 'avg', 'min', 'max',"
            " 'sum', 'count', 'rate', 'increase', 'p50', 'p90', 'p95', 'p99' or 'absent' (got"
            ' "average")',
            "c.toml:9:1: channels.hooks.url: expected an http:// or https:// URL",
        ],
    ),
    (
        "mixed-duplicate-rule-id-and-bad-window",
        """
        [[rules]]
        id = "r"
        name = "First"
        condition = { metric = "up", window = "5" }

        [[rules]]
        id = "r"
        name = "Second"
        condition = { metric = "up" }
        """,
        [
            "c.toml:4:30: rules[0].condition.window: invalid duration '5'; use a number with a"
            " unit (ms, s, m, h, d, w), e.g. '250ms', '10s', '1h30m'",
            "c.toml:7:1: rules[1].id: duplicate rule id 'r' (first at line 2)",
        ],
    ),
    (
        "mixed-routing-references-and-bad-duration",
        """
        [routing]
        group_wait = "soon"
        escalate_after = "30m"
        escalate_to = ["oncall"]

        [[routing.routes]]
        matchers = ["severity=critical"]
        channels = ["pager", 3]

        [channels.console]
        kind = "console"
        """,
        [
            "c.toml:2:1: routing.group_wait: invalid duration 'soon'; use a number with a unit"
            " (ms, s, m, h, d, w), e.g. '250ms', '10s', '1h30m'",
            "c.toml:4:16: routing.escalate_to[0]: unknown channel 'oncall' (defined: console)",
            "c.toml:8:13: routing.routes[0].channels[0]: unknown channel 'pager' (defined:"
            " console)",
            "c.toml:8:22: routing.routes[0].channels[1]: must be a valid string (got 3)",
        ],
    ),
    (
        "mixed-cycle-and-unknown-key",
        """
        [[checks]]
        name = "a"
        kind = "self"
        depends_on = ["b"]
        timout = "1s"

        [[checks]]
        name = "b"
        kind = "self"
        depends_on = ["a"]
        """,
        [
            "c.toml:4:1: checks[0].depends_on: dependency cycle: a -> b -> a",
            "c.toml:5:1: checks[0].timout: unknown key; did you mean 'timeout'?",
        ],
    ),
    (
        "mixed-duplicate-metric-and-check",
        """
        [[metrics]]
        name = "jobs_total"
        type = "counter"

        [[metrics]]
        name = "jobs_total"
        type = "gauge"
        labels = ["a", "a"]

        [[checks]]
        name = "self"
        kind = "self"

        [[checks]]
        name = "self"
        kind = "selfie"
        """,
        [
            "c.toml:6:1: metrics[1].name: duplicate metric name 'jobs_total' (first at line 2)",
            "c.toml:8:1: metrics[1].labels: label names must be unique",
            "c.toml:15:1: checks[1].name: duplicate check name 'self' (first at line 11)",
            "c.toml:16:1: checks[1].kind: unknown kind 'selfie' (expected one of: "
            + ", ".join(kind.name for kind in CHECK_KINDS)
            + "); did you mean 'self'?",
        ],
    ),
    (
        "mixed-unresolved-env-channel",
        """
        [[rules]]
        id = "r"
        name = "R"
        channels = ["${ALERT_CHANNEL}"]
        condition = { metric = "up" }
        """,
        [
            "c.toml:4:13: rules[0].channels[0]: environment variable ALERT_CHANNEL is not set"
            " and ${ALERT_CHANNEL} has no default (set it, or write ${ALERT_CHANNEL:-default})",
        ],
    ),
]


@pytest.mark.parametrize(("source", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_broken_configuration_is_explained(source: str, expected: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(textwrap.dedent(source).lstrip("\n"), file="c.toml", env=ENV)
    assert str(caught.value).splitlines() == expected


def _model_modules() -> set[str]:
    """The source files of every configuration model (every `ConfigModel` subclass)."""
    files: set[str] = set()
    todo: list[type[ConfigModel]] = [ConfigModel]
    while todo:
        model = todo.pop()
        todo.extend(model.__subclasses__())
        files.add(sys.modules[model.__module__].__file__ or "")
    return files


def _message_starts(path: str) -> set[str]:
    """How each string literal in `path` starts (an f-string: its text before the first
    placeholder), the table of hints itself left out."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    hints = {
        id(node)
        for statement in ast.walk(tree)
        if isinstance(statement, ast.AnnAssign | ast.Assign)
        and "_ERROR_KEYS" in ast.unparse(statement).split("=")[0]
        for node in ast.walk(statement)
    }
    starts: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in hints:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            starts.add(node.value)
        elif isinstance(node, ast.JoinedStr) and node.values:
            first = node.values[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                starts.add(first.value)
    return starts


def test_every_key_hint_matches_a_message_of_a_model() -> None:
    # The hints place model-level errors by the start of their message: a reworded message
    # would silently fall back to the table's position. Each hint must start a string that a
    # model's module writes (the table of hints itself is not searched).
    starts = set().union(*(_message_starts(path) for path in _model_modules()))
    unmatched = [
        prefix for prefix in _ERROR_KEYS if not any(text.startswith(prefix) for text in starts)
    ]
    assert unmatched == []


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 25
    assert len({case[0] for case in CASES}) == len(CASES)

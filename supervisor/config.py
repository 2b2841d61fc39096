"""The configuration file: TOML -> one frozen, validated `Config`.

`load_config(path)` parses with `tomllib`, expands `${VAR}` / `${VAR:-default}` in every string,
validates the whole document with the models each package keeps next to its code (checks, rules,
routing, channels, ...), and checks references between sections (a rule naming an unknown
channel, `depends_on` an unknown or cyclic check, duplicate names) over every key that is
well-typed, also when other parts of the file are invalid. What `run` reads besides the file is
checked too: the TLS certificate and key can be loaded. Every problem is reported at once as
`PATH:LINE:COL: KEY.PATH: message` in one `ConfigError`, sorted by line; no message holds a
secret.

`load_config_and_warnings` also returns what is legal but almost surely a mistake (a rule whose
`check` label names no check; no API token while the API listens beyond loopback, so its write
routes are refused), for check-config to print and `run` to log.

A channel whose required secret is empty is not an error: `Config.disabled_channels()` names it
with the reason; rules may still name it (that route is skipped).

Raises (every public function): `ConfigError` only.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import ssl
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, SecretStr, field_validator, model_validator

from actors.checks.kinds import CheckConfig
from actors.cluster.config import ClusterConfig
from actors.configtypes import ConfigModel, Duration, format_duration
from actors.history.config import HistoryConfig
from actors.notify.channels.kinds import ChannelConfig
from actors.routing.config import (
    InhibitConfig,
    MaintenanceConfig,
    RoutingConfig,
    SilenceConfig,
    TimeIntervalConfig,
)
from actors.rules.config import RuleConfig
from actors.rules.slo import rule_id
from actors.rules.slo_config import SloConfig
from actors.secrets import config_secrets, secret_forms
from actors.store.config import StorageConfig
from actors.telemetry.catalog import SEED_METRICS
from actors.telemetry.config import MetricDecl, OtlpConfig, TelemetryConfig
from actors.telemetry.exceptions import OtelEnvError
from actors.telemetry.otel import resolve_otel
from actors.telemetry.store import DEFAULT_BUCKETS
from actors.telemetry.windows import DEFAULT_STALENESS
from actors.web.access import unprotected_writes
from actors.web.config import SecurityConfig, ServerConfig
from actors.web.statusconfig import StatusPageConfig
from supervisor._config.issues import ConfigError, ConfigIssue, format_key_path
from supervisor._config.loader import Document, load_model
from supervisor._config.positions import KeyPath
from supervisor._config.validation import Problem

__all__ = [
    "Config",
    "ConfigError",
    "ConfigIssue",
    "EMPTY_FILE",
    "LimitsConfig",
    "LogConfig",
    "SupervisorConfig",
    "default_config_path",
    "format_key_path",
    "load_config",
    "load_config_and_warnings",
    "parse_config",
    "parse_config_and_warnings",
    "resolve_config_path",
    "summarize",
]

_CHANNEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

# Model-level errors (raised by a model validator, so pydantic places them at the table) and the
# keys they are about, most likely first: the error is shown at the first of them the file sets.
_ERROR_KEYS: dict[str, tuple[str, ...]] = {
    # [[checks]]
    "interval must be longer than 0s": ("interval",),
    "timeout must be longer than 0s": ("timeout",),
    "timeout must not be longer than interval": ("timeout", "interval"),
    "a check cannot depend on itself": ("depends_on",),
    "json_equals needs json_path": ("json_equals", "json_path"),
    # [server], [channels.X] (email)
    "tls_cert and tls_key must be set together": ("tls_cert", "tls_key"),
    "metrics_listen ": ("metrics_listen", "listen"),
    "choose one of tls (implicit TLS) and starttls": ("tls", "starttls"),
    # [routing], [[silences]]
    "escalate_after and escalate_to must be set together": ("escalate_after", "escalate_to"),
    "starts must be before ends": ("starts", "ends"),
    # [[rules]], [[metrics]]
    "labels may not set": ("labels",),
    "an SLO takes either sli": ("sli", "good", "bad", "total"),
    "an SLO needs total": ("total", "good", "bad", "sli"),
    "absent cannot be divided": ("divide_by", "aggregate"),
    "a counter's name must end in '_total'": ("name", "type"),
    "buckets are only for histograms": ("buckets", "type"),
    "buckets must be a non-empty": ("buckets",),
    # [security]
    "token names must be unique": ("tokens",),
    "token values must be unique": ("tokens",),
    "read_requires_token needs": ("read_requires_token", "api_token", "tokens"),
    # [supervisor]
    "period must be longer than 0s": ("period",),
    "backoff_initial must not be longer than backoff_max": ("backoff_initial", "backoff_max"),
}


def _check_channel_name(name: str) -> str:
    if not _CHANNEL_NAME.match(name):
        raise ValueError(f"invalid channel name {name!r}; use letters, digits, '_', '.', '-'")
    return name


# A key validator: an invalid name is reported at its own [channels.NAME] table.
ChannelName = Annotated[str, AfterValidator(_check_channel_name)]


class SupervisorConfig(ConfigModel):
    """[supervisor]: restart intensity and backoff of every supervisor; graceful stop."""

    intensity: int = Field(default=5, ge=0)
    period: Duration = 60.0
    backoff_initial: Duration = 0.1
    backoff_max: Duration = 30.0
    shutdown_timeout: Duration = 10.0
    """How long a graceful stop (SIGTERM) may take to drain in-flight work."""

    @model_validator(mode="after")
    def _consistent(self) -> SupervisorConfig:
        if self.period <= 0:
            raise ValueError("period must be longer than 0s")
        if self.backoff_initial > self.backoff_max:
            raise ValueError("backoff_initial must not be longer than backoff_max")
        return self


class LimitsConfig(ConfigModel):
    """[limits]: memory budgets of the metric store (the windows rules and checks read).

    The store-wide budgets bound its memory whatever the application sends: beyond `max_series`
    new series are dropped (counted in `metric_series_dropped_total{metric}`); at `max_points`
    a ring stops growing and a new point replaces its series' oldest. Worst case roughly
    `max_series x 2.6 KB + max_points x 135 B` (~0.8 GB at the defaults; measured in
    docs/benchmarks.md, Telemetry). Sized at start: a change takes a restart.
    """

    max_series: int = Field(default=100_000, ge=1)
    """Series across all metrics."""
    max_points: int = Field(default=4_000_000, ge=1)
    """Points (time, value) across all series."""
    max_series_per_metric: int = Field(default=10_000, ge=1)
    """Series of one metric (its label sets): the cardinality guard."""
    max_points_per_series: int = Field(default=10_000, ge=1)
    """Points of one series (its ring)."""
    staleness: Duration = DEFAULT_STALENESS
    """An application series not updated for this long is stale: absent for rules, metric
    checks and /metrics (Prometheus' lookback); "0s" = never."""
    staleness_by_metric: dict[str, Duration] = Field(default_factory=dict)
    """`staleness` per metric name (any declared metric, the monitor's own included)."""

    @field_validator("staleness")
    @classmethod
    def _staleness(cls, value: float) -> float:
        if not 0 <= value < float("inf"):
            raise ValueError("staleness must be 0s (never) or longer")
        return value

    @field_validator("staleness_by_metric")
    @classmethod
    def _staleness_by_metric(cls, value: dict[str, float]) -> dict[str, float]:
        for name, seconds in value.items():
            if not 0 <= seconds < float("inf"):
                raise ValueError(f"{name}: staleness must be 0s (never) or longer")
        return value


class LogConfig(ConfigModel):
    """[log]: structured logs on stderr, one line per event."""

    format: Literal["logfmt", "json"] = "logfmt"
    level: Literal["debug", "info", "warning", "error"] = "info"


class Config(ConfigModel):
    """The whole configuration file, validated. Frozen: compare with `==` to find changes."""

    server: ServerConfig = Field(default_factory=ServerConfig)
    security: SecurityConfig = Field(default_factory=SecurityConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    otlp: OtlpConfig = Field(default_factory=OtlpConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    cluster: ClusterConfig | None = None
    """[cluster]: replicas on a shared PostgreSQL store; None: this process alone."""
    history: HistoryConfig = Field(default_factory=HistoryConfig)
    status_page: StatusPageConfig = Field(default_factory=StatusPageConfig)
    supervisor: SupervisorConfig = Field(default_factory=SupervisorConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    metrics: tuple[MetricDecl, ...] = ()
    checks: tuple[CheckConfig, ...] = ()
    rules: tuple[RuleConfig, ...] = ()
    slos: tuple[SloConfig, ...] = ()
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    inhibit: tuple[InhibitConfig, ...] = ()
    silences: tuple[SilenceConfig, ...] = ()
    maintenance: tuple[MaintenanceConfig, ...] = ()
    time_intervals: tuple[TimeIntervalConfig, ...] = ()
    channels: dict[ChannelName, ChannelConfig] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _cluster_needs_shared_storage(self) -> Config:
        if self.cluster is not None and self.storage.url is None:
            raise ValueError(
                "[cluster] needs storage.url: replicas share their state in PostgreSQL"
                ' (set [storage] url = "postgresql://...", or remove [cluster])'
            )
        return self

    def secret_values(self) -> frozenset[str]:
        """Every non-empty secret of the configuration: values typed as secrets (tokens,
        passwords, keys, DSNs, Slack and webhook URLs) and credential headers of checks and
        channels, passwords of `user:password@` URLs (`actors.secrets.config_secrets`). The
        composition root keeps them out of the logs."""
        return config_secrets(self) | frozenset(self.storage.passwords())

    def redaction_needles(self) -> frozenset[str]:
        """`secret_values()` and the forms error text quotes them in (`repr()`, JSON, stripped:
        `actors.secrets.secret_forms`): what the log redactor cuts out."""
        return frozenset(form for value in self.secret_values() for form in secret_forms(value))

    def disabled_channels(self) -> dict[str, str]:
        """Channels that cannot send, by name, with the reason (a required secret is empty)."""
        out: dict[str, str] = {}
        for name, channel in self.channels.items():
            reason = channel.disabled_reason()
            if reason is not None:
                out[name] = reason
        return out

    def enabled_channels(self) -> dict[str, ChannelConfig]:
        """Channels that can send, by name."""
        disabled = self.disabled_channels()
        return {name: ch for name, ch in self.channels.items() if name not in disabled}


# -- reference checks ----------------------------------------------------------------------------
# They read the raw (interpolated) tree, not the validated `Config`, so that they also run when
# another part of the file is invalid: every key that is well-typed is checked, and the problems
# are reported together with the schema's. A name is "defined" as soon as it is written (even in
# an otherwise invalid check or channel), so one mistake never cascades into "unknown ..." errors.
def _unknown(kind: str, name: str, names: Sequence[str]) -> str:
    known = sorted(set(names))
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f"unknown {kind} '{name}'; did you mean '{close[0]}'?"
    if known:
        return f"unknown {kind} '{name}' (defined: {', '.join(known)})"
    return f"unknown {kind} '{name}' (no {kind}s are defined)"


def _table(node: Any, *path: str) -> Mapping[str, Any] | None:
    """The table at `path` below `node`, or None when it is absent or not a table."""
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node if isinstance(node, Mapping) else None


def _elements(raw: Mapping[str, Any], *path: str) -> list[tuple[int, Mapping[str, Any]]]:
    """The (index, table) elements of the array of tables at `path` (tables only)."""
    parent = _table(raw, *path[:-1]) if len(path) > 1 else raw
    items = parent.get(path[-1]) if parent is not None else None
    if not isinstance(items, list):
        return []
    return [(index, item) for index, item in enumerate(items) if isinstance(item, Mapping)]


def _name(table: Mapping[str, Any], key: str) -> str | None:
    value = table.get(key)
    return value if isinstance(value, str) else None


def _names(table: Mapping[str, Any] | None, key: str) -> list[tuple[int, str]]:
    """The (position, string) items of the array at `key` (items of another type skipped)."""
    values = table.get(key) if table is not None else None
    if not isinstance(values, list):
        return []
    return [(position, value) for position, value in enumerate(values) if isinstance(value, str)]


def _routes(raw: Mapping[str, Any]) -> list[tuple[KeyPath, Mapping[str, Any]]]:
    """(path, table) of every route of the routing tree, nested ones included, in file order."""
    found: list[tuple[KeyPath, Mapping[str, Any]]] = []

    def walk(path: KeyPath, table: Mapping[str, Any] | None) -> None:
        for index, route in _elements({"routes": (table or {}).get("routes")}, "routes"):
            here: KeyPath = (*path, "routes", index)
            found.append((here, route))
            walk(here, route)

    walk(("routing",), _table(raw, "routing"))
    return found


def _duplicates(
    section: str, key: str, document: Document, what: str, *, where: tuple[str, ...] = ()
) -> list[Problem]:
    problems: list[Problem] = []
    first: dict[str, int] = {}
    for index, table in _elements(document.raw, *where, section):
        name = _name(table, key)
        if name is None:
            continue
        if name in first:
            position = document.positions.find((*where, section, first[name], key))
            at = f" (first at line {position.line})" if position else ""
            problems.append(
                Problem((*where, section, index, key), f"duplicate {what} '{name}'{at}")
            )
        else:
            first[name] = index
    return problems


def _cycles(checks: list[tuple[int, Mapping[str, Any]]]) -> list[Problem]:
    """One problem per dependency cycle, at the `depends_on` of its first check in file order."""
    graph: dict[str, tuple[str, ...]] = {}
    order: dict[str, int] = {}
    for index, check in checks:
        name = _name(check, "name")
        if name is None:
            continue
        graph.setdefault(name, tuple(dep for _, dep in _names(check, "depends_on")))
        order.setdefault(name, index)
    problems: list[Problem] = []
    reported: set[frozenset[str]] = set()
    for start in graph:
        stack: list[tuple[str, list[str]]] = [(start, [start])]
        while stack:
            node, trail = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start:
                    members = frozenset(trail)
                    if members not in reported and len(trail) > 1:
                        reported.add(members)
                        first = min(trail, key=order.__getitem__)
                        pivot = trail.index(first)
                        cycle = [*trail[pivot:], *trail[:pivot], first]
                        problems.append(
                            Problem(
                                ("checks", order[first], "depends_on"),
                                "dependency cycle: " + " -> ".join(cycle),
                            )
                        )
                elif nxt in graph and nxt not in trail:
                    stack.append((nxt, [*trail, nxt]))
    return problems


def _references(document: Document) -> list[Problem]:
    """Names that must refer to something defined elsewhere in the file, and unique names."""
    raw = document.raw
    problems: list[Problem] = []
    problems += _duplicates("checks", "name", document, "check name")
    problems += _duplicates("rules", "id", document, "rule id")
    problems += _duplicates("metrics", "name", document, "metric name")
    problems += _duplicates("slos", "name", document, "SLO name")
    problems += _slo_metrics(raw)
    path: KeyPath
    # Channel references are checked only when [channels] is a table (else that is the error).
    channels_table = raw.get("channels", {})
    if isinstance(channels_table, Mapping):
        channels = [str(name) for name in channels_table]
        for index, rule in _elements(raw, "rules"):
            for position, name in _names(rule, "channels"):
                if name not in channels_table:
                    path = ("rules", index, "channels", position)
                    problems.append(Problem(path, _unknown("channel", name, channels)))
        for route_path, route in _routes(raw):
            for position, name in _names(route, "channels"):
                if name not in channels_table:
                    path = (*route_path, "channels", position)
                    problems.append(Problem(path, _unknown("channel", name, channels)))
        for index, slo in _elements(raw, "slos"):
            for position, name in _names(slo, "alert_channels"):
                if name not in channels_table:
                    path = ("slos", index, "alert_channels", position)
                    problems.append(Problem(path, _unknown("channel", name, channels)))
        for position, name in _names(_table(raw, "routing"), "escalate_to"):
            if name not in channels_table:
                path = ("routing", "escalate_to", position)
                problems.append(Problem(path, _unknown("channel", name, channels)))
    problems += _duplicates("time_intervals", "name", document, "time interval name")
    intervals = [n for _, t in _elements(raw, "time_intervals") if (n := _name(t, "name"))]
    for route_path, route in _routes(raw):
        for key in ("mute_time_intervals", "active_time_intervals"):
            for position, name in _names(route, key):
                if name not in intervals:
                    path = (*route_path, key, position)
                    problems.append(Problem(path, _unknown("time interval", name, intervals)))
    if isinstance(raw.get("checks", []), list):
        checks = _elements(raw, "checks")
        check_names = [
            defined for _, check in checks if (defined := _name(check, "name")) is not None
        ]
        known_checks = set(check_names)
        for index, check in checks:
            for position, name in _names(check, "depends_on"):
                if name not in known_checks:
                    path = ("checks", index, "depends_on", position)
                    problems.append(Problem(path, _unknown("check", name, check_names)))
        problems += _cycles(checks)
    return problems


def _slo_metrics(raw: Mapping[str, Any]) -> list[Problem]:
    """[[slos]] read the right kind of metric (counters, or a histogram with a bucket at `le`)
    where the metric is known here (the seed catalogue and [[metrics]]); the ids of their
    generated rules are not taken by a [[rules]] entry."""
    known: dict[str, tuple[str, tuple[float, ...]]] = {
        spec.name: (spec.kind, spec.buckets or DEFAULT_BUCKETS) for spec in SEED_METRICS
    }
    for _, decl in _elements(raw, "metrics"):
        name, kind = _name(decl, "name"), _name(decl, "type")
        buckets = decl.get("buckets")
        if name and kind:
            bounds = tuple(b for b in buckets if isinstance(b, int | float)) if buckets else ()
            known[name] = (kind, bounds or DEFAULT_BUCKETS)
    rule_ids = {rid for _, rule in _elements(raw, "rules") if (rid := _name(rule, "id"))}
    problems: list[Problem] = []
    for index, slo in _elements(raw, "slos"):
        for part in ("good", "bad", "total"):
            metric = _name(_table(slo, part) or {}, "metric")
            if metric in known and known[metric][0] == "gauge":
                problems.append(
                    Problem(
                        ("slos", index, part, "metric"),
                        f"{metric} is a gauge: an SLI counts events in counters (or a histogram's"
                        " observations)",
                    )
                )
        sli = _table(slo, "sli") or {}
        metric, le = _name(sli, "metric"), sli.get("le")
        if metric in known:
            kind, bounds = known[metric]
            if kind != "histogram":
                problems.append(
                    Problem(
                        ("slos", index, "sli", "metric"),
                        f"{metric} is a {kind}: a latency SLI reads a histogram",
                    )
                )
            else:
                try:
                    bound = float(le) if isinstance(le, str | int | float) else None
                except ValueError:
                    bound = None  # the schema's error
                if bound is not None and not any(math.isclose(bound, b) for b in bounds):
                    shown = ", ".join(f"{b:g}" for b in bounds)
                    problems.append(
                        Problem(
                            ("slos", index, "sli", "le"),
                            f"le {bound:g} is not a bucket of {metric} (buckets: {shown})",
                        )
                    )
        name = _name(slo, "name")
        for alert in ("page", "ticket"):
            generated = rule_id(name or "", alert)
            if name and generated in rule_ids:
                problems.append(
                    Problem(
                        ("slos", index, "name"),
                        f"the SLO's {alert} rule id '{generated}' is taken by a [[rules]] entry",
                    )
                )
    return problems


def _tls_files(document: Document) -> list[Problem]:
    """[server] tls_cert and tls_key name a readable certificate and its key.

    The listeners load them as they start: a missing file made `run` restart them forever.
    Relative paths are read from the working directory, as the listeners do.
    """
    server = _table(document.raw, "server")
    cert, key = (_name(server, "tls_cert"), _name(server, "tls_key")) if server else (None, None)
    if not cert or not key:
        return []  # absent, or not both set: the schema's error
    problems: list[Problem] = []
    for field, file in (("tls_cert", cert), ("tls_key", key)):
        # The key's path is not shown: messages never show the value of a key named like a secret.
        shown = f" {file}" if field == "tls_cert" else ""
        if not Path(file).is_file():
            problems.append(Problem(("server", field), f"no such file{shown}"))
        elif not os.access(file, os.R_OK):
            problems.append(Problem(("server", field), f"cannot read{shown}: permission denied"))
    if problems:
        return problems
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            reason = "tls_key is not the key of this certificate"
        else:
            reason = "not a PEM certificate with a PEM private key in tls_key"
        problems.append(Problem(("server", "tls_cert"), f"cannot load {cert}: {reason}"))
    except OSError as exc:
        problems.append(Problem(("server", "tls_cert"), f"cannot load {cert}: {exc.strerror}"))
    return problems


# -- warnings ------------------------------------------------------------------------------------
# What is legal but almost surely a mistake: the file is used, and each is printed by check-config
# and logged when `run` starts.
def _conditions(raw: Mapping[str, Any]) -> list[tuple[KeyPath, Mapping[str, Any], str]]:
    """(path of the condition, condition, what watches) for rules and metric checks."""
    found: list[tuple[KeyPath, Mapping[str, Any], str]] = []
    for index, rule in _elements(raw, "rules"):
        condition = _table(rule, "condition")
        if condition is not None:
            found.append((("rules", index, "condition"), condition, "rule"))
    for index, check in _elements(raw, "checks"):
        condition = _table(check, "condition")
        if condition is not None and check.get("kind") == "metric":
            found.append((("checks", index, "condition"), condition, "check"))
    return found


def _unknown_watched_checks(document: Document) -> list[Problem]:
    """A condition's `check` label names no check: its samples never come (a rule on
    `health_check_up{check="database"}` without a "database" check never fires)."""
    raw = document.raw
    names = [name for _, check in _elements(raw, "checks") if (name := _name(check, "name"))]
    problems: list[Problem] = []
    for path, condition, what in _conditions(raw):
        watched = _name(_table(condition, "labels") or {}, "check")
        if watched is None or watched in names:
            continue
        close = difflib.get_close_matches(watched, sorted(set(names)), n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        defined = f" (defined: {', '.join(sorted(set(names)))})" if names and not close else ""
        problems.append(
            Problem(
                (*path, "labels", "check"),
                f"no check named '{watched}' is defined{defined}{hint}: this {what} watches"
                " samples that nothing records",
            )
        )
    return problems


# -- loading -------------------------------------------------------------------------------------
def parse_config_and_warnings(
    text: str, *, file: str = "<config>", env: Mapping[str, str] | None = None
) -> tuple[Config, tuple[ConfigIssue, ...]]:
    """Validate the TOML `text` (named `file` in messages); `env` defaults to `os.environ`.

    Returns the configuration and its warnings (legal but almost surely a mistake, e.g. a rule
    watching a check that is not defined), sorted by line.

    Raises:
        ConfigError: every problem found, sorted by line.
    """
    environ = os.environ if env is None else env
    config, document = load_model(
        Config,
        text,
        file=file,
        env=environ,
        checks=(_references, _tls_files),
        key_hints=_ERROR_KEYS,
    )
    # The OTEL_* variables [telemetry] falls back to: a bad one fails here, before anything runs.
    try:
        resolve_otel(config.telemetry, environ)
    except OtelEnvError as exc:
        raise ConfigError([ConfigIssue(file, str(exc), ("telemetry",))]) from None
    warnings = [document.issue(p.path, p.message) for p in _unknown_watched_checks(document)]
    unprotected = unprotected_writes(config.security, config.server.listen)
    if unprotected is not None:
        warnings.append(document.issue(("server", "listen"), unprotected))
    return config, tuple(sorted(warnings, key=ConfigIssue.sort_key))


def parse_config(
    text: str, *, file: str = "<config>", env: Mapping[str, str] | None = None
) -> Config:
    """`parse_config_and_warnings` without the warnings.

    Raises:
        ConfigError: every problem found, sorted by line.
    """
    return parse_config_and_warnings(text, file=file, env=env)[0]


EMPTY_FILE = "the file is empty (still being written?); a configuration names at least one table"
"""Why an empty file is refused where emptiness is suspect (a reload: see `load_config`)."""


def load_config_and_warnings(
    path: str | Path, *, env: Mapping[str, str] | None = None, allow_empty: bool = True
) -> tuple[Config, tuple[ConfigIssue, ...]]:
    """Read and validate the configuration file at `path`; return it and its warnings.

    `allow_empty=False` refuses a file holding only whitespace (`EMPTY_FILE`): read while an
    editor or a deploy rewrites it in place, it would otherwise be a valid configuration of
    defaults that stops every check.

    Raises:
        ConfigError: the file cannot be read or decoded, is empty where that is refused, or any
            problem of `parse_config`.
    """
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigIssue(file, "no such file")]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([ConfigIssue(file, f"not UTF-8 text ({exc.reason})")]) from None
    except OSError as exc:
        raise ConfigError([ConfigIssue(file, f"cannot read: {exc.strerror or exc}")]) from None
    if not allow_empty and not text.strip():
        raise ConfigError([ConfigIssue(file, EMPTY_FILE)])
    return parse_config_and_warnings(text, file=file, env=env)


def load_config(
    path: str | Path, *, env: Mapping[str, str] | None = None, allow_empty: bool = True
) -> Config:
    """Read and validate the configuration file at `path` (`load_config_and_warnings` without
    the warnings).

    Raises:
        ConfigError: the file cannot be read or decoded, is empty where that is refused, or any
            problem of `parse_config`.
    """
    return load_config_and_warnings(path, env=env, allow_empty=allow_empty)[0]


def default_config_path() -> Path:
    """The packaged default configuration (self checks, the seed's rules, a console channel)."""
    return Path(str(resources.files("supervisor").joinpath("default_config.toml")))


def resolve_config_path(given: str | None, *, cwd: Path | None = None) -> Path:
    """`given` if set; else `./config.toml` when it exists; else the packaged default."""
    if given:
        return Path(given)
    local = (cwd or Path.cwd()) / "config.toml"
    return local if local.is_file() else default_config_path()


# -- summary -------------------------------------------------------------------------------------
def _secret_state(value: SecretStr) -> str:
    return "<set>" if value.get_secret_value() else "<empty>"


def summarize(config: Config, file: str) -> str:
    """A readable summary of a valid configuration; secrets shown only as <set>/<empty>."""
    lines = [f"{file}: configuration is valid", ""]
    server, security = config.server, config.security
    tls = "on" if server.tls_cert else "off"
    lines.append(f"server: listen {server.listen}, metrics {server.metrics_listen}, TLS {tls}")
    lines.append(
        f"security: api_token {_secret_state(security.api_token)}, "
        f"metrics_token {_secret_state(security.metrics_token)}, "
        f"allow_from {', '.join(security.allow_from) or 'all'}, "
        f"reads {'need a token' if security.read_requires_token else 'open'}"
    )
    for token in security.tokens:
        lines.append(f"  token {token.name}: {', '.join(token.scopes)}")
    telemetry = config.telemetry
    otlp = telemetry.otlp_endpoint or "from OTEL_EXPORTER_OTLP_ENDPOINT (off when unset)"
    service = telemetry.service_name or "from OTEL_SERVICE_NAME (else blipee-os)"
    lines.append(f"telemetry: service {service}, OTLP {otlp}")
    engine = "PostgreSQL" if config.storage.shared else "SQLite"
    lines.append(f"storage: {engine} {config.storage.location()}")
    if config.cluster is not None:
        cluster = config.cluster
        lines.append(
            f"cluster: replica {cluster.replica or '<host name + pid>'}, {cluster.mode},"
            f" heartbeat {format_duration(cluster.heartbeat)}"
            f" (delivery lease {format_duration(cluster.lease)})"
        )
    limits = config.limits
    lines.append(
        f"limits: metric store {limits.max_series:,} series, {limits.max_points:,} points"
        f" ({limits.max_series_per_metric:,} series per metric,"
        f" {limits.max_points_per_series:,} points per series)"
    )
    lines.append(f"log: {config.log.format}, level {config.log.level}")
    lines.append("")
    lines.append(f"checks ({len(config.checks)}):")
    for check in config.checks:
        extra = " critical" if check.critical else ""
        deps = f" depends_on {', '.join(check.depends_on)}" if check.depends_on else ""
        lines.append(
            f"  {check.name}: {check.kind} every {format_duration(check.interval)}, "
            f"timeout {format_duration(check.timeout)}{extra}{deps}"
        )
    lines.append(f"rules ({len(config.rules)}):")
    for rule in config.rules:
        cond = rule.condition
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(cond.labels.items()))
        selector = f"{cond.metric}{{{labels}}}" if labels else cond.metric
        state = "" if rule.enabled else " (disabled)"
        lines.append(
            f"  {rule.id}: {rule.name} [{rule.severity}] "
            f"{cond.aggregate}({selector}[{format_duration(cond.window)}]) "
            f"{cond.operator} {cond.threshold:g} -> {', '.join(rule.channels) or '-'}{state}"
        )
    if config.slos:
        lines.append(f"slos ({len(config.slos)}):")
    for slo in config.slos:
        if slo.sli is not None:
            sli = f"{slo.sli.metric} <= {slo.sli.le:g}s"
        else:
            part = "good" if slo.good is not None else "bad"
            chosen = slo.good or slo.bad
            assert chosen is not None
            assert slo.total is not None
            sli = f"{part} {chosen.metric} / total {slo.total.metric}"
        lines.append(
            f"  {slo.name}: {slo.objective * 100:g} % over {format_duration(slo.window)}, {sli}"
            f" -> {', '.join(slo.alert_channels) or '-'}"
        )
    disabled = config.disabled_channels()
    lines.append(f"channels ({len(config.channels)}, {len(disabled)} disabled):")
    for name, channel in config.channels.items():
        secrets = [
            f"{field} {_secret_state(value)}"
            for field, value in channel
            if isinstance(value, SecretStr)
        ]
        details = f" ({', '.join(secrets)})" if secrets else ""
        state = f"disabled: {disabled[name]}" if name in disabled else "enabled"
        lines.append(f"  {name}: {channel.kind}{details} {state}")
    if config.routing.routes or config.inhibit or config.silences or config.maintenance:
        lines.append(
            f"routing: {len(config.routing.routes)} routes, {len(config.inhibit)} inhibit rules, "
            f"{len(config.silences)} silences, {len(config.maintenance)} maintenance windows"
        )
    return "\n".join(lines) + "\n"

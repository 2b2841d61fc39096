"""Hot reload: what differs between two configurations, what applying it did, and the endpoint.

`diff_configs(old, new)` is pure (no I/O, no event loop): it compares the frozen models of every
check, rule and channel by name and lists the sections that changed; it is made of one function
per part (`check_diff`, `rule_diff`, `channel_diff`, `routing_changed`, `restart_sections`),
which the subsystems call for their own part when `App.apply` (`supervisor.app.root`) hands them
the old and the new configuration and a `ReportBuilder`. The answer is a `ReloadReport`.
`reload_blueprint` serves `POST /api/v1/reload` (scope `config:reload`) with that report, or 422
with the errors when the file was rejected.

Sections in `LIVE_SECTIONS` are applied while running; a change to any of `ROUTING_SECTIONS`
restarts the routing actor; `[security]` applies at once (the access guard reads the new one),
except the keys in `RESTART_KEYS`; any other section that changed is reported in `needs_restart`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from quart import Blueprint, jsonify

from actors.rules.config import RuleConfig
from actors.rules.slo import slo_rules
from actors.web.access import Scope, requires
from actors.web.responses import json_error
from supervisor.config import Config

__all__ = [
    "LIVE_SECTIONS",
    "RELOAD_METRIC",
    "RESTART_KEYS",
    "ROUTING_SECTIONS",
    "ConfigDiff",
    "NameDiff",
    "ReloadReport",
    "ReportBuilder",
    "channel_diff",
    "check_diff",
    "diff_configs",
    "diff_names",
    "enabled_rules",
    "reload_blueprint",
    "restart_sections",
    "routing_changed",
    "rule_diff",
]

RELOAD_METRIC = "config_reload_total"
"""Counter of configuration reloads by result (success, failure)."""

LIVE_SECTIONS = frozenset(
    {
        "checks",
        "rules",
        "slos",
        "log",
        "channels",
        "routing",
        "inhibit",
        "silences",
        "maintenance",
        "time_intervals",
    }
)
"""Sections applied live by the subsystems on reload (the rest need a process restart)."""

ROUTING_SECTIONS = ("routing", "inhibit", "silences", "maintenance", "time_intervals")
"""Sections the routing actor is built from: a change to any of them restarts it."""

RESTART_KEYS = {"security": ("anonymize_labels", "anonymize_key")}
"""Sections applied live but for these keys, which take a restart (the metric store hashes
labels with the key it started with)."""


@dataclass(frozen=True, slots=True)
class ReloadReport:
    """What a reload did: actor ids started, stopped and restarted; keys needing a restart."""

    started: tuple[str, ...] = ()
    stopped: tuple[str, ...] = ()
    restarted: tuple[str, ...] = ()
    rules_added: tuple[str, ...] = ()
    rules_removed: tuple[str, ...] = ()
    rules_changed: tuple[str, ...] = ()
    needs_restart: tuple[str, ...] = ()
    """Top-level sections that changed but only take effect after a process restart, and
    "metric retention" when a new window is longer than the metric store keeps."""
    errors: tuple[str, ...] = field(default=())

    @property
    def changed(self) -> bool:
        """Whether anything was applied."""
        return bool(
            self.started
            or self.stopped
            or self.restarted
            or self.rules_added
            or self.rules_removed
            or self.rules_changed
        )


@dataclass(frozen=True, slots=True)
class ConfigDiff:
    """The difference between two configurations, by name (check name, rule id, channel name).

    Names keep the order of the configuration they come from (removed ones: the old one's;
    the others: the new one's). Only enabled rules and enabled channels count: disabling one
    removes it, enabling one adds it.
    """

    checks_started: tuple[str, ...] = ()
    checks_stopped: tuple[str, ...] = ()
    checks_restarted: tuple[str, ...] = ()
    rules_added: tuple[str, ...] = ()
    rules_removed: tuple[str, ...] = ()
    rules_changed: tuple[str, ...] = ()
    channels_added: tuple[str, ...] = ()
    channels_removed: tuple[str, ...] = ()
    channels_changed: tuple[str, ...] = ()
    routing_changed: bool = False
    log_changed: bool = False
    needs_restart: tuple[str, ...] = ()
    """Top-level sections outside `LIVE_SECTIONS` that changed (for those in `RESTART_KEYS`:
    one of those keys changed)."""


@dataclass(slots=True)
class ReportBuilder:
    """A `ReloadReport` being filled in by the subsystems as each applies its part."""

    started: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    rules_added: list[str] = field(default_factory=list)
    rules_removed: list[str] = field(default_factory=list)
    rules_changed: list[str] = field(default_factory=list)
    needs_restart: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def build(self) -> ReloadReport:
        """The frozen report of what was filled in."""
        return ReloadReport(**{f.name: tuple(getattr(self, f.name)) for f in fields(self)})


@dataclass(frozen=True, slots=True)
class NameDiff:
    """What changed among named things (checks, rules, channels); names in configuration order
    (removed ones: the old configuration's; the others: the new one's)."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()


def diff_names(old: Mapping[str, object], new: Mapping[str, object]) -> NameDiff:
    """Names added, removed, and present in both with a different value."""
    return NameDiff(
        added=tuple(name for name in new if name not in old),
        removed=tuple(name for name in old if name not in new),
        changed=tuple(name for name in new if name in old and old[name] != new[name]),
    )


def check_diff(old: Config, new: Config) -> NameDiff:
    """The checks, by name (any key of a check changes it)."""
    return diff_names(
        {check.name: check for check in old.checks}, {check.name: check for check in new.checks}
    )


def enabled_rules(config: Config) -> dict[str, RuleConfig]:
    """The rules the evaluator runs, by id: the enabled [[rules]] and the rules each [[slos]]
    entry generates (its page and ticket burn-rate alerts)."""
    rules = {rule.id: rule for rule in config.rules if rule.enabled}
    rules.update((rule.id, rule) for rule in slo_rules(config.slos))
    return rules


def rule_diff(old: Config, new: Config) -> NameDiff:
    """The enabled rules, by id (disabling one removes it, enabling one adds it), SLOs' included."""
    return diff_names(enabled_rules(old), enabled_rules(new))


def channel_diff(old: Config, new: Config) -> NameDiff:
    """The enabled channels, by name (a channel whose secret becomes empty is removed)."""
    return diff_names(old.enabled_channels(), new.enabled_channels())


def routing_changed(old: Config, new: Config) -> bool:
    """Whether any of `ROUTING_SECTIONS` changed."""
    return any(getattr(old, section) != getattr(new, section) for section in ROUTING_SECTIONS)


def _needs_restart(old: Config, new: Config, section: str) -> bool:
    before, after = getattr(old, section), getattr(new, section)
    if section in RESTART_KEYS:
        return any(getattr(before, k) != getattr(after, k) for k in RESTART_KEYS[section])
    return bool(section not in LIVE_SECTIONS and before != after)


def restart_sections(old: Config, new: Config) -> tuple[str, ...]:
    """Top-level sections outside `LIVE_SECTIONS` that changed (they need a process restart);
    for those in `RESTART_KEYS`, only when one of those keys changed."""
    return tuple(name for name in Config.model_fields if _needs_restart(old, new, name))


def diff_configs(old: Config, new: Config) -> ConfigDiff:
    """What changed from `old` to `new` (any key of a check, rule or channel changes it)."""
    checks = check_diff(old, new)
    rules = rule_diff(old, new)
    channels = channel_diff(old, new)
    return ConfigDiff(
        checks_started=checks.added,
        checks_stopped=checks.removed,
        checks_restarted=checks.changed,
        rules_added=rules.added,
        rules_removed=rules.removed,
        rules_changed=rules.changed,
        channels_added=channels.added,
        channels_removed=channels.removed,
        channels_changed=channels.changed,
        routing_changed=routing_changed(old, new),
        log_changed=new.log != old.log,
        needs_restart=restart_sections(old, new),
    )


def reload_blueprint(
    *,
    reload_config: Callable[[], Awaitable[ReloadReport | None]],
    rejected: Callable[[], Sequence[str]],
) -> Blueprint:
    """`POST /api/v1/reload`, scope `config:reload` (enforced by the app's access guard).

    `reload_config()` reads and applies the configuration file (None: rejected); `rejected()`
    gives the errors of the last rejected file. Answers 200 with the report, or 422 with those
    errors.
    """
    bp = Blueprint("reload", __name__)

    @bp.post("/api/v1/reload")
    @requires(Scope.CONFIG_RELOAD)
    async def reload() -> Any:
        report = await reload_config()
        if report is None:
            return json_error(
                422,
                "configuration rejected; still running the previous one",
                errors=list(rejected()),
            )
        return jsonify(
            {
                "result": "applied",
                "started": list(report.started),
                "stopped": list(report.stopped),
                "restarted": list(report.restarted),
                "rulesAdded": list(report.rules_added),
                "rulesRemoved": list(report.rules_removed),
                "rulesChanged": list(report.rules_changed),
                "needsRestart": list(report.needs_restart),
                "errors": list(report.errors),
            }
        )

    return bp

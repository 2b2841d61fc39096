"""Hot reload: what differs between two configurations, what applying it did, and the endpoint.

`diff_configs(old, new)` is pure (no I/O, no event loop): it compares the frozen models of every
check, rule and channel by name and lists the sections that changed. `App.apply`
(`supervisor.app.root`) carries a `ConfigDiff` out on the running tree and answers with a
`ReloadReport`. `reload_blueprint` serves `POST /api/v1/reload` (bearer token) with that report,
or 422 with the errors when the file was rejected.

Sections in `LIVE_SECTIONS` are applied while running; a change to any of `ROUTING_SECTIONS`
restarts the routing actor; any other section that changed is reported in `needs_restart`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from quart import Blueprint, jsonify

from actors.web.auth import json_error, require_token
from supervisor.config import Config

if TYPE_CHECKING:
    from pydantic import SecretStr

__all__ = [
    "LIVE_SECTIONS",
    "RELOAD_METRIC",
    "ROUTING_SECTIONS",
    "ConfigDiff",
    "ReloadReport",
    "diff_configs",
    "reload_blueprint",
]

RELOAD_METRIC = "config_reload_total"
"""Counter of configuration reloads by result (success, failure)."""

LIVE_SECTIONS = frozenset(
    {"checks", "rules", "log", "channels", "routing", "inhibit", "silences", "maintenance"}
)
"""Sections applied live by `App.apply` (the rest need a process restart)."""

ROUTING_SECTIONS = ("routing", "inhibit", "silences", "maintenance")
"""Sections the routing actor is built from: a change to any of them restarts it."""


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
    """Top-level sections outside `LIVE_SECTIONS` that changed."""


def diff_configs(old: Config, new: Config) -> ConfigDiff:
    """What changed from `old` to `new` (any key of a check, rule or channel changes it)."""
    old_checks = {check.name: check for check in old.checks}
    new_checks = {check.name: check for check in new.checks}
    old_rules = {rule.id: rule for rule in old.rules if rule.enabled}
    new_rules = {rule.id: rule for rule in new.rules if rule.enabled}
    old_channels = old.enabled_channels()
    new_channels = new.enabled_channels()
    return ConfigDiff(
        checks_started=tuple(name for name in new_checks if name not in old_checks),
        checks_stopped=tuple(name for name in old_checks if name not in new_checks),
        checks_restarted=tuple(
            name
            for name in new_checks
            if name in old_checks and old_checks[name] != new_checks[name]
        ),
        rules_added=tuple(rid for rid in new_rules if rid not in old_rules),
        rules_removed=tuple(rid for rid in old_rules if rid not in new_rules),
        rules_changed=tuple(
            rid for rid in new_rules if rid in old_rules and old_rules[rid] != new_rules[rid]
        ),
        channels_added=tuple(n for n in new_channels if n not in old_channels),
        channels_removed=tuple(n for n in old_channels if n not in new_channels),
        channels_changed=tuple(
            n for n in new_channels if old_channels.get(n, new_channels[n]) != new_channels[n]
        ),
        routing_changed=any(
            getattr(old, section) != getattr(new, section) for section in ROUTING_SECTIONS
        ),
        log_changed=new.log != old.log,
        needs_restart=tuple(
            name
            for name in Config.model_fields
            if name not in LIVE_SECTIONS and getattr(old, name) != getattr(new, name)
        ),
    )


def reload_blueprint(
    *,
    reload_config: Callable[[], Awaitable[ReloadReport | None]],
    rejected: Callable[[], Sequence[str]],
    api_token: SecretStr | str | None,
) -> Blueprint:
    """`POST /api/v1/reload` behind `api_token` (see `actors.web.auth.require_token`).

    `reload_config()` reads and applies the configuration file (None: rejected); `rejected()`
    gives the errors of the last rejected file. Answers 200 with the report, or 422 with those
    errors.
    """
    bp = Blueprint("reload", __name__)

    @bp.post("/api/v1/reload")
    @require_token(api_token)
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

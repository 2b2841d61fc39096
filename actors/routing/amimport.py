"""An alertmanager.yml as our TOML: routes, receivers as channels, inhibit rules, time intervals.

Pure translation, no I/O: `import_alertmanager` takes the parsed YAML document and returns the
TOML text, the notes (what could not be carried over, each with its YAML path) and the
environment variables the secrets were replaced with. `blipee-monitor import-alertmanager`
reads the file, prints the notes and variables on stderr and writes the TOML.

- The root route becomes `[routing]` (its `group_by` and timers, Alertmanager's defaults when
  unset) and one top-level route without matchers that holds the root's receiver and child
  routes. That route always matches, so the tree below it is Alertmanager's exactly and the
  rules' own `channels` are not used (our root is the rule, decision 0005).
- Each receiver config of a kind we have becomes a channel: `NAME` for a receiver with one
  config, `NAME-KIND` (and `NAME-KIND-2`, ...) for several; a receiver without configs is a
  route with `channels = []`. `send_resolved` is written out with Alertmanager's default per
  kind. Globals (`smtp_*`, `slack_api_url`, `opsgenie_*`, `pagerduty_url`, `telegram_api_url`)
  are applied where a receiver config leaves them unset.
- Secrets (passwords, keys, tokens, webhook URLs, credentials) are not copied: each becomes a
  `${VARIABLE}` reference, listed with the YAML path its value is at.
- Legacy `match`/`match_re` and `source_match`/`target_match`(`_re`) become matchers;
  `mute_time_intervals` at the top level become `[[time_intervals]]`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from actors.configtypes import format_duration, parse_duration
from actors.routing.exceptions import InvalidAlertmanagerConfig
from actors.routing.matchers import format_matcher

__all__ = ["AlertmanagerImport", "ImportNote", "SecretVariable", "import_alertmanager"]

# Alertmanager's defaults (config.DefaultGlobalConfig, DefaultRouteOpts).
_GROUP_WAIT = "30s"
_GROUP_INTERVAL = "5m"
_REPEAT_INTERVAL = "4h"
_SMTP_REQUIRE_TLS = True
_PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
_OPSGENIE_URL = "https://api.opsgenie.com/"
_TELEGRAM_URL = "https://api.telegram.org"

_ROUTE_KEYS = {
    "receiver", "group_by", "continue", "matchers", "match", "match_re", "group_wait",
    "group_interval", "repeat_interval", "mute_time_intervals", "active_time_intervals", "routes",
}  # fmt: skip
_SPEC_KEYS = ("times", "weekdays", "days_of_month", "months", "years", "location")
_LEFT_OUT = {
    "templates": "not carried over: our channels format their own messages",
    "resolve_timeout": "not carried over: alerts come from our rules, which resolve them",
    "http_config": "not carried over: a channel has no proxy, TLS or authentication settings",
}
_CHANNEL_NAME = re.compile(r"[^A-Za-z0-9_.-]+")
_ENV_NAME = re.compile(r"[^A-Z0-9]+")


@dataclass(frozen=True, slots=True)
class ImportNote:
    """Something of the YAML not carried over (or not exactly), at `path` (e.g.
    `receivers[2].slack_configs[0].title`)."""

    path: str
    text: str

    def __str__(self) -> str:
        return f"{self.path}: {self.text}"


@dataclass(frozen=True, slots=True)
class SecretVariable:
    """An environment variable the TOML reads a secret from, and where the YAML had it."""

    name: str
    path: str


@dataclass(frozen=True, slots=True)
class AlertmanagerImport:
    """The result: the TOML text, the notes, the variables, and each receiver's channels."""

    toml: str
    notes: tuple[ImportNote, ...]
    variables: tuple[SecretVariable, ...]
    receivers: Mapping[str, tuple[str, ...]]


# -- TOML writing -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Env:
    """A string written as a `${NAME}` reference (everything else has `${` escaped)."""

    template: str


def _string(value: str | _Env) -> str:
    text = value.template if isinstance(value, _Env) else value.replace("${", "$${")
    # A JSON string is a TOML basic string (same escapes) once DEL is escaped too.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | _Env):
        return _string(value)
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    return "[" + ", ".join(_value(v) for v in value) + "]"


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else _string(name)


def _table(lines: list[str], header: str, values: Mapping[str, Any], comment: str = "") -> None:
    lines.append("")
    if comment:
        lines.append(f"# {comment}")
    lines.append(header)
    lines.extend(f"{_key(k)} = {_value(v)}" for k, v in values.items() if v is not None)


# -- the translation --------------------------------------------------------------------------


@dataclass
class _Importer:
    notes: list[ImportNote] = field(default_factory=list)
    variables: dict[str, SecretVariable] = field(default_factory=dict)
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    channel_paths: dict[str, str] = field(default_factory=dict)
    receivers: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def note(self, path: str, text: str) -> None:
        self.notes.append(ImportNote(path, text))

    def secret(self, name: str, path: str) -> _Env:
        variable = _ENV_NAME.sub("_", name.upper()).strip("_")
        self.variables.setdefault(variable, SecretVariable(variable, path))
        return _Env(f"${{{variable}}}")

    def leftovers(self, data: Mapping[str, Any], handled: set[str], path: str) -> None:
        for key in data:
            if key not in handled:
                self.note(
                    f"{path}.{key}" if path else str(key), _LEFT_OUT.get(key, "not carried over")
                )


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidAlertmanagerConfig(path, "expected a mapping")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidAlertmanagerConfig(path, "expected a list")
    return value


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _duration(value: Any, path: str) -> str:
    text = _text(value).strip()
    years = re.match(r"^(\d+)y", text)
    seconds = 0.0
    if years:
        seconds = int(years.group(1)) * 365 * 86400.0
        text = text[years.end() :]
    try:
        seconds += parse_duration(text) if text else 0.0
    except ValueError:
        raise InvalidAlertmanagerConfig(path, f"invalid duration {value!r}") from None
    return format_duration(seconds)


def _legacy(data: Mapping[str, Any], prefix: str, path: str) -> list[str]:
    out: list[str] = []
    for suffix, op in (("match", "="), ("match_re", "=~")):
        key = f"{prefix}{suffix}"
        for name, value in _mapping(data.get(key), f"{path}.{key}").items():
            out.append(format_matcher(str(name), op, _text(value)))
    return out


def _matchers(data: Mapping[str, Any], key: str, path: str) -> list[str]:
    return [_text(m) for m in _list(data.get(key), f"{path}.{key}")]


# Receiver config kinds: our kind, Alertmanager's send_resolved default, the translation.
_Translate = Callable[[_Importer, Mapping[str, Any], Mapping[str, Any], str, str], dict[str, Any]]


def _secret_field(
    im: _Importer,
    config: Mapping[str, Any],
    glob: Mapping[str, Any],
    keys: tuple[str, str | None],
    channel: str,
    path: str,
) -> _Env | None:
    """The `${VAR}` of a secret set in the receiver config (or `_file`), else in `global`."""
    key, global_key = keys
    if config.get(key):
        return im.secret(f"{channel}_{key}", f"{path}.{key}")
    if config.get(f"{key}_file"):
        im.note(f"{path}.{key}_file", "read from a file; set the variable to its content")
        return im.secret(f"{channel}_{key}", f"{path}.{key}_file")
    if global_key and glob.get(global_key):
        return im.secret(f"alertmanager_{global_key}", f"global.{global_key}")
    if global_key and glob.get(f"{global_key}_file"):
        im.note(f"global.{global_key}_file", "read from a file; set the variable to its content")
        return im.secret(f"alertmanager_{global_key}", f"global.{global_key}_file")
    im.note(f"{path}.{key}", "not set: the channel is disabled until it is")
    return None


def _email(
    im: _Importer, c: Mapping[str, Any], g: Mapping[str, Any], name: str, path: str
) -> dict[str, Any]:
    smarthost = _text(c.get("smarthost") or g.get("smtp_smarthost"))
    host, _, port = smarthost.rpartition(":")
    if not host:
        host, port = smarthost, ""
    host = host.strip("[]")
    port_number = int(port) if port.isdigit() else 25
    require_tls = c.get("require_tls", g.get("smtp_require_tls", _SMTP_REQUIRE_TLS))
    out: dict[str, Any] = {
        "kind": "email",
        "smtp_host": host,
        "smtp_port": port_number,
        # Alertmanager speaks implicit TLS on port 465, else STARTTLS when require_tls is set.
        "tls": port_number == 465,
        "starttls": port_number != 465 and bool(require_tls),
    }
    username = c.get("auth_username", g.get("smtp_auth_username"))
    if username:
        out["username"] = _text(username)
    password_keys = ("auth_password", "auth_password_file")
    if any(c.get(k) for k in password_keys) or any(g.get(f"smtp_{k}") for k in password_keys):
        out["password"] = _secret_field(
            im, c, g, ("auth_password", "smtp_auth_password"), name, path
        )
    sender = c.get("from", g.get("smtp_from"))
    if sender:
        out["from"] = _text(sender)
    out["to"] = [a.strip() for a in _text(c.get("to")).split(",") if a.strip()]
    handled = {"to", "from", "smarthost", "auth_username", "auth_password", "auth_password_file",
               "require_tls", "send_resolved"}  # fmt: skip
    im.leftovers(c, handled, path)
    return out


def _webhook_url_kind(kind: str, key: str, global_key: str | None = None) -> _Translate:
    def translate(
        im: _Importer, c: Mapping[str, Any], g: Mapping[str, Any], name: str, path: str
    ) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": kind}
        url = _secret_field(im, c, g, (key, global_key), name, path)
        if url is not None:
            out["webhook_url"] = url
        im.leftovers(c, {key, f"{key}_file", "send_resolved"}, path)
        return out

    return translate


def _url(out: dict[str, Any], value: Any, default: str) -> None:
    """Set `url` when `value` is another endpoint than Alertmanager's `default` (ours is the
    same one, written without a trailing slash)."""
    url = _text(value or default).rstrip("/")
    if url != default.rstrip("/"):
        out["url"] = url


def _pagerduty(
    im: _Importer, c: Mapping[str, Any], g: Mapping[str, Any], name: str, path: str
) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": "pagerduty"}
    if c.get("routing_key") or c.get("routing_key_file") or not c.get("service_key"):
        key = _secret_field(im, c, g, ("routing_key", None), name, path)
    else:
        im.note(f"{path}.service_key", "an Events API v1 key, sent as an Events API v2 routing key")
        key = im.secret(f"{name}_service_key", f"{path}.service_key")
    if key is not None:
        out["routing_key"] = key
    _url(out, c.get("url") or g.get("pagerduty_url"), _PAGERDUTY_URL)
    handled = {"routing_key", "routing_key_file", "service_key", "url", "send_resolved"}
    im.leftovers(c, handled, path)
    return out


def _webhook(
    im: _Importer, c: Mapping[str, Any], g: Mapping[str, Any], name: str, path: str
) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": "webhook"}
    url = _secret_field(im, c, g, ("url", None), name, path)
    if url is not None:
        out["url"] = url
    http = _mapping(c.get("http_config"), f"{path}.http_config")
    hpath = f"{path}.http_config"
    auth = _mapping(http.get("authorization"), f"{hpath}.authorization")
    handled_http = set()
    if auth.get("credentials"):
        scheme = _text(auth.get("type") or "Bearer")
        credentials = im.secret(f"{name}_credentials", f"{hpath}.authorization.credentials")
        out["headers"] = {"Authorization": _Env(f"{scheme} {credentials.template}")}
        handled_http.add("authorization")
    elif http.get("bearer_token"):
        token = im.secret(f"{name}_bearer_token", f"{hpath}.bearer_token")
        out["headers"] = {"Authorization": _Env(f"Bearer {token.template}")}
        handled_http.add("bearer_token")
    im.leftovers(http, handled_http, hpath)
    im.leftovers(c, {"url", "url_file", "send_resolved", "http_config"}, path)
    return out


def _opsgenie(
    im: _Importer, c: Mapping[str, Any], g: Mapping[str, Any], name: str, path: str
) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": "opsgenie"}
    key = _secret_field(im, c, g, ("api_key", "opsgenie_api_key"), name, path)
    if key is not None:
        out["api_key"] = key
    _url(out, c.get("api_url") or g.get("opsgenie_api_url"), _OPSGENIE_URL)
    im.leftovers(c, {"api_key", "api_key_file", "api_url", "send_resolved"}, path)
    return out


def _telegram(
    im: _Importer, c: Mapping[str, Any], g: Mapping[str, Any], name: str, path: str
) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": "telegram"}
    token = _secret_field(im, c, g, ("bot_token", None), name, path)
    if token is not None:
        out["bot_token"] = token
    out["chat_id"] = _text(c.get("chat_id"))
    _url(out, c.get("api_url") or g.get("telegram_api_url"), _TELEGRAM_URL)
    im.leftovers(c, {"bot_token", "bot_token_file", "chat_id", "api_url", "send_resolved"}, path)
    return out


_KINDS: dict[str, tuple[str, bool, _Translate]] = {
    "email_configs": ("email", False, _email),
    "slack_configs": ("slack", False, _webhook_url_kind("slack", "api_url", "slack_api_url")),
    "pagerduty_configs": ("pagerduty", True, _pagerduty),
    "webhook_configs": ("webhook", True, _webhook),
    "opsgenie_configs": ("opsgenie", True, _opsgenie),
    "msteams_configs": ("teams", True, _webhook_url_kind("teams", "webhook_url")),
    "msteamsv2_configs": ("teams", True, _webhook_url_kind("teams", "webhook_url")),
    "discord_configs": ("discord", True, _webhook_url_kind("discord", "webhook_url")),
    "telegram_configs": ("telegram", True, _telegram),
}


def _receivers(im: _Importer, doc: Mapping[str, Any]) -> None:
    glob = _mapping(doc.get("global"), "global")
    taken: set[str] = set()
    for i, receiver in enumerate(_list(doc.get("receivers"), "receivers")):
        rpath = f"receivers[{i}]"
        receiver = _mapping(receiver, rpath)
        name = _text(receiver.get("name"))
        if not name:
            raise InvalidAlertmanagerConfig(f"{rpath}.name", "a receiver needs a name")
        configs: list[tuple[str, int, Mapping[str, Any]]] = []
        for key, value in receiver.items():
            if key == "name":
                continue
            if key not in _KINDS:
                if key.endswith("_configs"):
                    im.note(
                        f"{rpath}.{key}", "no channel kind of ours sends this; not carried over"
                    )
                else:
                    im.note(f"{rpath}.{key}", "not carried over")
                continue
            for j, config in enumerate(_list(value, f"{rpath}.{key}")):
                configs.append((key, j, _mapping(config, f"{rpath}.{key}[{j}]")))
        base = _CHANNEL_NAME.sub("_", name).strip("_.-") or "receiver"
        names: list[str] = []
        for key, j, config in configs:
            kind, resolved_default, translate = _KINDS[key]
            candidate = base if len(configs) == 1 else f"{base}-{kind}"
            channel, n = candidate, 1
            while channel in taken:
                n += 1
                channel = f"{candidate}-{n}"
            taken.add(channel)
            path = f"{rpath}.{key}[{j}]"
            table = translate(im, config, glob, channel, path)
            table["send_resolved"] = bool(config.get("send_resolved", resolved_default))
            im.channels[channel] = table
            im.channel_paths[channel] = f"{path} (receiver {name!r})"
            names.append(channel)
        im.receivers[name] = tuple(names)


def _channels_of(im: _Importer, receiver: Any, path: str) -> list[str]:
    name = _text(receiver)
    if name not in im.receivers:
        raise InvalidAlertmanagerConfig(path, f"unknown receiver {name!r}")
    return list(im.receivers[name])


def _route(im: _Importer, data: Mapping[str, Any], path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    matchers = _matchers(data, "matchers", path) + _legacy(data, "", path)
    out["matchers"] = matchers
    if "receiver" in data:
        out["channels"] = _channels_of(im, data["receiver"], f"{path}.receiver")
    if data.get("continue"):
        out["continue"] = True
    if data.get("group_by") is not None:
        out["group_by"] = [_text(n) for n in _list(data["group_by"], f"{path}.group_by")]
    for key in ("group_wait", "group_interval", "repeat_interval"):
        if data.get(key) is not None:
            out[key] = _duration(data[key], f"{path}.{key}")
    for key in ("mute_time_intervals", "active_time_intervals"):
        if data.get(key):
            out[key] = [_text(n) for n in _list(data[key], f"{path}.{key}")]
    im.leftovers(data, _ROUTE_KEYS, path)
    children = _list(data.get("routes"), f"{path}.routes")
    out["routes"] = [
        _route(im, _mapping(child, f"{path}.routes[{i}]"), f"{path}.routes[{i}]")
        for i, child in enumerate(children)
    ]
    return out


def _write_route(
    lines: list[str], route: Mapping[str, Any], header: str, path: str, comment: str = ""
) -> None:
    scalars = {k: v for k, v in route.items() if k != "routes"}
    _table(lines, f"[[{header}]]", scalars, comment=comment or path)
    for i, child in enumerate(route["routes"]):
        _write_route(lines, child, f"{header}.routes", f"{path}.routes[{i}]")


def _intervals(im: _Importer, doc: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for key in ("time_intervals", "mute_time_intervals"):
        for i, entry in enumerate(_list(doc.get(key), key)):
            path = f"{key}[{i}]"
            entry = _mapping(entry, path)
            specs = []
            for j, spec in enumerate(_list(entry.get("time_intervals"), f"{path}.time_intervals")):
                spath = f"{path}.time_intervals[{j}]"
                spec = _mapping(spec, spath)
                table: dict[str, Any] = {}
                for part in _SPEC_KEYS:
                    value = spec.get(part)
                    if value is None:
                        continue
                    if part == "location":
                        table[part] = _text(value)
                    elif part == "times":
                        table[part] = [
                            {
                                "start_time": _text(_mapping(t, spath).get("start_time")),
                                "end_time": _text(_mapping(t, spath).get("end_time")),
                            }
                            for t in _list(value, f"{spath}.times")
                        ]
                    else:
                        table[part] = [_text(v) for v in _list(value, f"{spath}.{part}")]
                im.leftovers(spec, set(_SPEC_KEYS), spath)
                specs.append(table)
            im.leftovers(entry, {"name", "time_intervals"}, path)
            out.append((_text(entry.get("name")), {"path": path, "specs": specs}))
    return out


def _inhibits(im: _Importer, doc: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for i, rule in enumerate(_list(doc.get("inhibit_rules"), "inhibit_rules")):
        path = f"inhibit_rules[{i}]"
        rule = _mapping(rule, path)
        table = {
            "source": _matchers(rule, "source_matchers", path) + _legacy(rule, "source_", path),
            "target": _matchers(rule, "target_matchers", path) + _legacy(rule, "target_", path),
            "equal": [_text(n) for n in _list(rule.get("equal"), f"{path}.equal")],
        }
        handled = {f"{side}_{k}" for side in ("source", "target")
                   for k in ("matchers", "match", "match_re")} | {"equal"}  # fmt: skip
        im.leftovers(rule, handled, path)
        out.append((path, table))
    return out


_TOP_KEYS = {"global", "route", "receivers", "inhibit_rules", "time_intervals",
             "mute_time_intervals"}  # fmt: skip
_GLOBAL_KEYS = {
    "smtp_smarthost", "smtp_from", "smtp_auth_username", "smtp_auth_password",
    "smtp_auth_password_file", "smtp_require_tls", "slack_api_url", "slack_api_url_file",
    "pagerduty_url", "opsgenie_api_key", "opsgenie_api_key_file", "opsgenie_api_url",
    "telegram_api_url",
}  # fmt: skip


def import_alertmanager(document: Any, *, source: str = "alertmanager.yml") -> AlertmanagerImport:
    """Translate a parsed alertmanager.yml into our TOML (see the module docstring).

    Raises:
        InvalidAlertmanagerConfig: the document is not an Alertmanager configuration we can
            read (not a mapping, no root route, a receiver without a name or named by a route
            but not defined, a duration that does not parse), with the YAML path.
    """
    doc = _mapping(document, "")
    im = _Importer()
    _receivers(im, doc)
    if "route" not in doc:
        raise InvalidAlertmanagerConfig("route", "the root route is required")
    root = _mapping(doc["route"], "route")
    if "receiver" not in root:
        raise InvalidAlertmanagerConfig("route.receiver", "the root route needs a receiver")
    tree = _route(im, root, "route")
    intervals = _intervals(im, doc)
    inhibits = _inhibits(im, doc)
    im.leftovers(doc, _TOP_KEYS, "")
    im.leftovers(_mapping(doc.get("global"), "global"), _GLOBAL_KEYS, "global")

    lines: list[str] = []
    routing = {
        "group_by": tree.pop("group_by", []),
        "group_wait": tree.pop("group_wait", format_duration(parse_duration(_GROUP_WAIT))),
        "group_interval": tree.pop(
            "group_interval", format_duration(parse_duration(_GROUP_INTERVAL))
        ),
        "repeat_interval": tree.pop(
            "repeat_interval", format_duration(parse_duration(_REPEAT_INTERVAL))
        ),
    }
    _table(lines, "[routing]", routing, comment="route (the root route's grouping and timers)")
    _write_route(lines, tree, "routing.routes", "route", "route: the root, matching every alert")
    for name, table in im.channels.items():
        _table(lines, f"[channels.{_key(name)}]", table, comment=im.channel_paths[name])
    for name, entry in intervals:
        _table(lines, "[[time_intervals]]", {"name": name}, comment=entry["path"])
        for spec in entry["specs"]:
            _table(lines, "[[time_intervals.time_intervals]]", spec)
    for path, table in inhibits:
        _table(lines, "[[inhibit]]", table, comment=path)

    header = [f"# Imported from {source} by blipee-monitor import-alertmanager."]
    if im.variables:
        header.append("#")
        header.append("# Secrets are read from these environment variables (set each to the value")
        header.append("# at the YAML path shown):")
        header.extend(f"#   {v.name}  <- {v.path}" for v in im.variables.values())
    if im.notes:
        header.append("#")
        header.append("# Not carried over:")
        header.extend(f"#   {note}" for note in im.notes)
    text = "\n".join(header + lines) + "\n"
    return AlertmanagerImport(
        text, tuple(im.notes), tuple(im.variables.values()), dict(im.receivers)
    )

"""Differential: our routing tree, matchers, inhibition and time intervals against Alertmanager.

The same input goes to both sides and the answers must be equal:
- routing trees (generated from a seeded random source, plus hand-written edge cases for
  `continue`, nested routes, regexes, escapes, lists and RE2 classes) are written as our TOML
  (read by `parse_config`) and as alertmanager.yml; for each label set, our matched routes'
  channels are compared with the receivers `amtool config routes test` prints;
- inhibit rules and alerts go to a live Alertmanager (`/api/v2/alerts`), whose
  `status.inhibitedBy` is compared with our `inhibited()`;
- time intervals, built around the current time, sit on pairs of routes in that Alertmanager,
  one muted by the interval and one active in it: the receiver that notifies our webhook is the
  one our `TimeInterval.contains` picks.

Deliberate differences are explicit here, never skipped, and listed in docs/configuration.md
("Differences from Prometheus / Alertmanager"):
- ROOT_RULE (decision 0005): when only `continue` routes matched at the top level, the rule's
  channels (the root) also receive the alert. Alertmanager's config gets a trailing catch-all
  route to the root receiver, which is exactly that rule; `test_root_rule_against_alertmanager`
  shows the answer without it.
- ONE_PER_CHANNEL: a channel reached by several matched routes is sent the alert once
  (`route_alert`); Alertmanager lists (and notifies) the receiver once per route.
- A resolution during a time-interval mute is sent when the mute ends (Alertmanager drops it):
  not compared here, as that needs a mute to end during the test; pinned by
  test_tree.py::test_a_resolution_during_a_mute_is_sent_when_it_ends.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import subprocess
import zoneinfo
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from actors.routing.config import TimeIntervalConfig
from actors.routing.inhibit import inhibited, parse_inhibit_rule
from actors.routing.matchers import format_matcher
from actors.routing.routes import match_routes, route_alert, route_from_config
from supervisor.config import ConfigError, parse_config
from tests.actors.notify.servers import free_port
from tests.e2e.harness import HttpPeer, require_binary, wait_until

pytestmark = pytest.mark.slow

SEED = 20261206
DEFAULT = "default"

# What differs on purpose (see the module docstring).
ROOT_RULE = "the rule's channels also receive when only continue routes matched (decision 0005)"
ONE_PER_CHANNEL = "a channel reached by several routes is sent the alert once"

LABELS = ("severity", "team", "env", "path")
VALUES = (
    "critical",
    "warning",
    "db",
    "api",
    "prod",
    "",
    "a.b",
    "axb",
    "a\\b",
    'say "hi"',
    "123",
    "١٢٣",  # Arabic-Indic digits
    "é",
    "CRIT",
    "Crit-1",
    "x,y",
    "a b",
    "日本",
    "line\nfeed",
)
REGEXES = (
    ".*",
    ".+",
    "crit.*",
    "(?i)crit.*",
    "\\d+",
    "[[:alpha:]]+",
    "[[:digit:]]+",
    "a\\.b",
    "a\\\\b",
    "db|api",
    "\\pL+",
    "\\w+",
    "(?i)CRIT|prod",
    "[^a-z]*",
    "",
    "x(?i)Y",
    "(?s).*feed",
    ".*feed",
    "\\p{Arabic}+",
)


# -- writing the same tree twice --------------------------------------------------------------


@dataclass
class Node:
    """A route of a generated tree, the neutral form both configs are written from."""

    matchers: list[str]
    receiver: str | None
    continue_: bool
    children: list[Node]

    def toml(self) -> str:
        parts = [f"matchers = {_toml_list(self.matchers)}"]
        if self.receiver is not None:
            parts.append(f"channels = [{json.dumps(self.receiver)}]")
        parts.append(f"continue = {'true' if self.continue_ else 'false'}")
        if self.children:
            parts.append("routes = [" + ", ".join(c.toml() for c in self.children) + "]")
        return "{ " + ", ".join(parts) + " }"

    def alertmanager(self) -> dict[str, Any]:
        route: dict[str, Any] = {"matchers": self.matchers, "continue": self.continue_}
        if self.receiver is not None:
            route["receiver"] = self.receiver
        if self.children:
            route["routes"] = [c.alertmanager() for c in self.children]
        return route

    def receivers(self) -> Iterator[str]:
        if self.receiver is not None:
            yield self.receiver
        for child in self.children:
            yield from child.receivers()


def _toml_list(values: Sequence[str]) -> str:
    # JSON strings are TOML basic strings (same escapes); no DEL in the generated values.
    return "[" + ", ".join(json.dumps(v, ensure_ascii=False) for v in values) + "]"


def _our_routes(tree: Sequence[Node]) -> list[Any]:
    names = {DEFAULT} | {r for node in tree for r in node.receivers()}
    channels = "\n".join(f'[channels.{name}]\nkind = "console"' for name in sorted(names))
    text = f"{channels}\n\n[routing]\nroutes = [{', '.join(n.toml() for n in tree)}]\n"
    config = parse_config(text, file="diff.toml")
    return [route_from_config(r) for r in config.routing.routes]


def _alertmanager_config(tree: Sequence[Node], *, root_rule: bool = True) -> dict[str, Any]:
    names = {DEFAULT} | {r for node in tree for r in node.receivers()}
    routes = [n.alertmanager() for n in tree]
    if root_rule:
        routes.append({"receiver": DEFAULT})  # ROOT_RULE, made explicit
    return {
        "route": {"receiver": DEFAULT, "routes": routes},
        "receivers": [{"name": name} for name in sorted(names)],
    }


class Amtool:
    """`amtool config routes test` on one config file."""

    def __init__(self, binary: str, tmp: Path, config: Mapping[str, Any]) -> None:
        self.binary = binary
        self.tmp = tmp
        self.file = tmp / "alertmanager.yml"
        self.file.write_text(json.dumps(config, ensure_ascii=False))  # JSON is YAML
        self.calls = 0

    def receivers(self, labels: Mapping[str, str]) -> list[str]:
        args = [format_matcher(name, "=", value) for name, value in labels.items()]
        result = subprocess.run(
            [self.binary, "config", "routes", "test", f"--config.file={self.file}", *args],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
            env={"HOME": str(self.tmp), "PATH": "/usr/bin:/bin"},
        )
        assert result.returncode == 0, (labels, result.stderr)
        self.calls += 1
        return result.stdout.strip().split(",")


def _ours(routes: Sequence[Any], labels: Mapping[str, str]) -> list[str]:
    matched = match_routes(labels, [DEFAULT], routes, ["alertname"])
    return [",".join(m.channels) for m in matched]


def _compare(amtool: Amtool, routes: Sequence[Any], labels: Mapping[str, str]) -> str | None:
    theirs = amtool.receivers(labels)
    ours = _ours(routes, labels)
    # ONE_PER_CHANNEL: what is sent is the matched routes' channels, each once.
    sent = [d.channel for d in route_alert(labels, [DEFAULT], routes, ["alertname"])]
    if ours != theirs or sent != list(dict.fromkeys(theirs)):
        return f"{dict(labels)!r}: alertmanager {theirs}, ours {ours} (sent to {sent})"
    return None


# -- generated trees --------------------------------------------------------------------------


def _matcher(rng: random.Random) -> str:
    name = rng.choice(LABELS)
    op = rng.choice(("=", "!=", "=~", "!~", "=~", "=~"))
    value = rng.choice(REGEXES if "~" in op else VALUES)
    text = format_matcher(name, op, value)
    simple = value and all(c.isalnum() or c in "._-" for c in value)
    if simple and rng.random() < 0.5:
        text = f"{name}{op}{value}"  # unquoted
    return text


def _node(rng: random.Random, path: str, depth: int) -> Node:
    matchers = [_matcher(rng) for _ in range(rng.choice((0, 1, 1, 1, 2)))]
    if len(matchers) == 2 and rng.random() < 0.5:
        matchers = ["{" + ", ".join(matchers) + "}"]  # one list string
    children = []
    if depth < 3 and rng.random() < 0.45:
        children = [_node(rng, f"{path}_{i}", depth + 1) for i in range(rng.randint(1, 3))]
    receiver = f"r{path}" if rng.random() < 0.8 else None
    return Node(matchers, receiver, rng.random() < 0.4, children)


def _labels(rng: random.Random) -> dict[str, str]:
    return {name: rng.choice(VALUES) for name in LABELS if rng.random() < 0.7}


TREES = 8
LABEL_SETS = 50


def test_generated_trees_route_as_alertmanager(tmp_path: Path) -> None:
    binary = require_binary("/usr/bin/amtool")
    rng = random.Random(SEED)
    failures: list[str] = []
    calls = 0
    for index in range(TREES):
        tree = [_node(rng, str(i), 1) for i in range(rng.randint(2, 4))]
        routes = _our_routes(tree)
        directory = tmp_path / f"tree{index}"
        directory.mkdir()
        amtool = Amtool(binary, directory, _alertmanager_config(tree))
        for _ in range(LABEL_SETS):
            problem = _compare(amtool, routes, _labels(rng))
            if problem:
                failures.append(f"tree {index}: {problem}")
        calls += amtool.calls
    assert calls == TREES * LABEL_SETS
    assert not failures, "\n".join(failures[:20])


# -- hand-written edge cases ------------------------------------------------------------------

EDGE_TREE = [
    Node(
        ["team=db"],
        "db",
        False,
        [
            Node(["severity=critical"], "db-page", True, []),
            Node(["env=prod"], "db-prod", False, []),
            Node(["env=~.+"], None, False, []),  # inherits db
        ],
    ),
    Node(["team=api"], None, False, [Node(["env=prod"], "api-prod", True, [])]),
    Node([r'path=~"a\.b"'], "spurious-escape", True, []),  # `\.` stays: the regex a\.b
    Node([r'path=~"a\\.b"'], "escaped-backslash", True, []),  # `\\` is one: the regex a\.b
    Node([r'path=~"a\\\\.b"'], "two-backslashes", True, []),  # the regex a\\.b
    Node(['{severity=~"(?i)crit.*", env!="dev"}'], "list", True, []),
    Node(["severity=~crit.*,env=prod"], "comma-list", True, []),
    Node([r'path=~"\\d+"'], "digits", True, []),
    Node([r'path=~"\d+"'], "digits-spurious", True, []),
    Node(['path=~"[[:alpha:]]+"'], "alpha", True, []),
    Node(['path="say \\"hi\\""'], "quoted-quote", True, []),
    Node(['path="x,y"'], "quoted-comma", True, []),
    Node(["path=~x(?i)Y"], "inline-flag", True, []),
    Node(["team=ops"], "ops", True, []),
    Node(["team=ops", "env=prod"], "ops-prod", True, []),
]

EDGE_LABELS = [
    {"team": "db", "env": "prod"},
    {"team": "db", "env": "dev", "severity": "critical"},
    {"team": "db", "severity": "critical"},
    {"team": "db"},
    {"team": "db", "env": ""},
    {"team": "api", "env": "prod"},
    {"team": "api"},
    {"path": "a.b"},
    {"path": "axb"},
    {"path": "a\\.b"},
    {"path": "a\\xb"},
    {"severity": "CRITICAL", "env": "prod"},
    {"severity": "Critical"},
    {"severity": "critical", "env": "dev"},
    {"path": "123"},
    {"path": "١٢٣"},
    {"path": "abc"},
    {"path": "é"},
    {"path": 'say "hi"'},
    {"path": "x,y"},
    {"path": "xy"},
    {"path": "xY"},
    {"path": "XY"},
    {"team": "ops"},
    {"team": "ops", "env": "prod"},
    {},
]


def test_edge_cases_route_as_alertmanager(tmp_path: Path) -> None:
    amtool = Amtool(require_binary("/usr/bin/amtool"), tmp_path, _alertmanager_config(EDGE_TREE))
    routes = _our_routes(EDGE_TREE)
    failures = [p for labels in EDGE_LABELS if (p := _compare(amtool, routes, labels))]
    assert amtool.calls == len(EDGE_LABELS)
    assert not failures, "\n".join(failures)


def test_root_rule_against_alertmanager(tmp_path: Path) -> None:
    """ROOT_RULE against the real Alertmanager: without the catch-all, only `pager`."""
    tree = [Node(["severity=critical"], "pager", True, [])]
    plain = Amtool(
        require_binary("/usr/bin/amtool"), tmp_path, _alertmanager_config(tree, root_rule=False)
    )
    labels = {"severity": "critical"}
    assert plain.receivers(labels) == ["pager"]
    assert _ours(_our_routes(tree), labels) == ["pager", DEFAULT]
    assert plain.receivers({"severity": "info"}) == [DEFAULT]
    assert _ours(_our_routes(tree), {"severity": "info"}) == [DEFAULT]


# -- what each side accepts ---------------------------------------------------------------------

ACCEPTANCE = [
    # the grammar
    'a="b',
    'a=b"',
    'a="b"c"',
    'a="x\\"',
    "a=x\\",
    "{a=b",
    "a=b}",
    " {a=b}",
    "a=b,,c=d",
    "a=b, c=d ,",
    "{}",
    "",
    "1a=b",
    "a:b=c",
    'a =~ "x"',
    "a=~(",
    "a==b",
    "a!b",
    'a="b",c',
    # the regex syntax: RE2 as Go has it
    'l=~"\\C"',
    'l=~"\\\\C"',
    'l=~"(?<n>x)"',
    'l=~"(?P<n>x)"',
    'l=~"[(?<]"',
    'l=~"\\\\Q(?<\\\\E"',
    'l=~"[[:word:]]"',
    'l=~"[[:foo:]]"',
    'l=~"\\\\pN"',
    'l=~"\\\\p{Foo}"',
    'l=~"\\\\z"',
    'l=~"\\\\Z"',
    'l=~"(?=x)"',
    'l=~"\\\\1"',
    'l=~"(?x)a"',
    'l=~"(?U)a"',
    'l=~"a{1000}"',
    'l=~"a{1001}"',
    'l=~"a**"',
    'l=~"(?#c)"',
    'l=~"\\\\x{110000}"',
]


def test_what_alertmanager_accepts_we_accept(tmp_path: Path) -> None:
    binary = require_binary("/usr/bin/amtool")
    failures = []
    answers = set()
    for text in ACCEPTANCE:
        tree = [Node([text], "r", False, [])]
        file = tmp_path / "alertmanager.yml"
        file.write_text(json.dumps(_alertmanager_config(tree), ensure_ascii=False))
        result = subprocess.run(
            [binary, "check-config", str(file)],
            capture_output=True,
            timeout=20,
            check=False,
            env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        )
        theirs = result.returncode == 0
        try:
            _our_routes(tree)
        except ConfigError:
            ours = False
        else:
            ours = True
        answers.add(theirs)
        if theirs != ours:
            failures.append(f"{text!r}: alertmanager accepts={theirs}, ours={ours}")
    assert not failures, "\n".join(failures)
    assert answers == {True, False}


# -- a live Alertmanager: inhibition and time intervals ---------------------------------------


class LiveAlertmanager:
    """prometheus-alertmanager on 127.0.0.1 (no cluster), storage in a temporary directory."""

    def __init__(self, tmp: Path, config: Mapping[str, Any]) -> None:
        binary = require_binary("/usr/bin/prometheus-alertmanager")
        file = tmp / "alertmanager.yml"
        file.write_text(json.dumps(config, ensure_ascii=False))
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = tmp / "alertmanager.log"
        with self.log.open("wb") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={file}",
                    f"--storage.path={tmp / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--cluster.listen-address=",
                    "--log.level=warn",
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        self.client = httpx.Client(base_url=self.url, timeout=10)

        def ready() -> bool:
            if self.proc.poll() is not None:
                pytest.fail(f"alertmanager exited: {self.log.read_text()[-800:]}")
            try:
                return self.client.get("/-/ready").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(ready, "alertmanager ready", timeout=20)

    def post(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        response = self.client.post("/api/v2/alerts", json=list(alerts))
        assert response.status_code == 200, response.text

    def alerts(self, **params: str) -> list[dict[str, Any]]:
        response = self.client.get("/api/v2/alerts", params=params)
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()
        return found

    def close(self) -> None:
        self.client.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


INHIBIT_SCENARIOS = 20
ALERTS_PER_SCENARIO = 14


def _inhibit_matcher(rng: random.Random) -> str:
    name = rng.choice(("severity", "team", "cluster"))
    pools = {
        "severity": ("critical", "warning", "info"),
        "team": ("db", "api"),
        "cluster": ("c1", "c2", ""),
    }
    op = rng.choice(("=", "=", "!=", "=~"))
    value = (
        rng.choice(pools[name]) if op != "=~" else rng.choice(("crit.*|warning", "db|api", ".*"))
    )
    return format_matcher(name, op, value)


def _inhibit_scenarios(rng: random.Random) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """(inhibit rules, alerts' labels); each scenario's rules and alerts carry its own label."""
    rules: list[dict[str, Any]] = []
    alerts: list[dict[str, str]] = []
    for s in range(INHIBIT_SCENARIOS):
        scope = format_matcher("scenario", "=", str(s))
        for _ in range(rng.randint(1, 3)):
            rules.append(
                {
                    "source_matchers": [
                        scope,
                        *(_inhibit_matcher(rng) for _ in range(rng.randint(1, 2))),
                    ],
                    "target_matchers": [
                        scope,
                        *(_inhibit_matcher(rng) for _ in range(rng.randint(1, 2))),
                    ],
                    "equal": rng.sample(["cluster", "team"], rng.randint(0, 2)),
                }
            )
        seen: set[tuple[tuple[str, str], ...]] = set()
        for a in range(ALERTS_PER_SCENARIO):
            labels = {"alertname": f"A{a % 4}", "scenario": str(s)}
            for name, pool in (
                ("severity", ("critical", "warning", "info")),
                ("team", ("db", "api")),
                ("cluster", ("c1", "c2")),
            ):
                if rng.random() < 0.8:
                    labels[name] = rng.choice(pool)
            key = tuple(sorted(labels.items()))
            if key not in seen:
                seen.add(key)
                alerts.append(labels)
    # The two-sided rule, by hand: both alerts match source and target; neither mutes the other,
    # while a source-only alert mutes both.
    scope = format_matcher("scenario", "=", "hand")
    rules.append(
        {
            "source_matchers": [scope, "team=db"],
            "target_matchers": [scope, "team=db", "severity!=critical"],
            "equal": ["cluster"],
        }
    )
    alerts += [
        {
            "alertname": "Both1",
            "scenario": "hand",
            "team": "db",
            "severity": "warning",
            "cluster": "c1",
        },
        {
            "alertname": "Both2",
            "scenario": "hand",
            "team": "db",
            "severity": "warning",
            "cluster": "c1",
        },
        {
            "alertname": "Both3",
            "scenario": "hand",
            "team": "db",
            "severity": "warning",
            "cluster": "c2",
        },
        {
            "alertname": "Src",
            "scenario": "hand",
            "team": "db",
            "severity": "critical",
            "cluster": "c2",
        },
    ]
    return rules, alerts


@dataclass(frozen=True)
class IntervalCase:
    name: str
    spec: dict[str, Any]


LOCATIONS = ("UTC", "Europe/Lisbon", "America/New_York", "Asia/Kolkata", "Pacific/Auckland")
WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
INTERVAL_CASES = 60


def _around(rng: random.Random, value: int, low: int, high: int) -> tuple[int, int]:
    """A range [begin, end] inside [low, high] that holds `value` or, about half the time,
    does not."""
    if rng.random() < 0.5 or (value == low and value == high):
        return rng.randint(low, value), rng.randint(value, high)
    if value > low and (value == high or rng.random() < 0.5):
        end = rng.randint(low, value - 1)
        return rng.randint(low, end), end
    begin = rng.randint(value + 1, high)
    return begin, rng.randint(begin, high)


def _interval_spec(rng: random.Random, now: dt.datetime) -> dict[str, Any]:
    location = rng.choice(LOCATIONS)
    local = now.astimezone(zoneinfo.ZoneInfo(location))
    spec: dict[str, Any] = {"location": location}
    if rng.random() < 0.6:
        minute = local.hour * 60 + local.minute
        begin, end = _around(rng, minute, 0, 1439)
        spec["times"] = [
            {
                "start_time": f"{begin // 60:02d}:{begin % 60:02d}",
                "end_time": f"{(end + 1) // 60:02d}:{(end + 1) % 60:02d}",
            }
        ]
    if rng.random() < 0.5:
        weekday = (local.weekday() + 1) % 7
        begin, end = _around(rng, weekday, 0, 6)
        spec["weekdays"] = [
            WEEKDAYS[begin] if begin == end else f"{WEEKDAYS[begin]}:{WEEKDAYS[end]}"
        ]
    if rng.random() < 0.5:
        begin, end = _around(rng, local.day, 1, 28 if local.day <= 28 else 31)
        if rng.random() < 0.4:  # the same days counted from the month's end
            length = (local.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(
                days=1
            )
            begin, end = begin - length.day - 1, end - length.day - 1
            begin, end = max(begin, -31), max(end, -31)
        spec["days_of_month"] = [f"{begin}:{end}"]
    if rng.random() < 0.3:
        begin, end = _around(rng, local.month, 1, 12)
        spec["months"] = [f"{begin}:{end}"]
    if rng.random() < 0.3:
        begin, end = _around(rng, local.year, local.year - 2, local.year + 2)
        spec["years"] = [f"{begin}:{end}"]
    return spec


def _interval_cases(rng: random.Random, now: dt.datetime) -> list[IntervalCase]:
    """Cases whose answer is the same over the next 3 minutes (Alertmanager decides when it
    notifies, a little after we do)."""
    cases: list[IntervalCase] = []
    while len(cases) < INTERVAL_CASES:
        spec = _interval_spec(rng, now)
        try:
            interval = TimeIntervalConfig.model_validate(
                {"name": "t", "time_intervals": [spec]}
            ).build()
        except ValueError:
            continue  # e.g. a negative day range Alertmanager refuses too: draw again
        stamps = [now.timestamp() + offset for offset in (0, 60, 120, 180)]
        if len({interval.contains(t) for t in stamps}) == 1:
            cases.append(IntervalCase(f"t{len(cases)}", spec))
    return cases


def test_live_alertmanager_inhibition_and_time_intervals(tmp_path: Path) -> None:
    rng = random.Random(SEED + 1)
    rules, alert_labels = _inhibit_scenarios(rng)
    now = dt.datetime.now(dt.UTC)
    cases = _interval_cases(rng, now)
    with HttpPeer() as webhook:
        hook = [{"url": f"{webhook.url}/hook", "send_resolved": False}]
        routes = []
        for case in cases:
            match = [format_matcher("tcase", "=", case.name)]
            common = {
                "matchers": match,
                "group_by": ["tcase"],
                "group_wait": "0s",
                "group_interval": "1h",
            }
            routes.append(
                {**common, "receiver": "mute", "continue": True, "mute_time_intervals": [case.name]}
            )
            routes.append({**common, "receiver": "active", "active_time_intervals": [case.name]})
        sentinel = {
            "source_matchers": ['sentinel="src"'],
            "target_matchers": ['sentinel="tgt"'],
            "equal": [],
        }
        config = {
            "route": {"receiver": "blackhole", "group_wait": "1h", "routes": routes},
            "receivers": [
                {"name": "blackhole"},
                {"name": "mute", "webhook_configs": hook},
                {"name": "active", "webhook_configs": hook},
            ],
            "inhibit_rules": [*rules, sentinel],
            "time_intervals": [{"name": c.name, "time_intervals": [c.spec]} for c in cases],
        }
        am = LiveAlertmanager(tmp_path, config)
        try:
            starts = (now - dt.timedelta(minutes=1)).isoformat()
            ends = (now + dt.timedelta(hours=1)).isoformat()
            posted = [
                {"labels": labels, "startsAt": starts, "endsAt": ends}
                for labels in [
                    {"alertname": "Sentinel", "sentinel": "tgt"},
                    *alert_labels,
                    *({"alertname": "Timed", "tcase": c.name} for c in cases),
                    {"alertname": "Sentinel", "sentinel": "src"},  # last: the barrier
                ]
            ]
            am.post(posted)
            # Alertmanager's inhibitor reads alerts in the order posted: once the sentinel
            # target is inhibited, every source before it has been seen.
            wait_until(
                lambda: any(a["status"]["inhibitedBy"] for a in am.alerts(filter='sentinel="tgt"')),
                "alertmanager's inhibitor to read every alert",
                timeout=20,
            )
            theirs = {
                json.dumps(a["labels"], sort_keys=True): bool(a["status"]["inhibitedBy"])
                for a in am.alerts()
            }
            parsed = [
                parse_inhibit_rule(r["source_matchers"], r["target_matchers"], r["equal"])
                for r in rules
            ]
            firing = [(json.dumps(x, sort_keys=True), x) for x in alert_labels]
            failures = []
            for key, labels in firing:
                ours = inhibited(parsed, labels, key, firing)
                if theirs[key] != ours:
                    failures.append(f"{labels}: alertmanager inhibited={theirs[key]}, ours={ours}")
            assert not failures, "\n".join(failures)
            inhibited_count = sum(theirs[k] for k, _ in firing)
            assert 0 < inhibited_count < len(firing)  # both answers were exercised

            def notified() -> dict[str, set[str]] | None:
                got: dict[str, set[str]] = {}
                for request in webhook.requests:
                    body: Any = request.json()
                    got.setdefault(body["groupLabels"]["tcase"], set()).add(body["receiver"])
                return got if len(got) == len(cases) else None

            got = wait_until(notified, "a notification for every time interval case", timeout=30)
            failures = []
            for case in cases:
                interval = TimeIntervalConfig.model_validate(
                    {"name": case.name, "time_intervals": [case.spec]}
                ).build()
                expected = "active" if interval.contains(now.timestamp()) else "mute"
                if got[case.name] != {expected}:
                    failures.append(
                        f"{case.spec}: alertmanager {sorted(got[case.name])}, ours {expected}"
                    )
            assert not failures, "\n".join(failures)
            answers = {("active" if "active" in got[c.name] else "mute") for c in cases}
            assert answers == {"active", "mute"}  # both answers were exercised
        finally:
            am.close()

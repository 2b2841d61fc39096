"""Property-based fuzzing: every operation of /openapi.json against a real monitor process,
with and without tokens, and mutations of a valid configuration file against check-config.

Bounded (examples, not time) to about a minute together under `make test`.
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.web.openapi import OPERATIONS, Operation, app_operations
from supervisor.app import App
from supervisor.cli import main as cli_main
from supervisor.config import load_config
from tests.e2e.harness import ROOT, Monitor

TOKEN = "fuzz-token-8c1d"
CONFIG = """
[server]
listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:0"

[security]
api_token = "{token}"
auth_failures = 0  # wrong tokens are fuzzed on purpose, all from 127.0.0.1

[storage]
path = "{db}"

[log]
format = "json"

[[checks]]
name = "self"
kind = "self"
interval = "1s"
timeout = "1s"
critical = false

[channels.console]
kind = "console"
"""

# Answers an operation documents besides its success and 4xx.
_DOCUMENTED_5XX = {"/api/health": {503}, "/api/health/ready": {503}}


def test_every_route_of_the_app_is_described(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(CONFIG.format(token=TOKEN, db=tmp_path / "m.db"))
    app = App(load_config(path, env={}), path=path, env={})
    try:
        routes = app_operations(app.api_server.app)
        described = {(op.method, op.path) for op in OPERATIONS}
        assert set(routes) == described, set(routes) ^ described
    finally:
        app.database.close()


@pytest.fixture(scope="module")
def monitor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Monitor]:
    directory = tmp_path_factory.mktemp("fuzz")
    config = directory / "monitor.toml"
    config.write_text(CONFIG.format(token=TOKEN, db=directory / "m.db"))
    process = Monitor(config).start()
    try:
        yield process
    finally:
        process.stop()


def _document(monitor: Monitor) -> dict[str, Any]:
    answer = httpx.get(f"{monitor.api}/openapi.json", timeout=10)
    assert answer.status_code == 200
    return dict(answer.json())


def test_the_document_is_openapi_3_1_with_each_operation_secured_as_the_guard(
    monitor: Monitor,
) -> None:
    document = _document(monitor)
    assert document["openapi"] == "3.1.0"
    for op in OPERATIONS:
        operation = document["paths"][op.path][op.method.lower()]
        assert operation["summary"] == op.summary
        security = operation["security"]
        if op.path in ("/api/health/live", "/api/health/ready"):
            assert security == []
        elif op.method == "GET" and op.path != "/api/v1/audit":
            assert security == [{}, {"bearer": ["read"]}]
        else:
            assert {} not in security
    ids = [o["operationId"] for p in document["paths"].values() for o in p.values()]
    assert len(ids) == len(set(ids))


_TEXT = st.text(max_size=40)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=20,
)


def _value(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    if "enum" in schema:
        return st.sampled_from(schema["enum"]) | _TEXT
    if schema.get("type") == "integer":
        return st.integers(-5, 2000).map(str) | _TEXT
    if schema.get("type") == "array":
        return st.lists(_value(schema["items"]), max_size=40)
    return _TEXT | st.sampled_from(['alertname=~".{10}(.|.)*Z"', "a=b", "x" * 5000])


_MATCHER = st.sampled_from(['alertname="X"', "a=~.+", 'check=~".{10}(.|.)*Z"', "1a=b", ""]) | _TEXT


def _silence() -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(
        {"matchers": st.lists(_MATCHER, max_size=40)},
        optional={
            "startsAt": st.sampled_from(["0001-01-01T00:00:00Z", "2026-01-01T00:00:00+14:00"])
            | _TEXT,
            "endsAt": st.sampled_from(["9999-12-31T23:59:59Z", "2030-01-01T00:00:00Z"]) | _TEXT,
            "duration": st.sampled_from(["1h", "1000000d", "-1h", "1e400s", "9" * 400 + "d"])
            | _TEXT,
            "comment": st.text(max_size=3000),
            "createdBy": _JSON,
            "id": _TEXT,
        },
    )


def _body(op: Operation) -> st.SearchStrategy[Any]:
    nested = st.integers(1, 5000).map(lambda n: "[" * n + "]" * n)
    raw = st.binary(max_size=200) | nested.map(str.encode)
    if op.body is None:
        return st.none() | _JSON.map(lambda v: json.dumps(v).encode()) | raw
    if "matchers" in op.body.get("properties", {}):
        structured = _silence()
    else:
        event = st.fixed_dictionaries(
            {"type": st.sampled_from(["heartbeat", "agent_execution", "nope"]) | _TEXT},
            optional={"agent": _TEXT, "duration_seconds": _JSON, "success": _JSON},
        )
        structured = st.fixed_dictionaries({"events": st.lists(event, max_size=5) | _JSON})
    return (structured | _JSON).map(lambda v: json.dumps(v).encode()) | raw


@st.composite
def _requests(
    draw: st.DrawFn,
) -> tuple[Operation, str, list[tuple[str, str]], bytes | None, dict[str, str]]:
    op = draw(st.sampled_from(OPERATIONS))
    path = op.path
    while "{" in path:
        start, end = path.index("{"), path.index("}")
        piece = quote(draw(st.text(min_size=1, max_size=30)), safe="")
        path = path[:start] + piece + path[end + 1 :]
    query = []
    for name, schema in op.query.items():
        value = draw(st.none() | _value(dict(schema)))
        if isinstance(value, list):
            query += [(name, str(v)) for v in value]
        elif value is not None:
            query.append((name, str(value)))
    body = draw(_body(op))
    headers = {"Content-Type": draw(st.sampled_from(["application/json", "text/plain", "x/y"]))}
    token = draw(st.sampled_from([None, TOKEN, "wrong", TOKEN + "\n"]))
    if token is not None:
        headers["Authorization"] = f"Bearer {token.strip()}" if "\n" in token else f"Bearer {token}"
    return op, path, query, body, headers


class _LiveProbe:
    """Asks /api/health/live over and over from a thread, recording each latency."""

    def __init__(self, base: str) -> None:
        self._base = base
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self._base, timeout=5) as client:
            while not self._stop.is_set():
                start = time.perf_counter()
                try:
                    status = client.get("/api/health/live").status_code
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                    continue
                self.latencies.append(time.perf_counter() - start)
                if status != 200:
                    self.failures.append(f"status {status}")
                self._stop.wait(0.01)

    def __enter__(self) -> _LiveProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def test_no_request_gets_a_5xx_or_stalls_liveness_or_loses_valid_data(monitor: Monitor) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    with httpx.Client(base_url=monitor.api, timeout=10) as http:
        kept = http.post(
            "/api/v1/silences",
            headers=auth,
            json={"matchers": ["alertname=keep"], "duration": "1h", "comment": "kept"},
        )
        assert kept.status_code == 201, kept.text
        kept_id = kept.json()["id"]
        sent_agents: list[str] = []
        seen: list[tuple[str, str, int]] = []

        @settings(
            max_examples=250,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(_requests(), st.integers(0, 9))
        def fuzz(request: Any, nth: int) -> None:
            op, path, query, body, headers = request
            # All on one kept-alive connection: an answer given before the body was read used
            # to end it unannounced, and the next request was lost (test_connections.py).
            answer = http.request(op.method, path, params=query, content=body, headers=headers)
            seen.append((op.method, op.path, answer.status_code))
            allowed = _DOCUMENTED_5XX.get(op.path, set())
            assert answer.status_code < 500 or answer.status_code in allowed, (
                op.method,
                path,
                query,
                body,
                headers,
                answer.status_code,
                answer.text[:500],
            )
            if answer.status_code >= 400 and answer.headers.get("content-type", "").startswith(
                "application/json"
            ):
                assert "error" in answer.json()
            if nth == 0:  # valid work keeps being accepted meanwhile
                agent = f"keeper-{len(sent_agents)}"
                event = {"events": [{"type": "heartbeat", "agent": agent}]}
                assert http.post("/api/v1/events", headers=auth, json=event).status_code == 202
                sent_agents.append(agent)

        with _LiveProbe(monitor.api) as probe:
            # Every operation once for sure (the fuzz samples them at random), then the fuzz.
            for op in OPERATIONS:
                path = op.path.replace("{name}", "self").replace("{silence_id}", "nope")
                answer = http.request(op.method, path, headers=auth)
                allowed = _DOCUMENTED_5XX.get(op.path, set())
                assert answer.status_code < 500 or answer.status_code in allowed, (op, answer.text)
            fuzz()
        listed = http.get(f"/api/v1/silences/{kept_id}")
        assert listed.status_code == 200
        assert listed.json()["status"]["state"] == "active"
        agents = http.get("/api/v1/agents/status").json()
        names = json.dumps(agents)
        assert all(agent in names for agent in sent_agents)
    assert probe.failures == []
    assert probe.latencies
    worst = max(probe.latencies)
    count = len(probe.latencies)
    ranked = sorted(probe.latencies)
    median, p99 = ranked[count // 2], ranked[count * 99 // 100]
    print(
        f"/api/health/live during the fuzz: {count} answers, median {median * 1000:.1f} ms,"
        f" p99 {p99 * 1000:.1f} ms, worst {worst * 1000:.1f} ms"
    )
    # Every probe answered 200 (a stall past 5 s fails above). The median, not the worst: on a
    # shared machine the scheduler alone delays a few answers by more than the loop ever does.
    assert median < 0.1


VALID = (ROOT / "config.toml").read_text()


@st.composite
def _mutated(draw: st.DrawFn) -> str:
    text = VALID
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["delete", "insert", "replace", "swap", "duplicate"]))
        lines = text.splitlines(keepends=True)
        if kind == "swap" and len(lines) > 2:
            i = draw(st.integers(0, len(lines) - 2))
            lines[i], lines[i + 1] = lines[i + 1], lines[i]
            text = "".join(lines)
        elif kind == "duplicate" and lines:
            i = draw(st.integers(0, len(lines) - 1))
            lines.insert(i, lines[i])
            text = "".join(lines)
        else:
            at = draw(st.integers(0, len(text)))
            size = draw(st.integers(0, 20)) if kind != "insert" else 0
            piece = (
                ""
                if kind == "delete"
                else draw(
                    st.sampled_from(
                        [
                            '"',
                            "[",
                            "]",
                            "=",
                            "\n",
                            "{",
                            "}",
                            ",",
                            "#",
                            "\\",
                            "0",
                            "-1",
                            "1e999",
                            '"${X}"',
                            "true",
                            "[[checks]]\n",
                        ]
                    )
                    | st.text(max_size=8)
                )
            )
            text = text[:at] + piece + text[at + size :]
    return text


def test_a_mutated_configuration_is_valid_or_exit_2_with_its_position(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"

    @settings(max_examples=300, deadline=None, database=None)
    @given(_mutated())
    def check(text: str) -> None:
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = cli_main(["check-config", "-c", str(path)])
        errors = err.getvalue()
        assert "Traceback" not in errors
        assert status in (0, 2), errors
        if status == 2:
            assert f"{path}:" in errors, errors
            first = errors.splitlines()[0]
            assert first.startswith(f"{path}:"), errors
            line, column = first[len(str(path)) + 1 :].split(":")[:2]
            assert line.isdigit(), errors
            assert column.isdigit(), errors

    check()

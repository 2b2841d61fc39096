"""Pure check logic: thresholds, slowness, dependencies, HTTP answers, json_path."""

from __future__ import annotations

import pytest

from actors.checks.errors import JsonPathError, ProbeError, describe_error
from actors.checks.logic import (
    Observation,
    ThresholdState,
    apply_thresholds,
    evaluate,
    evaluate_http,
    json_path_get,
    parse_json_path,
)
from actors.models import CheckStatus

P, W, F = CheckStatus.PASS, CheckStatus.WARN, CheckStatus.FAIL


def _run(observed: list[CheckStatus], failure: int, success: int) -> list[CheckStatus | None]:
    state = ThresholdState()
    out = []
    for status in observed:
        state = apply_thresholds(state, status, failure, success)
        out.append(state.reported)
    return out


@pytest.mark.parametrize(
    ("observed", "failure", "success", "reported"),
    [
        ([P, F, P], 1, 1, [P, F, P]),
        ([P, F, F, F, P], 3, 1, [P, P, P, F, P]),
        ([P, F, F, P, F], 3, 1, [P, P, P, P, P]),
        ([F, P, P, P], 1, 3, [F, F, F, P]),
        ([F, P, F, P, P], 1, 2, [F, F, F, F, P]),
        ([P, W, F], 2, 1, [P, W, W]),
        ([F], 3, 3, [F]),  # the first observation is taken as it is
    ],
)
def test_thresholds(
    observed: list[CheckStatus], failure: int, success: int, reported: list[CheckStatus]
) -> None:
    assert _run(observed, failure, success) == reported


def test_evaluate_warn_latency_and_messages() -> None:
    result, state = evaluate(
        check="db",
        observation=Observation.ok("Database healthy"),
        latency=0.3,
        timestamp=1.0,
        state=ThresholdState(),
        warn_latency=0.2,
        critical=True,
    )
    assert result.status is W
    assert result.observed is W
    assert "slow: 300 ms > 200 ms" in result.message
    assert result.critical
    result, state = evaluate(
        check="db",
        observation=Observation.fail("refused"),
        latency=0.0,
        timestamp=2.0,
        state=state,
        failure_threshold=2,
    )
    assert result.status is W
    assert result.observed is F
    assert "1 of 2 failures" in result.message
    result, state = evaluate(
        check="db",
        observation=Observation.fail("refused"),
        latency=0.0,
        timestamp=3.0,
        state=state,
        failure_threshold=2,
        success_threshold=2,
    )
    assert result.status is F
    result, state = evaluate(
        check="db",
        observation=Observation.ok("ok"),
        latency=0.0,
        timestamp=4.0,
        state=state,
        success_threshold=2,
    )
    assert result.status is F
    assert result.message.startswith("recovering: ok")


def test_evaluate_blocked_by_dependency() -> None:
    result, _ = evaluate(
        check="api",
        observation=Observation.ok("HTTP 200"),
        latency=0.01,
        timestamp=1.0,
        state=ThresholdState(),
        failing_dependencies=["database"],
    )
    assert result.status is F
    assert result.observed is P
    assert result.details["blocked_by"] == ["database"]
    assert result.details["own_status"] == "pass"
    assert result.message == "blocked: dependency database fails"


@pytest.mark.parametrize(
    ("kwargs", "status", "fragment"),
    [
        ({"status_code": 200}, P, "HTTP 200"),
        ({"status_code": 204}, P, "HTTP 204"),
        ({"status_code": 500}, F, "expected a 2xx"),
        ({"status_code": 301}, F, "expected a 2xx"),
        ({"status_code": 404, "expect_status": (404,)}, P, "HTTP 404"),
        ({"status_code": 200, "expect_status": (201, 202)}, F, "expected 201, 202"),
        ({"status_code": 200, "body": b"all ok", "body_contains": "ok"}, P, ""),
        ({"status_code": 200, "body": b"down", "body_contains": "ok"}, F, "does not contain"),
        ({"status_code": 200, "body": b"<html>", "json_path": "$.a"}, F, "not valid JSON"),
        ({"status_code": 200, "body": b'{"a": 1}', "json_path": "$.b"}, F, "missing"),
        ({"status_code": 200, "body": b'{"a": {"b": [5]}}', "json_path": "a.b[0]"}, P, ""),
        (
            {"status_code": 200, "body": b'{"s": "up"}', "json_path": "$.s", "json_equals": "up"},
            P,
            "",
        ),
        (
            {"status_code": 200, "body": b'{"s": "dn"}', "json_path": "$.s", "json_equals": "up"},
            F,
            'is "dn", expected "up"',
        ),
        ({"status_code": 200, "body": b'{"ok": false}', "json_path": "$.ok"}, F, "is false"),
    ],
)
def test_evaluate_http(kwargs: dict[str, object], status: CheckStatus, fragment: str) -> None:
    args: dict[str, object] = {"reason": "", "body": b""}
    args.update(kwargs)
    observation = evaluate_http(**args)  # type: ignore[arg-type]
    assert observation.status is status
    assert fragment in observation.message


def test_json_path() -> None:
    assert parse_json_path("$.a.b[2]['c d'][\"e\"]") == ("a", "b", 2, "c d", "e")
    assert parse_json_path("a") == ("a",)
    assert json_path_get({"a": [{"b": 1}]}, ("a", 0, "b")) == 1
    with pytest.raises(JsonPathError):
        parse_json_path("$.a[")
    with pytest.raises(KeyError):
        json_path_get({"a": []}, ("a", 0))


def test_describe_error() -> None:
    assert describe_error(ProbeError("bad answer")) == "bad answer"
    assert describe_error(ConnectionRefusedError(111, "Connection refused")) == (
        "connection refused"
    )
    outer = RuntimeError("read failed")
    outer.__cause__ = ConnectionResetError(104, "reset")
    assert describe_error(outer) == "connection reset by peer"
    assert describe_error(ValueError()) == "ValueError"

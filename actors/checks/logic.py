"""Pure check logic: thresholds, slowness, dependencies, HTTP answer evaluation, json_path.

No I/O and no event loop here; the check actor feeds probe observations through `evaluate()`.

Threshold semantics (`failure_threshold`, `success_threshold`):
- the first observation is reported as it is (there is no earlier state to hold on to);
- a passing check reports fail only after `failure_threshold` consecutive failed runs;
- a failing check reports pass (or warn) again only after `success_threshold` consecutive runs
  that did not fail. Warn counts as "did not fail".
`warn_latency` turns a passing run slower than it into warn. A check any of whose `depends_on`
checks currently reports fail reports fail itself, with `blocked_by` (the failing dependencies)
and its own outcome (`own_status`, `own_message`) in its details.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from actors.checks.errors import JsonPathError
from actors.models import CheckResult, CheckStatus

__all__ = [
    "Observation",
    "ThresholdState",
    "apply_thresholds",
    "evaluate",
    "evaluate_http",
    "json_path_get",
    "parse_json_path",
]

_MISSING = object()


@dataclass(frozen=True, slots=True)
class Observation:
    """The raw outcome of one probe run.

    `latency` overrides the run time the actor measures (e.g. the query time alone);
    `details` are shown under the check in `/api/health`.
    """

    status: CheckStatus
    message: str
    details: Mapping[str, object] = field(default_factory=dict)
    latency: float | None = None

    @classmethod
    def ok(
        cls,
        message: str,
        details: Mapping[str, object] | None = None,
        *,
        latency: float | None = None,
    ) -> Observation:
        """A passing observation."""
        return cls(CheckStatus.PASS, message, details or {}, latency)

    @classmethod
    def warn(
        cls,
        message: str,
        details: Mapping[str, object] | None = None,
        *,
        latency: float | None = None,
    ) -> Observation:
        """A warning observation."""
        return cls(CheckStatus.WARN, message, details or {}, latency)

    @classmethod
    def fail(
        cls,
        message: str,
        details: Mapping[str, object] | None = None,
        *,
        latency: float | None = None,
    ) -> Observation:
        """A failing observation."""
        return cls(CheckStatus.FAIL, message, details or {}, latency)


@dataclass(frozen=True, slots=True)
class ThresholdState:
    """What the thresholds remember between runs of one check."""

    reported: CheckStatus | None = None
    failures: int = 0
    successes: int = 0


def apply_thresholds(
    state: ThresholdState, observed: CheckStatus, failure_threshold: int, success_threshold: int
) -> ThresholdState:
    """Fold one observed status into the threshold state (see the module docstring)."""
    if observed is CheckStatus.FAIL:
        failures, successes = state.failures + 1, 0
    else:
        failures, successes = 0, state.successes + 1
    if state.reported is None:
        reported = observed
    elif observed is CheckStatus.FAIL:
        if state.reported is CheckStatus.FAIL or failures >= failure_threshold:
            reported = CheckStatus.FAIL
        else:
            reported = state.reported
    elif state.reported is CheckStatus.FAIL and successes < success_threshold:
        reported = CheckStatus.FAIL
    else:
        reported = observed
    return ThresholdState(reported=reported, failures=failures, successes=successes)


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def evaluate(
    *,
    check: str,
    observation: Observation,
    latency: float,
    timestamp: float,
    state: ThresholdState,
    failure_threshold: int = 1,
    success_threshold: int = 1,
    warn_latency: float | None = None,
    critical: bool = False,
    failing_dependencies: Sequence[str] = (),
) -> tuple[CheckResult, ThresholdState]:
    """Turn one observation into the reported `CheckResult` and the next threshold state."""
    observed = observation.status
    message = observation.message
    if (
        observed is CheckStatus.PASS
        and warn_latency is not None
        and math.isfinite(latency)
        and latency > warn_latency
    ):
        observed = CheckStatus.WARN
        message = f"{message} (slow: {_ms(latency)} ms > {_ms(warn_latency)} ms)"
    new_state = apply_thresholds(state, observed, failure_threshold, success_threshold)
    status = new_state.reported or observed
    if observed is CheckStatus.FAIL and status is not CheckStatus.FAIL:
        message = f"{message} ({new_state.failures} of {failure_threshold} failures before failing)"
    elif observed is not CheckStatus.FAIL and status is CheckStatus.FAIL:
        message = (
            f"recovering: {message} "
            f"({new_state.successes} of {success_threshold} passes before passing)"
        )
    details: Mapping[str, object] = observation.details
    if failing_dependencies:
        blocked = list(failing_dependencies)
        details = {
            **details,
            "blocked_by": blocked,
            "own_status": status.value,
            "own_message": message,
        }
        status = CheckStatus.FAIL
        message = f"blocked: dependency {', '.join(blocked)} fails"
    result = CheckResult(
        check=check,
        status=status,
        message=message,
        latency_seconds=latency,
        timestamp=timestamp,
        observed=observed,
        critical=critical,
        details=details,
    )
    return result, new_state


# -- json_path ---------------------------------------------------------------------------------

_TOKEN = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_\-]*)|\[(\d+)\]|\[\"([^\"]*)\"\]|\['([^']*)'\]")


def parse_json_path(path: str) -> tuple[str | int, ...]:
    """Parse `$.a.b[0]["c d"]` (the leading `$` and dot are optional) into keys and indexes.

    Raises:
        JsonPathError: the expression is malformed.
    """
    text = path.strip()
    if text.startswith("$"):
        text = text[1:]
    parts: list[str | int] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise JsonPathError(path, f"unexpected {text[pos:]!r}")
        name, index, dq, sq = match.groups()
        if name is not None:
            parts.append(name)
        elif index is not None:
            parts.append(int(index))
        else:
            parts.append(dq if dq is not None else sq)
        pos = match.end()
    return tuple(parts)


def json_path_get(document: object, path: Sequence[str | int]) -> object:
    """The value at `path` in `document`, or raises KeyError naming the missing step."""
    current = document
    for step in path:
        if isinstance(step, int) and isinstance(current, list):
            if step >= len(current):
                raise KeyError(step)
            current = current[step]
        elif isinstance(current, dict) and str(step) in current:
            current = current[str(step)]
        else:
            raise KeyError(step)
    return current


def _short(value: object, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def evaluate_http(
    *,
    status_code: int,
    reason: str,
    body: bytes,
    expect_status: Sequence[int] = (),
    body_contains: str | None = None,
    json_path: str | None = None,
    json_equals: object = None,
    truncated: bool = False,
) -> Observation:
    """Judge an HTTP answer against a check's expectations (empty `expect_status` = any 2xx)."""
    details: dict[str, object] = {"status_code": status_code}
    line = f"HTTP {status_code}{' ' + reason if reason else ''}"

    def _bad(message: str) -> Observation:
        return Observation(CheckStatus.FAIL, message, details)

    if expect_status:
        if status_code not in expect_status:
            expected = ", ".join(str(s) for s in expect_status)
            return _bad(f"{line}, expected {expected}")
    elif not 200 <= status_code < 300:
        return _bad(f"{line}, expected a 2xx status")
    if body_contains is not None:
        text = body.decode("utf-8", errors="replace")
        if body_contains not in text:
            where = " (in the first bytes read)" if truncated else ""
            return _bad(f"{line} but the body does not contain {body_contains!r}{where}")
    if json_path is not None:
        try:
            steps = parse_json_path(json_path)
        except JsonPathError as exc:
            return _bad(str(exc))
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return _bad(f"{line} but the body is not valid JSON")
        try:
            value = json_path_get(document, steps)
        except KeyError:
            return _bad(f"{line} but {json_path} is missing from the body")
        if json_equals is not None and value != json_equals:
            return _bad(
                f"{line} but {json_path} is {_short(value)}, expected {_short(json_equals)}"
            )
        if json_equals is None and value in (None, False):
            return _bad(f"{line} but {json_path} is {_short(value)}")
    return Observation(CheckStatus.PASS, line, details)

"""A scripted week of check runs, recorded into a real history (the browser tests and the
README's screenshots use it)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from actors.clock import FixedClock
from actors.history import HistoryConfig, HistoryRecorder, HistoryRepository
from actors.models import CheckResult, CheckStatus
from actors.state import HealthState
from actors.store import Database

P, W, F = CheckStatus.PASS, CheckStatus.WARN, CheckStatus.FAIL

NOW = 1_752_580_800.0 + 13 * 3600 + 7 * 60  # 2025-07-15T13:07:00Z
STEP = 300.0
"""Seconds between two runs of every check."""
DAYS = 8

CHECKS: dict[str, tuple[str, bool]] = {
    "website": ("Frontend", False),
    "api": ("Frontend", True),
    "database": ("Backend", True),
    "cache": ("Backend", False),
    "queue": ("Backend", False),
    "payments": ("", False),
}
"""Check -> (group, critical)."""


def outcome(name: str, at: float) -> tuple[CheckStatus, float, str]:
    """The scripted (status, latency in seconds, message) of `name` at `at`."""
    ago = NOW - at
    wave = 1 + 0.25 * math.sin(at / 5400)
    if name == "website":
        return P, 0.120 * wave, "HTTP 200 in time"
    if name == "api":
        if 10 * 3600 <= ago < 13 * 3600:
            return F, 2.0, "HTTP 503 Service Unavailable"
        if 3 * 86_400 <= ago < 3 * 86_400 + 5400:
            return F, 2.0, "connect timeout after 2s"
        return P, 0.045 * wave, "HTTP 200, JSON status ok"
    if name == "database":
        if ago < 25 * 60:
            return F, 0.002, "connection refused (10.0.4.12:5432)"
        return P, 0.004 * wave, "SELECT 1 answered"
    if name == "cache":
        if int(at // STEP) % 9 == 0:
            return W, 0.240, "PONG (slow: 240 ms > 200 ms)"
        return P, 0.0012 * wave, "PONG"
    if name == "queue":
        if 5 * 86_400 <= ago < 5 * 86_400 + 1800:
            return F, 0.010, "consumer lag 5123 > 1000"
        return P, 0.015 * wave, "lag 3"
    return P, 0.350 * wave, "provider answered"


@dataclass
class Demo:
    """The scripted history, recorded: the health state, the recorder and their clock."""

    clock: FixedClock
    health: HealthState
    recorder: HistoryRecorder
    database: Database
    groups: dict[str, str]


async def record_demo(database: Database) -> Demo:
    """Record `DAYS` days of runs (one per `STEP` per check) up to `NOW`, flushed."""
    start = NOW - DAYS * 86_400
    clock = FixedClock(start)
    repository = HistoryRepository(database)
    repository.migrate()
    recorder = HistoryRecorder(repository=repository, config=HistoryConfig(), clock=clock)
    await recorder.load()
    health = HealthState(
        checks={name: critical for name, (_, critical) in CHECKS.items()}, clock=clock
    )
    health.add_result_listener(recorder.observe)
    at = start + STEP
    while at <= NOW:
        clock.advance(at - clock.now())
        for name, (_, critical) in CHECKS.items():
            status, latency, message = outcome(name, at)
            health.publish(
                CheckResult(name, status, message, latency, at, status, critical=critical)
            )
        if int(at) % 86_400 == 0:
            await recorder.flush()
        at += STEP
    await recorder.flush()
    clock.advance(NOW + 30 - clock.now())
    groups = {name: group for name, (group, _) in CHECKS.items()}
    return Demo(clock, health, recorder, database, groups)

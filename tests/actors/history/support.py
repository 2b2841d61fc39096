"""Helpers of the history tests: a scripted run of results into a recorder."""

from __future__ import annotations

from actors.clock import FixedClock
from actors.history import HistoryConfig, HistoryRecorder, HistoryRepository
from actors.models import CheckResult, CheckStatus
from actors.store import Store


def run(
    name: str, status: CheckStatus, at: float, latency: float = 0.05, message: str = ""
) -> CheckResult:
    """One run of check `name` at `at`."""
    return CheckResult(
        check=name,
        status=status,
        message=message or f"{name} {status.value}",
        latency_seconds=latency,
        timestamp=at,
        observed=status,
    )


def open_recorder(
    database: Store, clock: FixedClock, config: HistoryConfig | None = None
) -> HistoryRecorder:
    """A recorder over `database` (migrated)."""
    repository = HistoryRepository(database)
    repository.migrate()
    return HistoryRecorder(repository=repository, config=config or HistoryConfig(), clock=clock)

"""Check history that lasts: buckets, incidents and uptime over 24 h to 90 days.

- `rollup`: the pure roll-up (buckets, incidents, uptime strips, windows);
- `repository`: every statement the history runs (`HistoryRepository`);
- `recorder`: the actor that records each run and flushes in batches (`HistoryRecorder`);
- `remote`: sharded replicas: the history of the checks another replica runs, read from the
  shared store (`RemoteHistory`);
- `sharded`: what a sharded replica's status page reads, each check where it runs
  (`ShardedHistory`);
- `config`: [history].
"""

from __future__ import annotations

from actors.history.config import HistoryConfig
from actors.history.errors import HistoryError, WindowError
from actors.history.recorder import HistoryRecorder, HistoryStatistics
from actors.history.repository import HistoryRepository, StoredResult
from actors.history.rollup import (
    SLOTS,
    WINDOWS,
    Bucket,
    Incident,
    Slot,
    Window,
    parse_window,
    uptime_ratio,
)

__all__ = [
    "SLOTS",
    "WINDOWS",
    "Bucket",
    "HistoryConfig",
    "HistoryError",
    "HistoryRecorder",
    "HistoryRepository",
    "HistoryStatistics",
    "Incident",
    "Slot",
    "StoredResult",
    "Window",
    "WindowError",
    "parse_window",
    "uptime_ratio",
]

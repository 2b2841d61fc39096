"""Persisted alert state: which instances are pending or firing, and since when.

Written on every persisted transition (an instance appears, fires, resolves or is dropped), so
after a restart firing alerts are neither re-paged (their `starts_at`, hence their notification
keys, are the same) nor forgotten (their resolution is still sent), and `duration` keeps
counting from when the condition first held (as Prometheus' ALERTS_FOR_STATE).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Protocol

from actors.rules.evaluate import Instance, Phase
from actors.store import Connection, Store, per_dialect, upsert_sql

__all__ = ["AlertStateStore", "MemoryAlertStateStore", "SqliteAlertStateStore"]


class AlertStateStore(Protocol):
    """Where the rules actor keeps instance state."""

    async def load(self) -> dict[str, dict[str, Instance]]:
        """Every stored instance, by rule id then fingerprint."""
        ...

    async def save(self, rule_id: str, upserts: Iterable[Instance], deletes: Iterable[str]) -> None:
        """Write `upserts` and remove `deletes` (fingerprints) of one rule, atomically."""
        ...


class MemoryAlertStateStore:
    """An in-process `AlertStateStore` (tests, or running without persistence)."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, Instance]] = {}

    async def load(self) -> dict[str, dict[str, Instance]]:
        return {rule: dict(insts) for rule, insts in self.data.items()}

    async def save(self, rule_id: str, upserts: Iterable[Instance], deletes: Iterable[str]) -> None:
        rule = self.data.setdefault(rule_id, {})
        for inst in upserts:
            rule[inst.fingerprint] = inst
        for fp in deletes:
            rule.pop(fp, None)
        if not rule:
            del self.data[rule_id]


_TABLE = """
    CREATE TABLE rules_alert_state (
        rule_id TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        labels TEXT NOT NULL,
        annotations TEXT NOT NULL,
        phase TEXT NOT NULL,
        active_since REAL NOT NULL,
        last_true REAL NOT NULL,
        value REAL NOT NULL,
        fired_at REAL,
        PRIMARY KEY (rule_id, fingerprint)
    );
"""
MIGRATIONS = per_dialect([_TABLE])
_COLUMNS = (
    "rule_id",
    "fingerprint",
    "labels",
    "annotations",
    "phase",
    "active_since",
    "last_true",
    "value",
    "fired_at",
)
_UPSERT = upsert_sql("rules_alert_state", _COLUMNS, ("rule_id", "fingerprint"))


def _pairs(text: str) -> tuple[tuple[str, str], ...]:
    data = json.loads(text)
    if not isinstance(data, Mapping):
        return ()
    return tuple(sorted((str(k), str(v)) for k, v in data.items()))


class SqliteAlertStateStore:
    """`AlertStateStore` in the shared store, SQLite or PostgreSQL (table `rules_alert_state`).

    Raises:
        MigrationError: the table cannot be created.
    """

    def __init__(self, *, database: Store) -> None:
        self._db = database
        database.migrate("rules", MIGRATIONS)

    async def load(self) -> dict[str, dict[str, Instance]]:
        rows = await self._db.fetchall("SELECT * FROM rules_alert_state")
        out: dict[str, dict[str, Instance]] = {}
        for row in rows:
            try:
                inst = Instance(
                    fingerprint=str(row["fingerprint"]),
                    labels=_pairs(row["labels"]),
                    phase=Phase(row["phase"]),
                    active_since=float(row["active_since"]),
                    last_true=float(row["last_true"]),
                    value=float(row["value"]),
                    annotations=_pairs(row["annotations"]),
                    fired_at=None if row["fired_at"] is None else float(row["fired_at"]),
                )
            except (ValueError, TypeError):
                continue  # a damaged row is skipped rather than stopping alerting
            out.setdefault(str(row["rule_id"]), {})[inst.fingerprint] = inst
        return out

    async def save(self, rule_id: str, upserts: Iterable[Instance], deletes: Iterable[str]) -> None:
        rows = [
            (
                rule_id,
                i.fingerprint,
                json.dumps(dict(i.labels), sort_keys=True),
                json.dumps(dict(i.annotations), sort_keys=True),
                str(i.phase),
                i.active_since,
                i.last_true,
                i.value if i.value == i.value else 0.0,
                i.fired_at,
            )
            for i in upserts
        ]
        gone = [(rule_id, fp) for fp in deletes]
        if not rows and not gone:
            return

        def work(conn: Connection) -> None:
            if rows:
                conn.executemany(_UPSERT, rows)
            if gone:
                conn.executemany(
                    "DELETE FROM rules_alert_state WHERE rule_id = ? AND fingerprint = ?", gone
                )

        await self._db.transaction(work)

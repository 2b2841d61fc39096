"""The audit log: who changed what through the API, and who failed to authenticate.

`AuditLog` is the one repository of audit entries: it writes each to the database (its own
table, migrated under the owner "audit") and logs it as one structured line (`audit` at INFO,
the entry's fields as extra fields), and reads the newest back for `GET /api/v1/audit`. Entries
past the newest `keep` (10,000) are deleted as new ones arrive, so a flood of failed logins
cannot fill the disk. Without a database (embedding, tests) entries are kept in memory (the
same bound).

`FailureLimiter` is pure: per client address, the failed authentications within a window; an
address with `limit` of them is refused (429 with `Retry-After`) until the oldest leaves the
window. At most `max_addresses` addresses are tracked (the least recent dropped first).

The access guard (`actors.web.access`) records: `silence.create`, `silence.expire`, `reload`,
`test_alert` (a write that succeeded, with the token's name and the address) and
`auth.failed` (a 401: token "none"; a 403 for a token without the scope: its name).
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from actors.clock import Clock
from actors.store.interface import per_dialect

if TYPE_CHECKING:
    from actors.store.interface import Row, Store

__all__ = ["AuditEntry", "AuditLog", "FailureLimiter"]

_MIGRATIONS = per_dialect(
    [
        """
    CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,
        action TEXT NOT NULL,
        token TEXT NOT NULL,
        address TEXT NOT NULL,
        target TEXT NOT NULL DEFAULT '',
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX audit_log_at ON audit_log (at);
    """
    ]
)
_COLUMNS = "at, action, token, address, target, detail"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audited event: when (Unix seconds), what (`action`), who (`token` name or "none",
    client `address`), on what (`target`, e.g. a silence id) and a short `detail`."""

    at: float
    action: str
    token: str
    address: str
    target: str = ""
    detail: str = ""

    def to_json(self) -> dict[str, object]:
        """The API's view of the entry."""
        return asdict(self)


class AuditLog:
    """The repository of audit entries (see the module docstring).

    Args:
        database: where entries are kept, SQLite or PostgreSQL (None: in memory).
        clock: the time of each entry.
        logger: where each entry is also logged, one structured line.
        keep: how many of the newest entries are kept.

    Raises:
        actors.store.errors.MigrationError: the table cannot be created.
    """

    def __init__(
        self,
        *,
        database: Store | None,
        clock: Clock,
        logger: logging.Logger,
        keep: int = 10_000,
    ) -> None:
        self._database = database
        self._clock = clock
        self._log = logger
        self._keep = keep
        self._memory: collections.deque[AuditEntry] = collections.deque(maxlen=keep)
        self._since_trim = 0
        if database is not None:
            database.migrate("audit", _MIGRATIONS)

    async def record(
        self,
        action: str,
        *,
        token: str | None,
        address: str | None,
        target: str = "",
        detail: str = "",
    ) -> AuditEntry:
        """Write and log one entry, timed now.

        Raises:
            actors.store.errors.QueryError: the database cannot be written (the line is logged
                first, so the event is never lost from the log).
        """
        entry = AuditEntry(
            at=self._clock.now(),
            action=action,
            token=token or "none",
            address=address or "unknown",
            target=target[:200],
            detail=detail[:500],
        )
        self._log.info(
            "audit %s", action, extra={f"audit_{k}": v for k, v in asdict(entry).items()}
        )
        if self._database is None:
            self._memory.append(entry)
            return entry
        await self._database.execute(
            f"INSERT INTO audit_log ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
            (entry.at, entry.action, entry.token, entry.address, entry.target, entry.detail),
        )
        self._since_trim += 1
        if self._since_trim >= 100:
            self._since_trim = 0
            await self._database.execute(
                "DELETE FROM audit_log WHERE id <= (SELECT MAX(id) FROM audit_log) - ?",
                (self._keep,),
            )
        return entry

    async def recent(self, limit: int = 100) -> list[AuditEntry]:
        """The newest `limit` entries, newest first.

        Raises:
            actors.store.errors.QueryError: the database cannot be read.
        """
        if self._database is None:
            return list(reversed(self._memory))[:limit]
        rows = await self._database.fetchall(
            f"SELECT {_COLUMNS} FROM audit_log ORDER BY id DESC LIMIT ?", (limit,)
        )
        return [_entry(row) for row in rows]


def _entry(row: Row) -> AuditEntry:
    return AuditEntry(
        at=float(row["at"]),
        action=str(row["action"]),
        token=str(row["token"]),
        address=str(row["address"]),
        target=str(row["target"]),
        detail=str(row["detail"]),
    )


class FailureLimiter:
    """Failed authentications per address within `window` seconds (pure; see the module
    docstring). `limit` 0 turns it off."""

    def __init__(self, *, limit: int, window: float, max_addresses: int = 10_000) -> None:
        self.limit = limit
        self.window = window
        self._max = max_addresses
        self._failures: collections.OrderedDict[str, collections.deque[float]] = (
            collections.OrderedDict()
        )

    def _recent(self, address: str, now: float) -> collections.deque[float] | None:
        times = self._failures.get(address)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[address]
            return None
        return times

    def retry_after(self, address: str | None, now: float) -> float | None:
        """Seconds until `address` may try again, or None when it may now."""
        if not self.limit or address is None:
            return None
        times = self._recent(address, now)
        if times is None or len(times) < self.limit:
            return None
        return max(times[0] + self.window - now, 1.0)

    def failed(self, address: str | None, now: float) -> None:
        """Count one failed authentication of `address`."""
        if not self.limit or address is None:
            return
        times = self._recent(address, now)
        if times is None:
            times = collections.deque(maxlen=self.limit)
            self._failures[address] = times
            while len(self._failures) > self._max:
                self._failures.popitem(last=False)
        self._failures.move_to_end(address)
        times.append(now)

    def tracked(self) -> Sequence[str]:
        """The addresses with failures in the window (oldest first)."""
        return tuple(self._failures)

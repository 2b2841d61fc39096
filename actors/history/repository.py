"""`HistoryRepository`: every statement the check history runs, and nothing else.

The recorder and the pages speak to this class only (write one batch, load what a restart needs,
read one check's buckets, results and incidents; and, for the checks another sharded replica
runs, their strips, recent buckets and open incidents), and it speaks only to the storage interface
(`actors.store.Store`: SQLite or PostgreSQL). The SQL keeps to the dialect both engines run (`?`
placeholders, `INSERT ... ON CONFLICT ... DO UPDATE`, `LIMIT`/`OFFSET`), except the read of each
check's newest run (`latest`, every heartbeat of a sharded replica), written per engine so that
it never scans the runs (`_LATEST`). The DDL is given per dialect: SQLite's tables are
`WITHOUT ROWID` (each row stored once, in its primary key's B-tree: about half the bytes of a
rowid table plus its key index), PostgreSQL's use an identity column.

Tables (owner "history"):
- `history_checks(id, name)`: a small integer per check name, so every other row carries two
  bytes instead of the name;
- `history_buckets(check_id, res, start, count, failures, lat_min, lat_sum, lat_p95, lat_max)`:
  one row per check, resolution (60 or 3600 s) and bucket start; latencies in microseconds;
- `history_results(check_id, at, status, latency, message)`: the last runs (pruned to
  `raw_results` per check);
- `history_incidents(check_id, started, ended, message)`: pass -> fail -> pass episodes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from actors.history.rollup import HOUR, MINUTE, Bucket, Incident, Window
from actors.store import Connection, Row, Store

__all__ = ["Batch", "HistoryRepository", "Loaded", "Pruning", "StoredResult", "StripRow"]

MESSAGE_LIMIT = 240
"""Characters of a run's or an incident's message that are kept."""

_STATUS_CODES = {"pass": 0, "warn": 1, "fail": 2}
_STATUS_NAMES = {code: name for name, code in _STATUS_CODES.items()}

_SQLITE = [
    """
    CREATE TABLE history_checks (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE
    );
    CREATE TABLE history_buckets (
        check_id INTEGER NOT NULL,
        res INTEGER NOT NULL,
        start INTEGER NOT NULL,
        count INTEGER NOT NULL,
        failures INTEGER NOT NULL,
        lat_min INTEGER NOT NULL,
        lat_sum INTEGER NOT NULL,
        lat_p95 INTEGER NOT NULL,
        lat_max INTEGER NOT NULL,
        PRIMARY KEY (check_id, res, start)
    ) WITHOUT ROWID;
    CREATE TABLE history_results (
        check_id INTEGER NOT NULL,
        at REAL NOT NULL,
        status INTEGER NOT NULL,
        latency INTEGER NOT NULL,
        message TEXT NOT NULL,
        PRIMARY KEY (check_id, at)
    ) WITHOUT ROWID;
    CREATE TABLE history_incidents (
        check_id INTEGER NOT NULL,
        started REAL NOT NULL,
        ended REAL,
        message TEXT NOT NULL,
        PRIMARY KEY (check_id, started)
    ) WITHOUT ROWID;
    """
]
_POSTGRESQL = [
    """
    CREATE TABLE history_checks (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name TEXT NOT NULL UNIQUE
    );
    CREATE TABLE history_buckets (
        check_id BIGINT NOT NULL,
        res INTEGER NOT NULL,
        start BIGINT NOT NULL,
        count BIGINT NOT NULL,
        failures BIGINT NOT NULL,
        lat_min BIGINT NOT NULL,
        lat_sum BIGINT NOT NULL,
        lat_p95 BIGINT NOT NULL,
        lat_max BIGINT NOT NULL,
        PRIMARY KEY (check_id, res, start)
    );
    CREATE TABLE history_results (
        check_id BIGINT NOT NULL,
        at DOUBLE PRECISION NOT NULL,
        status SMALLINT NOT NULL,
        latency BIGINT NOT NULL,
        message TEXT NOT NULL,
        PRIMARY KEY (check_id, at)
    );
    CREATE TABLE history_incidents (
        check_id BIGINT NOT NULL,
        started DOUBLE PRECISION NOT NULL,
        ended DOUBLE PRECISION,
        message TEXT NOT NULL,
        PRIMARY KEY (check_id, started)
    );
    """
]
_MIGRATIONS = {"sqlite": _SQLITE, "postgresql": _POSTGRESQL}

_UPSERT_BUCKET = (
    "INSERT INTO history_buckets (check_id, res, start, count, failures, lat_min, lat_sum,"
    " lat_p95, lat_max) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (check_id, res, start)"
    " DO UPDATE SET count = excluded.count, failures = excluded.failures,"
    " lat_min = excluded.lat_min, lat_sum = excluded.lat_sum, lat_p95 = excluded.lat_p95,"
    " lat_max = excluded.lat_max"
)
_INSERT_RESULT = (
    "INSERT INTO history_results (check_id, at, status, latency, message) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (check_id, at) DO NOTHING"
)
_UPSERT_INCIDENT = (
    "INSERT INTO history_incidents (check_id, started, ended, message) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (check_id, started) DO UPDATE SET ended = excluded.ended"
)

# Each check's newest run through the primary key (check_id, at), driven from history_checks: a
# backward index descent per check, so the cost follows the checks asked, not the history's
# depth. Written per engine so that neither planner can choose a scan of history_results, even
# before statistics exist: PostgreSQL's LATERAL subquery with LIMIT 1 can only run once per
# check (no hash join of the whole table is possible), and SQLite's CROSS JOIN keeps
# history_checks as the outer loop (without ANALYZE it otherwise scans history_results first).
# The names are one parameter (an array; a JSON list for SQLite), any number of them.
_LATEST = {
    "postgresql": (
        "SELECT c.name, r.at, r.status, r.latency, r.message FROM history_checks c"
        " CROSS JOIN LATERAL (SELECT at, status, latency, message FROM history_results"
        " WHERE check_id = c.id ORDER BY at DESC LIMIT 1) r WHERE TRUE"
    ),
    "sqlite": (
        "SELECT c.name, r.at, r.status, r.latency, r.message FROM history_checks c"
        " CROSS JOIN history_results r WHERE r.check_id = c.id AND r.at = (SELECT n.at FROM"
        " history_results n WHERE n.check_id = c.id ORDER BY n.at DESC LIMIT 1)"
    ),
}
_LATEST_OF = {
    "postgresql": " AND c.name = ANY(?)",
    "sqlite": " AND c.name IN (SELECT value FROM json_each(?))",
}
# The reads of several checks' buckets and incidents (`strips`, `buckets_since`,
# `open_incidents`), driven from history_checks so that each check's rows are one range of the
# primary key (check_id, res, start) or (check_id, started); CROSS JOIN keeps SQLite's loop
# order so (PostgreSQL plans its own). The names are the last parameter, as in `latest`.
_STRIPS_OF = (
    "SELECT c.name, b.start / ? AS n, SUM(b.count), SUM(b.failures), SUM(b.lat_sum),"
    " MAX(b.lat_max) FROM history_checks c CROSS JOIN history_buckets b"
    " WHERE b.check_id = c.id AND b.res = ? AND b.start >= ? AND b.start < ?{names}"
    " GROUP BY c.name, n"
)
_BUCKETS_OF = (
    "SELECT c.name, b.start, b.res, b.count, b.failures, b.lat_min, b.lat_sum, b.lat_p95,"
    " b.lat_max FROM history_checks c CROSS JOIN history_buckets b"
    " WHERE b.check_id = c.id AND b.res = ? AND b.start >= ?{names} ORDER BY c.name, b.start"
)
_OPEN_INCIDENTS_OF = (
    "SELECT c.name, i.started, i.message FROM history_checks c CROSS JOIN history_incidents i"
    " WHERE i.check_id = c.id AND i.ended IS NULL{names} ORDER BY i.started"
)


@dataclass(frozen=True, slots=True)
class StoredResult:
    """One run as kept: check, time, status ("pass", "warn", "fail"), latency (us), message."""

    check: str
    at: float
    status: str
    latency_us: int
    message: str


@dataclass(frozen=True, slots=True)
class Pruning:
    """What a prune removes: buckets starting before the two cut-offs, incidents that ended
    before theirs, and each check's runs beyond the newest `keep_results`."""

    minutes_before: float
    hours_before: float
    incidents_before: float
    keep_results: int


@dataclass(slots=True)
class Batch:
    """Writes gathered since the last flush: the current state of each touched bucket (keyed,
    so a bucket written ten times is one row), the new runs, incidents opened or closed."""

    buckets: dict[tuple[str, int, int], Bucket] = field(default_factory=dict)
    results: list[StoredResult] = field(default_factory=list)
    incidents: dict[tuple[str, float], Incident] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.buckets) + len(self.results) + len(self.incidents)


@dataclass(frozen=True, slots=True)
class StripRow:
    """One slot of a window's strip as summed by the database on load."""

    check: str
    window: str
    start: int
    count: int
    failures: int
    lat_sum: int
    lat_max: int


@dataclass(frozen=True, slots=True)
class Loaded:
    """What a restart continues from: the buckets still open at `now` (per check, minute and
    hour), the incidents still open, and the strips of every window."""

    open_buckets: Mapping[str, tuple[Bucket, ...]]
    open_incidents: Mapping[str, Incident]
    strips: tuple[StripRow, ...]


def _bucket(row: Row, offset: int = 0) -> Bucket:
    values = [int(row[i]) for i in range(offset, offset + 8)]
    return Bucket(*values)


class HistoryRepository:
    """The history's tables in one database (see the module docstring).

    Every async method raises `actors.store.errors.QueryError` when a statement fails and
    `DatabaseClosedError` after the database is closed.
    """

    def __init__(self, database: Store) -> None:
        self._db = database
        self._ids: dict[str, int] = {}

    def migrate(self) -> None:
        """Create or update the tables (synchronous, once at start).

        Raises:
            actors.store.errors.MigrationError: a script failed.
        """
        self._db.migrate("history", _MIGRATIONS)

    async def write(self, batch: Batch, pruning: Pruning | None = None) -> None:
        """Write `batch` (and prune, when given) in one transaction."""
        buckets = list(batch.buckets.items())
        results = list(batch.results)
        incidents = list(batch.incidents.values())
        names = {key[0] for key, _ in buckets} | {r.check for r in results}
        names |= {i.check for i in incidents}

        known = dict(self._ids)

        def work(conn: Connection) -> dict[str, int]:
            ids = self._resolve(conn, names, known)
            conn.executemany(
                _UPSERT_BUCKET,
                [
                    (
                        ids[name],
                        b.resolution,
                        b.start,
                        b.count,
                        b.failures,
                        b.lat_min,
                        b.lat_sum,
                        b.lat_p95,
                        b.lat_max,
                    )
                    for (name, _, _), b in buckets
                ],
            )
            conn.executemany(
                _INSERT_RESULT,
                [
                    (
                        ids[r.check],
                        r.at,
                        _STATUS_CODES.get(r.status, 2),
                        r.latency_us,
                        r.message[:MESSAGE_LIMIT],
                    )
                    for r in results
                ],
            )
            conn.executemany(
                _UPSERT_INCIDENT,
                [(ids[i.check], i.started, i.ended, i.message[:MESSAGE_LIMIT]) for i in incidents],
            )
            if pruning is not None:
                self._prune(conn, pruning, ids)
            return ids

        self._ids.update(await self._db.transaction(work))

    @staticmethod
    def _resolve(
        conn: Connection, names: Iterable[str], known: Mapping[str, int]
    ) -> dict[str, int]:
        ids = dict(known)
        missing = [name for name in names if name not in ids]
        if missing:
            conn.executemany(
                "INSERT INTO history_checks (name) VALUES (?) ON CONFLICT (name) DO NOTHING",
                [(name,) for name in missing],
            )
            for row in conn.execute("SELECT id, name FROM history_checks").fetchall():
                ids[str(row[1])] = int(row[0])
        return ids

    def _prune(self, conn: Connection, pruning: Pruning, ids: Mapping[str, int]) -> None:
        conn.execute(
            "DELETE FROM history_buckets WHERE res = ? AND start < ?",
            (MINUTE, int(pruning.minutes_before)),
        )
        conn.execute(
            "DELETE FROM history_buckets WHERE res = ? AND start < ?",
            (HOUR, int(pruning.hours_before)),
        )
        conn.execute(
            "DELETE FROM history_incidents WHERE ended IS NOT NULL AND ended < ?",
            (pruning.incidents_before,),
        )
        every = [int(row[0]) for row in conn.execute("SELECT id FROM history_checks").fetchall()]
        conn.executemany(
            "DELETE FROM history_results WHERE check_id = ? AND at <= (SELECT at FROM"
            " history_results WHERE check_id = ? ORDER BY at DESC LIMIT 1 OFFSET ?)",
            [(check_id, check_id, pruning.keep_results) for check_id in every],
        )

    async def load(self, *, now: float, windows: Iterable[Window]) -> Loaded:
        """What a restart needs at `now` (see `Loaded`)."""
        rows = await self._db.fetchall("SELECT id, name FROM history_checks")
        self._ids.update({str(row[1]): int(row[0]) for row in rows})
        names = {check_id: name for name, check_id in self._ids.items()}
        minute = int(now // MINUTE) * MINUTE
        hour = int(now // HOUR) * HOUR
        open_rows = await self._db.fetchall(
            "SELECT check_id, start, res, count, failures, lat_min, lat_sum, lat_p95, lat_max"
            " FROM history_buckets WHERE (res = ? AND start = ?) OR (res = ? AND start = ?)",
            (MINUTE, minute, HOUR, hour),
        )
        open_buckets: dict[str, tuple[Bucket, ...]] = {}
        for row in open_rows:
            name = names.get(int(row[0]))
            if name is not None:
                open_buckets[name] = (*open_buckets.get(name, ()), _bucket(row, 1))
        incident_rows = await self._db.fetchall(
            "SELECT check_id, started, message FROM history_incidents WHERE ended IS NULL"
        )
        incidents: dict[str, Incident] = {}
        for row in incident_rows:
            name = names.get(int(row[0]))
            if name is not None:
                incidents[name] = Incident(name, float(row[1]), None, str(row[2]))
        strips: list[StripRow] = []
        for window in windows:
            since = now - window.seconds
            rows = await self._db.fetchall(
                "SELECT check_id, start / ? AS n, SUM(count), SUM(failures), SUM(lat_sum),"
                " MAX(lat_max) FROM history_buckets WHERE res = ? AND start >= ?"
                " GROUP BY check_id, n",
                (window.slot, window.resolution, int(since)),
            )
            for row in rows:
                name = names.get(int(row[0]))
                if name is not None:
                    strips.append(
                        StripRow(
                            name,
                            window.name,
                            int(row[1]) * window.slot,
                            int(row[2]),
                            int(row[3]),
                            int(row[4]),
                            int(row[5]),
                        )
                    )
        return Loaded(open_buckets, incidents, tuple(strips))

    async def load_checks(
        self, checks: Iterable[str], *, since: float, now: float, windows: Iterable[Window]
    ) -> Loaded:
        """What `load` gives, for `checks` only: as their open buckets, every bucket of theirs
        (of both resolutions) that holds `since` or starts after it, oldest first; their open
        incidents; their strips over `windows` at `now` (the open buckets included). What a
        replica continues from when it takes these checks over from another one, whose runs
        may have gone on into buckets after `since` (three statements plus one per window,
        whatever the number of checks)."""
        names = list(dict.fromkeys(checks))
        if not names:
            return Loaded({}, {}, ())
        open_buckets: dict[str, tuple[Bucket, ...]] = {}
        for resolution in (MINUTE, HOUR):
            found = await self.buckets_since(names, resolution, since)
            for name, buckets in found.items():
                open_buckets[name] = (*open_buckets.get(name, ()), *buckets)
        incidents = await self.open_incidents(names)
        before = max(now, since) + HOUR
        strips = await self.strips(names, now=now, windows=windows, before=before)
        return Loaded(open_buckets, incidents, tuple(strips))

    async def buckets(self, check: str, resolution: int, since: float) -> list[Bucket]:
        """`check`'s buckets of `resolution` starting at or after `since`, oldest first."""
        check_id = await self._id(check)
        if check_id is None:
            return []
        rows = await self._db.fetchall(
            "SELECT start, res, count, failures, lat_min, lat_sum, lat_p95, lat_max"
            " FROM history_buckets WHERE check_id = ? AND res = ? AND start >= ? ORDER BY start",
            (check_id, resolution, int(since // resolution) * resolution),
        )
        return [_bucket(row) for row in rows]

    async def results(self, check: str, limit: int) -> list[StoredResult]:
        """`check`'s newest `limit` runs, newest first."""
        check_id = await self._id(check)
        if check_id is None:
            return []
        rows = await self._db.fetchall(
            "SELECT at, status, latency, message FROM history_results WHERE check_id = ?"
            " ORDER BY at DESC LIMIT ?",
            (check_id, limit),
        )
        return [
            StoredResult(
                check, float(r[0]), _STATUS_NAMES.get(int(r[1]), "fail"), int(r[2]), str(r[3])
            )
            for r in rows
        ]

    async def latest(self, checks: Iterable[str] | None = None) -> dict[str, StoredResult]:
        """The newest stored run of each of `checks` (None: of every check), by check name; a
        check with no stored run is absent. One statement, whatever the number of checks.

        Its cost grows with the checks asked, not with the history: each check's newest run is
        one descent of `history_results`' primary key (check_id, at), never a scan of the table
        (sharded replicas call this every heartbeat; see `_LATEST`).
        """
        names = None if checks is None else list(dict.fromkeys(checks))
        if names == []:
            return {}
        dialect = self._db.dialect
        sql = _LATEST[dialect]
        params: tuple[object, ...] = ()
        if names is not None:
            sql += _LATEST_OF[dialect]
            params = (names if dialect == "postgresql" else json.dumps(names),)
        rows = await self._db.fetchall(sql, params)
        return {
            str(r[0]): StoredResult(
                str(r[0]), float(r[1]), _STATUS_NAMES.get(int(r[2]), "fail"), int(r[3]), str(r[4])
            )
            for r in rows
        }

    def _names(self, checks: Iterable[str]) -> tuple[str, tuple[object, ...]] | None:
        """The filter on check names of the `*_OF` statements and its parameter (None: no
        names asked)."""
        names = list(dict.fromkeys(checks))
        if not names:
            return None
        dialect = self._db.dialect
        return _LATEST_OF[dialect], (names if dialect == "postgresql" else json.dumps(names),)

    async def strips(
        self, checks: Iterable[str], *, now: float, windows: Iterable[Window], before: float
    ) -> list[StripRow]:
        """The slots of `checks`' strips over `windows` at `now` (as `load` sums them), from
        the buckets that start before `before` rounded down to each window's resolution. One
        statement per window, whatever the number of checks; a check with no bucket there has
        no row."""
        names = self._names(checks)
        if names is None:
            return []
        where, params = names
        strips: list[StripRow] = []
        for window in windows:
            resolution = window.resolution
            rows = await self._db.fetchall(
                _STRIPS_OF.format(names=where),
                (
                    window.slot,
                    resolution,
                    int(now - window.seconds),
                    int(before // resolution) * resolution,
                    *params,
                ),
            )
            strips.extend(
                StripRow(
                    str(row[0]),
                    window.name,
                    int(row[1]) * window.slot,
                    int(row[2]),
                    int(row[3]),
                    int(row[4]),
                    int(row[5]),
                )
                for row in rows
            )
        return strips

    async def buckets_since(
        self, checks: Iterable[str], resolution: int, since: float
    ) -> dict[str, list[Bucket]]:
        """The buckets of `resolution` of each of `checks` that start at or after `since`
        (rounded down to `resolution`), oldest first, by check name; a check with none is
        absent. One statement, whatever the number of checks: each check's rows are one range
        of the primary key, so the cost follows the buckets returned, not the history."""
        names = self._names(checks)
        if names is None:
            return {}
        where, params = names
        rows = await self._db.fetchall(
            _BUCKETS_OF.format(names=where),
            (resolution, int(since // resolution) * resolution, *params),
        )
        found: dict[str, list[Bucket]] = {}
        for row in rows:
            found.setdefault(str(row[0]), []).append(_bucket(row, 1))
        return found

    async def open_incidents(self, checks: Iterable[str]) -> dict[str, Incident]:
        """The incident going on now of each of `checks` that has one, by check name (the
        newest, should a check have several open)."""
        names = self._names(checks)
        if names is None:
            return {}
        where, params = names
        rows = await self._db.fetchall(_OPEN_INCIDENTS_OF.format(names=where), params)
        return {str(r[0]): Incident(str(r[0]), float(r[1]), None, str(r[2])) for r in rows}

    async def incidents(self, check: str, since: float) -> list[Incident]:
        """`check`'s incidents still open or ended after `since`, newest first."""
        check_id = await self._id(check)
        if check_id is None:
            return []
        rows = await self._db.fetchall(
            "SELECT started, ended, message FROM history_incidents WHERE check_id = ?"
            " AND (ended IS NULL OR ended >= ?) ORDER BY started DESC",
            (check_id, since),
        )
        return [
            Incident(check, float(r[0]), None if r[1] is None else float(r[1]), str(r[2]))
            for r in rows
        ]

    async def _id(self, check: str) -> int | None:
        check_id = self._ids.get(check)
        if check_id is None:
            row = await self._db.fetchone("SELECT id FROM history_checks WHERE name = ?", (check,))
            if row is None:
                return None
            check_id = self._ids[check] = int(row[0])
        return check_id

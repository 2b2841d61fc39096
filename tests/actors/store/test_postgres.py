"""What only the PostgreSQL store does: migrations under an advisory lock, a bounded pool that
heals after its connections are killed, a dedicated connection that never queues behind the
pool, clear errors for a bad or unreachable URL."""

from __future__ import annotations

import socket
import threading
from functools import partial

import psycopg
import pytest
import trio

from actors.store import (
    Connection,
    DatabaseClosedError,
    DatabaseOpenError,
    QueryError,
    dedicated,
    open_store,
)
from actors.store.config import StorageConfig, redact_url
from actors.store.postgres import PostgresDatabase, to_pyformat
from tests.postgres import temporary_database

MIGRATIONS = ["CREATE TABLE t (x TEXT NOT NULL);", "ALTER TABLE t ADD COLUMN n INTEGER;"]


def test_url_redaction_and_placeholders() -> None:
    assert redact_url("postgresql://u:secret@db:5432/m") == "postgresql://u:***@db:5432/m"
    assert redact_url("postgresql://u@db/m") == "postgresql://u@db/m"
    assert to_pyformat("SELECT ? WHERE a LIKE '5%'") == "SELECT %s WHERE a LIKE '5%%'"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_or_malformed_url_is_a_clear_open_error() -> None:
    url = f"postgresql://monitor:hunter2@127.0.0.1:{_free_port()}/monitor"
    with pytest.raises(DatabaseOpenError) as caught:
        PostgresDatabase(url, connect_timeout=2)
    assert "hunter2" not in str(caught.value)
    assert "127.0.0.1" in str(caught.value)
    with pytest.raises(DatabaseOpenError, match="invalid URL"):
        PostgresDatabase("postgresql://x/?nonsense_option=1")


def test_open_store_picks_the_engine_from_the_config(tmp_path: object) -> None:
    with temporary_database() as url:
        store = open_store(StorageConfig.model_validate({"url": url}))
        try:
            assert store.dialect == "postgresql"
            assert store.location == url
        finally:
            store.close()


def test_replicas_starting_together_migrate_once() -> None:
    with temporary_database() as url:
        stores = [PostgresDatabase(url) for _ in range(4)]
        results: list[int] = []
        threads = [
            threading.Thread(target=lambda s=s: results.append(s.migrate("a", MIGRATIONS)))
            for s in stores
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results == [2, 2, 2, 2]
        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
        assert rows == [(1,), (2,)]
        for store in stores:
            store.close()


async def test_pool_is_bounded_and_heals_after_its_connections_are_killed() -> None:
    with temporary_database() as url:
        store = PostgresDatabase(url, pool_size=2)
        store.migrate("a", MIGRATIONS)
        peak = 0

        async def count() -> None:
            nonlocal peak
            row = await store.fetchone(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND application_name = 'blipee-monitor'"
            )
            assert row is not None
            peak = max(peak, int(row[0]))
            await store.execute("SELECT pg_sleep(0.05)")

        async with trio.open_nursery() as nursery:
            for _ in range(8):
                nursery.start_soon(count)
        assert 1 <= peak <= 2
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        # The killed connections fail their next statement, then are replaced.
        failures = 0
        for _ in range(4):
            try:
                await store.execute("INSERT INTO t (x) VALUES (?)", ("after",))
            except QueryError:
                failures += 1
        assert failures <= 2
        row = await store.fetchone("SELECT COUNT(*) FROM t")
        assert row is not None
        assert int(row[0]) == 4 - failures
        store.close()
        with pytest.raises(DatabaseClosedError):
            await store.execute("SELECT 1")


async def test_a_dedicated_connection_runs_while_every_pooled_one_is_held() -> None:
    with temporary_database() as url:
        store = PostgresDatabase(url, pool_size=2, application_name="pool")
        store.migrate("a", MIGRATIONS)
        beat = dedicated(store, "heartbeat")
        assert beat is not store
        release = threading.Event()
        held = 0

        def hold(conn: Connection) -> None:
            nonlocal held
            conn.execute("INSERT INTO t (x) VALUES (?)", ("held",))
            held += 1
            release.wait(30)

        async with trio.open_nursery() as nursery:
            for _ in range(2):  # both of the pool's slots, in long transactions
                nursery.start_soon(store.transaction, hold)
            while held < 2:
                await trio.sleep(0.01)
            with trio.move_on_after(0.3) as waited:
                await store.execute("INSERT INTO t (x) VALUES (?)", ("queued",))
            assert waited.cancelled_caught  # the pool's statements queue behind them ...
            with trio.fail_after(10):  # ... the dedicated connection's do not
                assert await beat.execute("INSERT INTO t (x) VALUES (?)", ("beat",)) == 1
                row = await beat.fetchone(
                    "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()"
                )
            assert row is not None
            assert row[0] == "pool heartbeat"
            release.set()
        rows = await store.fetchall("SELECT x FROM t ORDER BY x")
        assert [r[0] for r in rows] == ["beat", "held", "held"]
        store.close()  # closes the dedicated store too
        with pytest.raises(DatabaseClosedError):
            await beat.execute("SELECT 1")
        with pytest.raises(DatabaseClosedError):
            store.dedicated("late")


async def test_statements_run_in_threads_of_the_store_own() -> None:
    limiter = trio.to_thread.current_default_thread_limiter()  # this test's run's own
    limiter.total_tokens = 1
    release = threading.Event()
    with temporary_database() as url:
        store = PostgresDatabase(url, pool_size=1)
        try:
            async with trio.open_nursery() as nursery:
                # Another blocking call holds every default worker thread.
                nursery.start_soon(partial(trio.to_thread.run_sync, release.wait, 30))
                try:
                    while limiter.borrowed_tokens < 1:
                        await trio.sleep(0.01)
                    with trio.fail_after(10):
                        row = await store.fetchone("SELECT 1")
                    assert row is not None
                finally:
                    release.set()
        finally:
            release.set()
            store.close()

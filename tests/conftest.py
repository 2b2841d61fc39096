"""Fixtures shared by the whole suite.

`stores`: a factory of `actors.store.Store` objects on one database, once on SQLite and once on
PostgreSQL (each test in its own database, dropped after), so every test of what persists runs
against both engines. `stores.open()` opens another connection to the same data (a second
process, or a restart); everything opened is closed after the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.store import Database, Store
from tests.postgres import temporary_database


class Stores:
    """Opens stores on one database of one engine."""

    def __init__(self, engine: str, *, path: Path | None = None, url: str | None = None) -> None:
        self.engine = engine
        self.path = path
        self.url = url
        self._opened: list[Store] = []

    def open(self, *, offload: bool = True) -> Store:
        """A new store (its own connections) on this test's database; `offload=False` runs
        statements on the trio thread (tests on a virtual clock that jumps while threads work)."""
        store: Store
        if self.url is not None:
            from actors.store.postgres import PostgresDatabase

            store = PostgresDatabase(self.url, pool_size=2, offload=offload)
        else:
            assert self.path is not None
            store = Database(self.path, synchronous="NORMAL", offload=offload)
        self._opened.append(store)
        return store

    def close(self) -> None:
        for store in self._opened:
            store.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    if request.param == "sqlite":
        factory = Stores("sqlite", path=tmp_path / "monitor.db")
        try:
            yield factory
        finally:
            factory.close()
        return
    with temporary_database() as url:
        factory = Stores("postgresql", url=url)
        try:
            yield factory
        finally:
            factory.close()

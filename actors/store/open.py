"""Open the store the configuration names."""

from __future__ import annotations

from actors.store.config import StorageConfig
from actors.store.database import Database
from actors.store.interface import Store

__all__ = ["open_store"]


def open_store(config: StorageConfig, *, application_name: str = "blipee-monitor") -> Store:
    """The PostgreSQL store when `url` is set, else the SQLite file at `path`.

    Raises:
        DatabaseOpenError: the database cannot be opened or reached.
    """
    if config.url is not None:
        # Imported here: psycopg and libpq cost ~8 MB of RSS a SQLite process does without.
        from actors.store.postgres import PostgresDatabase

        return PostgresDatabase(config.url.get_secret_value(), application_name=application_name)
    return Database(config.path)

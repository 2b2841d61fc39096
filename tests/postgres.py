"""The local PostgreSQL (127.0.0.1:5432, user postgres, trust auth) for tests.

Each test gets its own database (`temporary_database`), created from the `test` database and
dropped after, so tests never see each other's rows. The server missing is a skip, except under
CI=true where it is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

__all__ = ["ADMIN_URL", "require_postgres", "temporary_database"]

SERVER = "postgresql://postgres@127.0.0.1:5432"
ADMIN_URL = f"{SERVER}/test"


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {ADMIN_URL} is not reachable (required under CI): {exc}")
        pytest.skip(f"PostgreSQL at {ADMIN_URL} is not reachable")


def require_postgres() -> None:
    """Skip (fail under CI=true) unless the local PostgreSQL answers."""
    _admin().close()


@contextmanager
def temporary_database() -> Iterator[str]:
    """Create an empty database, yield its URL, drop it (and its connections) after."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    with _admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    try:
        yield f"{SERVER}/{name}"
    finally:
        with _admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())

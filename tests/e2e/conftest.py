"""Fixtures the acceptance tests share: the peers a monitor checks and notifies, and a database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.harness import HttpPeer
from tests.postgres import temporary_database


@pytest.fixture
def target() -> Iterator[HttpPeer]:
    """An HTTP server that `http` checks probe (200 until the test switches it)."""
    with HttpPeer() as peer:
        yield peer


@pytest.fixture
def receiver() -> Iterator[HttpPeer]:
    """An HTTP server that receives webhook notifications."""
    with HttpPeer() as peer:
        yield peer


@pytest.fixture
def database() -> Iterator[str]:
    """The URL of a PostgreSQL database made for the test and dropped after it."""
    with temporary_database() as url:
        yield url

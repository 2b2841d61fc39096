"""The composition root with replicas: the local notification spool is opened where
`[storage] spool_path` says and replayed by the `spool` actor; a spool file that cannot be
opened is logged and the replica runs without it (notifications then wait in memory)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.app import App
from supervisor.config import parse_config
from tests.postgres import temporary_database

CONFIG = """
[storage]
url = "{url}"
spool_path = "{spool}"

[cluster]
replica = "r1"
"""


@pytest.fixture
def url() -> Iterator[str]:
    with temporary_database() as made:
        yield made


def _app(url: str, spool: Path) -> App:
    return App(parse_config(CONFIG.format(url=url, spool=spool)), env={}, serve_http=False)


def _children(app: App) -> list[str]:
    return [child.id for child in app.root.which_children()]


def test_a_replica_opens_its_spool_and_runs_the_spool_actor(url: str, tmp_path: Path) -> None:
    app = _app(url, tmp_path / "spool" / "r1.db")
    try:
        assert app.spool is not None
        assert app.spool.location == str(tmp_path / "spool" / "r1.db")
        assert "spool" in _children(app)
    finally:
        app.database.close()
        if app.spool is not None:
            app.spool.close()


def test_a_spool_that_cannot_be_opened_is_logged_and_left_out(
    url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    app = _app(url, blocker / "spool.db")
    try:
        assert app.spool is None
        assert "spool" not in _children(app)
        assert "the notification spool" in caplog.text
        assert "cannot be opened" in caplog.text
    finally:
        app.database.close()

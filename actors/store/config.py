"""Configuration of the SQLite store ([storage])."""

from __future__ import annotations

from actors.configtypes import ConfigModel

__all__ = ["StorageConfig"]


class StorageConfig(ConfigModel):
    """[storage]: where alert state, silences, the notification outbox and history live."""

    path: str = "data/monitor.db"

"""Configuration of the store ([storage]): a SQLite file (default) or a PostgreSQL URL."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, model_validator

from actors.configtypes import ConfigModel, Secret

__all__ = ["StorageConfig", "redact_url"]


def redact_url(url: str) -> str:
    """`url` with its password replaced by `***` (for logs and messages)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username or ''}:***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class StorageConfig(ConfigModel):
    """[storage]: where alert state, silences, the notification outbox and history live.

    `path` (a SQLite file, one process) or `url` (PostgreSQL, shared by any number of
    replicas), not both.
    """

    path: str = "data/monitor.db"
    url: Secret | None = None
    """postgresql://user:password@host:port/dbname; a secret (it usually holds a password)."""
    spool_path: str = "data/spool.db"
    """With `url`: this replica's own SQLite file, where notifications that cannot be queued
    while PostgreSQL is unreachable wait (docs/high-availability.md). One per replica."""
    spool_limit: int = Field(default=10000, ge=1)
    """The most notifications the spool holds; beyond it they wait in memory."""

    @model_validator(mode="after")
    def _one_engine(self) -> StorageConfig:
        if self.url is not None:
            if "path" in self.model_fields_set:
                raise ValueError(
                    "set either path (SQLite) or url (PostgreSQL), not both: path and url"
                )
            scheme = self.url.get_secret_value().split("://", 1)[0]
            if scheme not in ("postgresql", "postgres"):
                raise ValueError("url must be a PostgreSQL URL: postgresql://user@host:5432/db")
        return self

    def location(self) -> str:
        """Where state lives, printable: the SQLite path, or the URL without its password."""
        if self.url is None:
            return self.path
        return redact_url(self.url.get_secret_value())

    def passwords(self) -> frozenset[str]:
        """The password inside `url`, if any (kept out of logs on its own, too)."""
        if self.url is None:
            return frozenset()
        try:
            password = urlsplit(self.url.get_secret_value()).password
        except ValueError:
            return frozenset()
        return frozenset({password}) if password else frozenset()

    @property
    def shared(self) -> bool:
        """Whether state lives in PostgreSQL (replicas possible)."""
        return self.url is not None

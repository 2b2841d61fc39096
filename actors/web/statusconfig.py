"""Configuration of the status page ([status_page])."""

from __future__ import annotations

from pydantic import Field

from actors.configtypes import ConfigModel

__all__ = ["StatusPageConfig"]


class StatusPageConfig(ConfigModel):
    """[status_page]: what `/`, `/checks/{name}` and the badges show, and to whom.

    `public = true` makes the page, the check pages, the badges and the uptime API a public
    view: check names, status, uptime and latency only; no messages, addresses, alerts,
    silences or supervision tree. `hide` lists checks left out of every one of them (a badge
    or uptime of a hidden check answers 404). `title` (default: the service name) and
    `description` head the page.
    """

    public: bool = False
    title: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=2000)
    hide: tuple[str, ...] = ()

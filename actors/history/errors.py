"""Exceptions of the check history.

HistoryError            every error raised by actors.history
└── WindowError         a window name that is not one of 24h, 7d, 30d, 90d (name, choices)

Storage failures surface as `actors.store.errors.StoreError` (the recorder logs them and keeps
its batch for the next flush).
"""

from __future__ import annotations

__all__ = ["HistoryError", "WindowError"]


class HistoryError(Exception):
    """Base of every error raised by `actors.history`."""


class WindowError(HistoryError, ValueError):
    """A window name that is not known."""

    def __init__(self, name: str, choices: tuple[str, ...]) -> None:
        self.name = name
        self.choices = choices
        super().__init__(f"unknown window {name!r}; use one of {', '.join(choices)}")

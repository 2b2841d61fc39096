"""Errors of the routing package.

RoutingError
├── InvalidMatcher      a matcher string or set cannot be used
├── InvalidSilence      a silence is malformed (no matcher, every matcher matches "", times)
├── SilenceNotFound     no silence with that id
├── LimitExceeded       a request goes beyond a limit of the API (actors.routing.limits)
├── InvalidCron         a cron expression cannot be parsed
└── InvalidAlertmanagerConfig  an alertmanager.yml to import cannot be read (with its YAML path)
"""

from __future__ import annotations

__all__ = [
    "InvalidAlertmanagerConfig",
    "InvalidCron",
    "InvalidMatcher",
    "InvalidSilence",
    "LimitExceeded",
    "RoutingError",
    "SilenceNotFound",
]


class RoutingError(Exception):
    """Base of every routing error; `str()` is a message fit for users."""


class InvalidMatcher(RoutingError):
    """A matcher is not `label OP value` or its regular expression does not compile."""

    def __init__(self, text: str, reason: str) -> None:
        self.text = text
        self.reason = reason
        prefix = f"invalid matcher {text!r}"
        # A reason that already names the matcher (split_matcher's syntax error) is the message.
        super().__init__(reason if reason.startswith(prefix) else f"{prefix}: {reason}")


class InvalidSilence(RoutingError):
    """A silence cannot be created as given."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"invalid silence: {reason}")


class SilenceNotFound(RoutingError):
    """No silence has the given id."""

    def __init__(self, silence_id: str) -> None:
        self.silence_id = silence_id
        super().__init__(f"no silence with id {silence_id!r}")


class LimitExceeded(RoutingError):
    """A request goes beyond one of the limits of `actors.routing.limits`; `str()` names it."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class InvalidCron(RoutingError):
    """A cron expression is not 5 valid fields."""

    def __init__(self, text: str, reason: str) -> None:
        self.text = text
        self.reason = reason
        super().__init__(f"invalid cron expression {text!r}: {reason}")


class InvalidAlertmanagerConfig(RoutingError):
    """An alertmanager.yml to import is not one we can read; `path` is the YAML path of the
    problem (e.g. `route.routes[1].receiver`), empty for the whole document."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}" if path else reason)

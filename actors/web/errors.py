"""Exceptions of the web package.

WebError               base
└── ServerStartError   a listener could not be started (bad address, port in use, TLS files)
"""

from __future__ import annotations

__all__ = ["ServerStartError", "WebError"]


class WebError(Exception):
    """Base of the web package's exceptions."""


class ServerStartError(WebError):
    """A listener could not start; the message names the address and the reason."""

    def __init__(self, listen: str, reason: str) -> None:
        super().__init__(f"cannot listen on {listen}: {reason}")
        self.listen = listen
        self.reason = reason

"""Exceptions of the checks package.

    CheckError                  base of everything raised here
    ├── ProbeError              a probe saw a bad answer (the message is shown to users)
    └── JsonPathError           a json_path expression cannot be parsed

A probe failing is not an exception for the check actor: it turns every `Exception` raised by a
probe into a failing result whose message is `describe_error(exc)`.
"""

from __future__ import annotations

import re
import socket
import ssl

__all__ = ["CheckError", "JsonPathError", "ProbeError", "describe_error"]


class CheckError(Exception):
    """Base of the checks package's exceptions."""


class ProbeError(CheckError):
    """A probe got an answer that does not meet the expectations; `str()` is the user message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class JsonPathError(CheckError):
    """A json_path expression is malformed."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"invalid json_path {path!r}: {reason}")
        self.path = path
        self.reason = reason


_SSL_SUFFIX = re.compile(r"\s*\(_ssl\.c:\d+\)")
_ERRNO_PREFIX = re.compile(r"^\[Errno -?\d+\]\s*")


def _clean(text: str) -> str:
    text = _SSL_SUFFIX.sub("", text)
    return _ERRNO_PREFIX.sub("", text).strip()


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception, its causes/contexts and (for groups) their members, depth first."""
    out: list[BaseException] = []
    seen: set[int] = set()
    stack = [exc]
    while stack and len(out) < 16:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        out.append(current)
        nested = current.__cause__ or current.__context__
        if nested is not None:
            stack.append(nested)
        if isinstance(current, BaseExceptionGroup):
            stack.extend(reversed(current.exceptions))
    return out


def describe_error(exc: BaseException) -> str:
    """A one-line, user-readable description of why a probe failed (no traceback)."""
    if isinstance(exc, ProbeError):
        return exc.message
    chain = _chain(exc)
    for item in chain:
        if isinstance(item, ProbeError):
            return item.message
        if isinstance(item, ConnectionRefusedError):
            return "connection refused"
        if isinstance(item, ConnectionResetError):
            return "connection reset by peer"
        if isinstance(item, socket.gaierror):
            return f"cannot resolve host: {_clean(str(item))}"
        if isinstance(item, ssl.SSLCertVerificationError):
            return _clean(item.verify_message or str(item)).join(
                ("TLS certificate verify failed: ", "")
            )
    parts: list[str] = []
    for item in chain:
        if isinstance(item, BaseExceptionGroup):
            continue
        text = _clean(str(item))
        if text and all(text not in p for p in parts):
            parts.append(text)
        if len(parts) == 2:
            break
    if not parts:
        return type(exc).__name__
    return f"{type(exc).__name__}: {'; '.join(parts)}"

"""Structured logs: one line per event, JSON lines or logfmt, with the actor's name.

Actors log through `logging.getLogger("blipee.<actor>")` (the composition root hands each actor
its logger); structured fields go in `extra={...}`. Every line carries `ts`, `level`, `actor`
(the logger name without the `blipee.` prefix), `msg` and the extra fields.

Secrets never reach a line: a `pydantic.SecretStr` renders as `**********`, and the value of any
field whose name looks like a secret (token, password, secret, key, dsn, webhook_url, ...) is
replaced by `<redacted>`. The HTTP client libraries' loggers (`QUIET_LOGGERS`: httpx writes
"HTTP Request: POST <full url>" at INFO for every request, httpcore its connection details at
DEBUG) are held at WARNING whatever the level: a channel's URL is a secret (Slack and webhook
URLs carry their token in the path).
"""

from __future__ import annotations

import json
import logging
import math
import re
import sys
import time
from typing import Any, Literal, TextIO

from pydantic import SecretStr

__all__ = [
    "QUIET_LOGGERS",
    "ROOT_LOGGER",
    "JsonFormatter",
    "LogfmtFormatter",
    "configure_logging",
    "logger_for",
]

ROOT_LOGGER = "blipee"
QUIET_LOGGERS = ("httpx", "httpcore")
"""Library loggers that name request URLs below WARNING; `configure_logging` sets them to it."""

_SECRET_FIELD = re.compile(
    r"(^|_)(token|password|passwd|secret|key|dsn|webhook_url|routing_key|api_key|authorization)$",
    re.IGNORECASE,
)
# LogRecord's own attributes: everything else on a record came from `extra`.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)
_LOGFMT_BARE = re.compile(r"^[^\s\"=]+$")


def logger_for(actor: str) -> logging.Logger:
    """The logger of one actor: `blipee.<actor>`."""
    return logging.getLogger(f"{ROOT_LOGGER}.{actor}")


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return "**********"
    if isinstance(value, str | int | bool) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    name = record.name
    actor = name[len(ROOT_LOGGER) + 1 :] if name.startswith(ROOT_LOGGER + ".") else name
    fields: dict[str, Any] = {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        + f".{int(record.msecs):03d}Z",
        "level": record.levelname.lower(),
        "actor": actor,
        "msg": record.getMessage(),
    }
    for key, value in vars(record).items():
        if key in _STANDARD or key.startswith("_") or key in fields:
            continue
        fields[key] = "<redacted>" if _SECRET_FIELD.search(key) else _plain(value)
    if record.exc_info and record.exc_info[1] is not None:
        error = record.exc_info[1]
        # One line per event: the error's type and message, never a multi-line traceback.
        fields["error"] = f"{type(error).__name__}: {error}"
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record), ensure_ascii=False, default=str)


def _logfmt_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if text and _LOGFMT_BARE.match(text):
        return text
    return json.dumps(text, ensure_ascii=False)


class LogfmtFormatter(logging.Formatter):
    """`key=value` pairs, one line per event (values quoted when needed)."""

    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in _fields(record).items())


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The one handler `configure_logging` installs (recognised to be replaced on reload)."""


def configure_logging(
    *,
    format: Literal["json", "logfmt"] = "logfmt",
    level: str = "info",
    stream: TextIO | None = None,
) -> logging.Logger:
    """Send every log record (ours, the runtime's, libraries') to `stream` (stderr) in `format`,
    one line per event, at `level`; returns the `blipee` logger.

    Installed on the root logger so that no record falls through to Python's last-resort
    handler (which would print multi-line tracebacks). Calling it again (on reload) replaces the
    handler, so there is always exactly one.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _Handler):
            root.removeHandler(handler)
    handler = _Handler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if format == "json" else LogfmtFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    ours = logging.getLogger(ROOT_LOGGER)
    ours.setLevel(logging.NOTSET)
    return ours

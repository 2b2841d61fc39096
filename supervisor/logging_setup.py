"""Structured logs: one line per event, JSON lines or logfmt, with the actor's name.

Actors log through `logging.getLogger("blipee.<actor>")` (the composition root hands each actor
its logger); structured fields go in `extra={...}`. Every line carries `ts`, `level`, `actor`
(the logger name without the `blipee.` prefix), `msg` and the extra fields.

Secrets never reach a line: a `pydantic.SecretStr` renders as `**********`, and the value of any
field whose name looks like a secret (token, password, secret, key, dsn, webhook_url, ...) is
replaced by `<redacted>`. With a `SecretRedactor` (the configured secrets), a field named `url`,
`*_url`, `*dsn*`, `*token*`, `*secret*`, `*password*` or `*key*` that holds one is replaced by
`<redacted>` too, and a configured secret inside the message or an error is cut out.

The HTTP client libraries' loggers (`QUIET_LOGGERS`: httpx writes "HTTP Request: POST <full url>"
at INFO for every request, httpcore its connection details at DEBUG) are held at WARNING by
`configure_logging`: a channel's URL is a secret (Slack and webhook URLs carry their token in the
path). A host that embeds the monitor keeps its own logging configuration; there
`install_redaction` puts a `RedactingFilter` on those loggers instead, which cuts the configured
secrets out of their records (levels and handlers untouched).
"""

from __future__ import annotations

import json
import logging
import math
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, TextIO

from pydantic import SecretStr

__all__ = [
    "QUIET_LOGGERS",
    "REDACTED_LOGGERS",
    "ROOT_LOGGER",
    "JsonFormatter",
    "LogfmtFormatter",
    "RedactingFilter",
    "SecretRedactor",
    "configure_logging",
    "install_redaction",
    "logger_for",
]

ROOT_LOGGER = "blipee"
QUIET_LOGGERS = ("httpx", "httpcore")
"""Library loggers that name request URLs below WARNING; `configure_logging` sets them to it."""

REDACTED_LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)
"""Loggers `install_redaction` filters. A logger's filters see only the records logged on that
logger itself (not its children's), hence httpcore's modules one by one."""

REDACTED = "<redacted>"
_MIN_SECRET = 4  # shorter values would cut ordinary words out of lines
# Fields redacted when they hold a configured secret (a check's `url` is fine to log, a Slack
# webhook's is not).
_SENSITIVE_FIELD = re.compile(
    r"((^|_)url$|dsn|token|secret|passw|key|authorization)", re.IGNORECASE
)
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#\s]*(?P<rest>[/?].*)$")

_SECRET_FIELD = re.compile(
    r"(^|_)(token|password|passwd|secret|key|dsn|webhook_url|routing_key|api_key|authorization)$",
    re.IGNORECASE,
)
# LogRecord's own attributes: everything else on a record came from `extra`.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)
_LOGFMT_BARE = re.compile(r"^[^\s\"=]+$")


class SecretRedactor:
    """The configured secrets (channel URLs, tokens, passwords...), cut out of log lines.

    A secret URL is also matched by its path and query alone (that is where Slack and webhook
    URLs carry their token), so a client that rewrites the scheme or host part still cannot
    print it. Values shorter than 4 characters are ignored. `add` only grows the set: after a
    reload, a delivery of the old configuration may still be in flight.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._needles: tuple[str, ...] = ()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Add `secrets` (empty and short values are skipped)."""
        needles = set(self._needles)
        for secret in secrets:
            if len(secret) < _MIN_SECRET:
                continue
            needles.add(secret)
            match = _URL.match(secret)
            if match and len(match.group("rest")) >= 8:
                needles.add(match.group("rest"))
        # Longest first: a whole URL is cut before its path alone.
        self._needles = tuple(sorted(needles, key=len, reverse=True))

    def __bool__(self) -> bool:
        return bool(self._needles)

    def holds(self, text: str) -> bool:
        """Whether `text` contains a configured secret."""
        return any(needle in text for needle in self._needles)

    def redact(self, text: str) -> str:
        """`text` with every configured secret replaced by `<redacted>`."""
        for needle in self._needles:
            if needle in text:
                text = text.replace(needle, REDACTED)
        return text


class RedactingFilter(logging.Filter):
    """Cuts the configured secrets out of a record's message (the record is kept).

    Attached to library loggers (`REDACTED_LOGGERS`) by `install_redaction`, so that a host's
    own handlers and formatters never see a channel's URL.
    """

    def __init__(self, redactor: SecretRedactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.redactor:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: let logging report it as it would
            return True
        if self.redactor.holds(message):
            record.msg = self.redactor.redact(message)
            record.args = None
        return True


def install_redaction(
    redactor: SecretRedactor, loggers: Iterable[str] = REDACTED_LOGGERS
) -> Callable[[], None]:
    """Put a `RedactingFilter` over `redactor` on each of `loggers`; returns its remover.

    Levels, handlers and propagation of those loggers are left as they are (a host's explicit
    configuration stands). Each call adds its own filter; the remover removes only that one and
    may be called more than once.
    """
    installed = RedactingFilter(redactor)
    targets = [logging.getLogger(name) for name in loggers]
    for logger in targets:
        logger.addFilter(installed)

    def remove() -> None:
        for logger in targets:
            logger.removeFilter(installed)

    return remove


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


def _fields(record: logging.LogRecord, redactor: SecretRedactor | None) -> dict[str, Any]:
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
        # Named like a secret: always hidden. Named like it may hold one: hidden when it does.
        hidden = _SECRET_FIELD.search(key) is not None or (
            redactor is not None
            and _SENSITIVE_FIELD.search(key) is not None
            and redactor.holds(str(value))
        )
        fields[key] = REDACTED if hidden else _plain(value)
    if record.exc_info and record.exc_info[1] is not None:
        error = record.exc_info[1]
        # One line per event: the error's type and message, never a multi-line traceback.
        fields["error"] = f"{type(error).__name__}: {error}"
    if redactor:
        fields["msg"] = redactor.redact(fields["msg"])
        if "error" in fields and isinstance(fields["error"], str):
            fields["error"] = redactor.redact(fields["error"])
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line; `redactor`: the configured secrets to keep out (see module)."""

    def __init__(self, redactor: SecretRedactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record, self.redactor), ensure_ascii=False, default=str)


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
    """`key=value` pairs, one line per event (values quoted when needed); `redactor`: as
    `JsonFormatter`."""

    def __init__(self, redactor: SecretRedactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record, self.redactor)
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in fields.items())


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The one handler `configure_logging` installs (recognised to be replaced on reload);
    `fields` are added to each record it writes that does not set them itself."""

    def __init__(self, stream: TextIO, fields: Mapping[str, object]) -> None:
        super().__init__(stream)
        self.fields = dict(fields)

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in self.fields.items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return super().filter(record)


def configure_logging(
    *,
    format: Literal["json", "logfmt"] = "logfmt",
    level: str = "info",
    stream: TextIO | None = None,
    redactor: SecretRedactor | None = None,
    fields: Mapping[str, object] | None = None,
) -> logging.Logger:
    """Send every log record (ours, the runtime's, libraries') to `stream` (stderr) in `format`,
    one line per event, at `level`; returns the `blipee` logger.

    `fields` are added to every line (a `run --workers` worker's `worker`); None keeps those of
    the handler replaced, so a reload keeps them.

    Installed on the root logger so that no record falls through to Python's last-resort
    handler (which would print multi-line tracebacks). Calling it again (on reload) replaces the
    handler, so there is always exactly one. `redactor`: the configured secrets, kept out of
    every line (see the module docstring).
    """
    root = logging.getLogger()
    kept: Mapping[str, object] = {}
    for handler in list(root.handlers):
        if isinstance(handler, _Handler):
            kept = handler.fields
            root.removeHandler(handler)
    handler = _Handler(
        stream if stream is not None else sys.stderr, kept if fields is None else fields
    )
    handler.setFormatter(JsonFormatter(redactor) if format == "json" else LogfmtFormatter(redactor))
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    ours = logging.getLogger(ROOT_LOGGER)
    ours.setLevel(logging.NOTSET)
    return ours

"""`blipee-monitor test-alert`: one test notification per channel, sent directly (no outbox).

`send_test_alert(config, channel=...)` checks the channel name against the configuration
(unknown: exit 2 with a "did you mean"; disabled, or no enabled channel: exit 1), then sends
through notify's `run_test_alert` in its own `trio.run`, and returns one line per delivered
channel. Failures raise `TestAlertError`, which carries the command's exit status and the lines
of the channels that did deliver; no message holds a secret.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from functools import partial

import trio

from actors.notify.errors import ChannelSetupError
from actors.notify.testalert import run_test_alert
from supervisor.app.lifecycle import EXIT_ERROR
from supervisor.config import Config
from supervisor.logging_setup import logger_for

__all__ = ["TestAlertError", "send_test_alert"]


class TestAlertError(Exception):
    """`test-alert` could not send; `exit_status` is what the command exits with."""

    __test__ = False  # not a pytest test class

    def __init__(
        self, message: str, exit_status: int = EXIT_ERROR, delivered: Sequence[str] = ()
    ) -> None:
        super().__init__(message)
        self.exit_status = exit_status
        self.delivered = tuple(delivered)


def send_test_alert(config: Config, *, channel: str | None = None) -> list[str]:
    """Send one test notification on `channel` (default: every enabled channel), once each,
    through notify's `run_test_alert` (directly, not through the outbox).

    Returns one line per channel saying it was delivered.

    Raises:
        TestAlertError: unknown channel (exit 2, with a "did you mean"), disabled channel, no
            enabled channel, or a delivery failed (exit 1; the reason never holds a secret).
    """
    disabled = config.disabled_channels()
    if channel is not None:
        if channel not in config.channels:
            close = difflib.get_close_matches(channel, list(config.channels), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            known = ", ".join(config.channels) or "none"
            raise TestAlertError(f"unknown channel '{channel}' (defined: {known}){hint}", 2)
        if channel in disabled:
            raise TestAlertError(f"channel '{channel}' is disabled: {disabled[channel]}")
    elif len(disabled) == len(config.channels):
        raise TestAlertError("no enabled channel to send to")
    try:
        results = trio.run(
            partial(
                run_test_alert,
                config.channels,
                channel=channel,
                logger=logger_for("notify"),
                external_url=config.server.external_url,
            )
        )
    except ChannelSetupError as exc:  # e.g. an email channel whose TLS files cannot be read
        raise TestAlertError(str(exc)) from None
    lines: list[str] = []
    failures: list[str] = []
    for name, result in results.items():
        kind = config.channels[name].kind
        if result.ok:
            lines.append(f"{name}: test notification delivered ({kind})")
        else:
            failures.append(f"{name}: {result.result}: {result.detail}")
    if failures:
        raise TestAlertError("; ".join(failures), delivered=lines)
    return lines

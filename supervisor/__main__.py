"""`python -m supervisor` is the same as the `blipee-monitor` command."""

from __future__ import annotations

from supervisor.cli import console

console()

"""Command line: `blipee-monitor run | check-config | test-alert | --version`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import trio

from supervisor import __version__

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="blipee-monitor", description=__doc__)
    parser.add_argument("--version", action="version", version=f"blipee-monitor {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the supervisor until SIGTERM/SIGINT")
    run.add_argument("-c", "--config", default=None, help="configuration file (TOML)")
    return parser


async def _run_forever() -> None:
    await trio.sleep_forever()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit status."""
    args = _parser().parse_args(argv)
    if args.command == "run":
        try:
            trio.run(_run_forever)
        except KeyboardInterrupt:
            return 0
    return 0

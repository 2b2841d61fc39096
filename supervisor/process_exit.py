"""`exit_now(status)`: end the process without the interpreter's teardown, once what it would
still do that matters is done.

At exit the interpreter waits for its non-daemon threads, runs the `atexit` callbacks (among
them `logging.shutdown`, which flushes and closes every log handler, and OpenTelemetry's
providers' shutdown), then frees every object and module one by one. With thousands of checks
that last step alone took ~1 s of a stop (docs/decisions/0017): the actors, their probes and
configuration, most of them moved out of the collector's reach by `gc.freeze()`. `exit_now` does
the first steps, flushes stdout and stderr, and leaves with `os._exit`: the operating system
reclaims the memory at once. Nothing the monitor keeps (history, alert state, outbox, spool) is
written at that step: those are written and their databases closed before `serve` returns.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from contextlib import suppress
from typing import NoReturn

__all__ = ["exit_now"]


def exit_now(status: int) -> NoReturn:
    """Join the non-daemon threads, run the `atexit` callbacks, flush stdout and stderr, then
    end the process with `status` (`os._exit`: no object is freed, no further callback runs).
    Only the process's own entry point calls it (`supervisor.cli.console`), never a host that
    embeds the monitor nor a test in-process."""
    current = threading.current_thread()
    for thread in threading.enumerate():
        if thread is not current and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with suppress(Exception):  # closed, or a broken pipe: nothing more can be written
            stream.flush()
    os._exit(status)

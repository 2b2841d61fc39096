"""`exit_now`: what the interpreter's exit would still do that matters is done (threads joined,
`atexit` callbacks, buffered output and log records flushed); the freeing of every object is
skipped."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import NoReturn

import pytest

import supervisor.cli
import supervisor.process_exit

SCRIPT = textwrap.dedent(
    """\
    import atexit, logging, logging.handlers, sys, threading, time
    from pathlib import Path

    from supervisor.process_exit import exit_now

    out = Path(sys.argv[1])

    class Freed:
        def __del__(self):  # runs when the interpreter frees the module's objects at exit
            (out / "freed").write_text("yes")

    kept = Freed()
    atexit.register(lambda: (out / "atexit").write_text("yes"))
    target = logging.FileHandler(out / "log")
    buffered = logging.handlers.MemoryHandler(capacity=1000, target=target)
    logging.getLogger().addHandler(buffered)
    logging.getLogger().warning("the last line")  # held until logging.shutdown flushes it

    def late() -> None:
        time.sleep(0.2)
        (out / "thread").write_text("yes")

    threading.Thread(target=late).start()
    sys.stdout.write("buffered output")  # a pipe: block-buffered, not yet written
    exit_now(int(sys.argv[2]))
    """
)


def _run(tmp_path: Path, *, exit_now: bool) -> subprocess.CompletedProcess[str]:
    script = SCRIPT if exit_now else SCRIPT.replace("exit_now(int", "sys.exit(int")
    return subprocess.run(
        [sys.executable, "-c", script, str(tmp_path), "3"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_exit_now_flushes_what_the_exit_would_then_skips_the_teardown(tmp_path: Path) -> None:
    done = _run(tmp_path, exit_now=True)
    assert done.returncode == 3, done.stderr
    assert done.stdout == "buffered output"
    assert (tmp_path / "log").read_text() == "the last line\n"
    assert (tmp_path / "atexit").exists()
    assert (tmp_path / "thread").exists()
    assert not (tmp_path / "freed").exists()


def test_the_usual_exit_frees_the_objects_the_fast_one_leaves(tmp_path: Path) -> None:
    # What the test above tells apart: the same script leaving through sys.exit frees them.
    done = _run(tmp_path, exit_now=False)
    assert done.returncode == 3, done.stderr
    assert (tmp_path / "freed").exists()
    assert (tmp_path / "log").read_text() == "the last line\n"


class _Left(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def test_the_process_entry_point_leaves_through_exit_now_with_mains_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`blipee-monitor` and `python -m supervisor` (`console`) leave through `exit_now` with
    the status `main` returns; `main` itself returns it (hosts and tests call it)."""

    def leave(status: int) -> NoReturn:
        raise _Left(status)

    monkeypatch.setattr(supervisor.process_exit, "exit_now", leave)
    broken = tmp_path / "c.toml"
    broken.write_text("[server\n")
    monkeypatch.setattr(sys, "argv", ["blipee-monitor", "check-config", "-c", str(broken)])
    with pytest.raises(_Left) as left:
        supervisor.cli.console()
    assert left.value.status == supervisor.cli.EXIT_CONFIG
    assert supervisor.cli.main(["check-config", "-c", str(broken)]) == supervisor.cli.EXIT_CONFIG

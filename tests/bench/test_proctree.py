"""The process tree whose CPU `bench/scale.py --workers` reports: every descendant found by
parent id, each process counted over a window from its own samples."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bench import proctree
from bench.proctree import ProcStat, Sample, parse_stat, tree, window_cpu

TICK = proctree.TICK


def _stat(pid: int, ppid: int, *, start: int = 100, cpu: int = 0) -> ProcStat:
    return ProcStat(pid=pid, ppid=ppid, start=start, cpu=cpu)


def test_parse_stat_reads_past_a_command_name_with_spaces_and_parentheses() -> None:
    fields = ["S", "41", *["0"] * 9, "250", "50", "7000", "900", *["0"] * 4, "1234", "0", "77"]
    stat = parse_stat(f"42 (python3 (w) x) {' '.join(fields)} 0 0")
    # Its own user + system time, not its reaped children's (7000 + 900).
    assert stat == ProcStat(pid=42, ppid=41, start=1234, cpu=300, rss_pages=77)


def test_parse_stat_refuses_what_is_not_a_stat_line() -> None:
    with pytest.raises(ValueError, match="stat line"):
        parse_stat("nothing here")


def test_tree_holds_the_root_and_every_descendant_and_nothing_else() -> None:
    stats = [
        _stat(1, 0),
        _stat(10, 1),  # the bench itself: not in the tree
        _stat(20, 10),  # the monitor's parent
        _stat(21, 20),
        _stat(22, 20),
        _stat(30, 22),  # a grandchild
        _stat(40, 1),  # nginx
    ]
    assert sorted(p.pid for p in tree(stats, 20)) == [20, 21, 22, 30]
    assert tree(stats, 99) == []


def _sample(taken: int, *processes: ProcStat) -> Sample:
    return Sample(taken=taken, cpu={p.key: p.cpu for p in processes})


def test_window_counts_each_process_from_its_own_first_sample() -> None:
    parent, worker = _stat(20, 1, start=100, cpu=50), _stat(21, 20, start=110, cpu=900)
    before = _sample(1000, parent, worker)
    after = _sample(
        2000,
        _stat(20, 1, start=100, cpu=60),
        _stat(21, 20, start=110, cpu=1800),
        _stat(22, 20, start=1500, cpu=300),  # started within the window: all of it
    )
    assert window_cpu(before, after) == pytest.approx((10 + 900 + 300) / TICK)


def test_a_process_missed_by_the_first_sample_does_not_bring_its_past_into_the_window() -> None:
    # The defect: a worker not seen at the start of the window (it had been running since tick
    # 110) and seen at its end counted all its life, start-up included, as the window's.
    before = _sample(1000, _stat(20, 1, start=100, cpu=50))
    after = _sample(2000, _stat(20, 1, start=100, cpu=60), _stat(21, 20, start=110, cpu=1800))
    assert window_cpu(before, after) == pytest.approx(10 / TICK)


def test_an_exited_process_and_a_reused_pid_are_told_apart() -> None:
    before = _sample(1000, _stat(20, 1, cpu=50), _stat(21, 20, start=110, cpu=900))
    # 21 exited (its time is in its parent's cutime: not read) and its id went to a new worker.
    after = _sample(2000, _stat(20, 1, cpu=60), _stat(21, 20, start=1900, cpu=40))
    assert window_cpu(before, after) == pytest.approx((10 + 40) / TICK)


def test_a_child_forked_by_another_thread_is_in_the_tree() -> None:
    # trio starts processes from a worker thread; the main thread's
    # /proc/PID/task/PID/children does not list them while that thread lives.
    started: list[subprocess.Popen[bytes]] = []
    forked, done = threading.Event(), threading.Event()

    def fork() -> None:
        command = [sys.executable, "-c", "input()"]
        started.append(subprocess.Popen(command, stdin=subprocess.PIPE))
        forked.set()
        done.wait(30)

    thread = threading.Thread(target=fork)
    thread.start()
    try:
        assert forked.wait(30)
        (child,) = started
        main = os.getpid()
        listed = Path(f"/proc/{main}/task/{main}/children").read_text().split()
        assert str(child.pid) not in listed  # what the bench read before
        assert child.pid in {pid for pid, _ in proctree.sample(main).cpu}
    finally:
        done.set()
        thread.join()
        for each in started:
            each.communicate(b"\n", timeout=10)

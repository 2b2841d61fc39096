"""The CPU a process and all its descendants use over a window, read from /proc.

`scale.py --workers` measures a parent and the worker processes it starts. The tree is found by
parent process id over every process in /proc (`tree`): a process's `PPid` is its parent's
process id whichever thread forked it. /proc/PID/task/PID/children is not enough: it lists only
the children forked by that one thread, and trio starts a process from a worker thread, so the
parent's main thread lists a worker only once that thread has exited (trio's idle threads exit
after 10 s) and the kernel moved its children to the main thread. A window whose first sample
missed the workers and whose last one saw them counted their whole lives, start-up included, as
the window's (2.69 cores for 2 workers on a 2-core machine).

A window's CPU (`window_cpu`) is, over the processes of the tree at its end, their CPU at the end
minus their CPU at its start, a process being its process id and start time (a reused id is
another process). One that started within the window counts from zero; one that was not in the
tree at the start although it had started by then (moved into it) counts nothing; one that
exited within the window counts nothing after the start sample (its parent's `cutime` holds its
whole life, before the window too: not used). Run on its own, this module does nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "PAGE",
    "TICK",
    "ProcStat",
    "Sample",
    "parse_stat",
    "read_stats",
    "sample",
    "tree",
    "window_cpu",
    "window_seconds",
]

TICK = os.sysconf("SC_CLK_TCK")
"""Clock ticks per second of /proc/PID/stat's times."""
PAGE = os.sysconf("SC_PAGE_SIZE")
"""Bytes per page of /proc/PID/stat's resident set size."""


@dataclass(frozen=True, slots=True)
class ProcStat:
    """One process as /proc/PID/stat shows it (times in clock ticks; `start`: since boot)."""

    pid: int
    ppid: int
    start: int
    cpu: int
    rss_pages: int = 0

    @property
    def key(self) -> tuple[int, int]:
        """The process's identity: its id and its start time."""
        return (self.pid, self.start)


def parse_stat(text: str) -> ProcStat:
    """The fields of one /proc/PID/stat line that a tree's CPU needs (user + system time of the
    process itself, not of its reaped children).

    Raises:
        ValueError: not a stat line.
    """
    head, _, tail = text.rpartition(")")  # the command name may hold spaces and parentheses
    fields = tail.split()
    if not head or len(fields) < 22:
        raise ValueError(f"not a /proc/PID/stat line: {text[:80]!r}")
    return ProcStat(
        pid=int(head.split("(", 1)[0]),
        ppid=int(fields[1]),
        start=int(fields[19]),
        cpu=int(fields[11]) + int(fields[12]),
        rss_pages=int(fields[21]),
    )


def read_stats(proc: Path = Path("/proc")) -> list[ProcStat]:
    """Every process /proc shows now (one that exits while it is read is left out)."""
    stats = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stats.append(parse_stat((entry / "stat").read_text()))
        except (OSError, ValueError):
            continue
    return stats


def tree(stats: Iterable[ProcStat], root: int) -> list[ProcStat]:
    """The process `root` and its descendants among `stats` (empty: `root` is not there)."""
    by_parent: dict[int, list[ProcStat]] = {}
    found: ProcStat | None = None
    for stat in stats:
        by_parent.setdefault(stat.ppid, []).append(stat)
        if stat.pid == root:
            found = stat
    if found is None:
        return []
    result = [found]
    at = 0
    while at < len(result):
        result.extend(by_parent.get(result[at].pid, ()))
        at += 1
    return result


@dataclass(frozen=True, slots=True)
class Sample:
    """A tree's processes at one moment: CPU ticks by process identity, and when it was taken
    (clock ticks since boot, the clock of `ProcStat.start`)."""

    taken: float
    cpu: Mapping[tuple[int, int], int]
    rss_pages: int = 0

    @property
    def seconds(self) -> float:
        """The CPU seconds its processes had used in all."""
        return sum(self.cpu.values()) / TICK


def sample(root: int, proc: Path = Path("/proc")) -> Sample:
    """The tree of `root` now."""
    taken = time.clock_gettime(time.CLOCK_BOOTTIME) * TICK
    processes = tree(read_stats(proc), root)
    return Sample(
        taken=taken,
        cpu={p.key: p.cpu for p in processes},
        rss_pages=sum(p.rss_pages for p in processes),
    )


def window_cpu(before: Sample, after: Sample) -> float:
    """CPU seconds the tree used between `before` and `after` (see the module docstring)."""
    ticks = 0
    for key, cpu in after.cpu.items():
        if key in before.cpu:
            ticks += cpu - before.cpu[key]
        elif key[1] >= int(before.taken):  # started after the first sample (to the tick)
            ticks += cpu
    return ticks / TICK


def window_seconds(before: Sample, after: Sample) -> float:
    """Wall seconds between the two samples."""
    return (after.taken - before.taken) / TICK

"""`blipee-monitor run --workers N`: a parent process supervising N worker processes.

Each worker is the same program run on the same file as replica `<host>-w<i>` (the overrides of
`supervisor.app.workerplan`), started as `python -m supervisor run -c FILE --worker I
--worker-listen ADDRESS --worker-count N`. The parent serves nothing itself; it:

- reserves the API address first (binds it with SO_REUSEPORT and keeps it bound, never
  listening), so a port 0 is resolved once for all workers and an address in use fails at once;
- runs one `WorkerProcess` child per worker under a one-for-one `Supervisor` of independent
  children (`ordered=False`: they start together and stop together) with the `[supervisor]`
  intensity, period and backoff: a worker that exits, whatever its status, is started again
  after the backoff delay; past the intensity the parent stops the others and exits 1;
- SIGTERM/SIGINT: stops every worker gracefully at once (each is asked once and gets
  `[supervisor] shutdown_timeout` plus `STOP_MARGIN` seconds before SIGKILL); exits 0 when all
  of them stopped with status 0 (or were ended by a SIGTERM of their own while still starting),
  else 1. A second SIGTERM/SIGINT is passed on as SIGTERM (the workers stop at once) and the
  parent exits 130;
- SIGHUP: passed on to every worker, which reloads the file (each applies its overrides again).
  A worker that is still starting gets it once it can take it (`READY_OPTION`): until then a
  SIGHUP would end it (the default action) and count against the restart limit.

A worker is asked to stop by closing its stdin, a pipe from the parent that it watches (`serve`'s
`stop_when`), not by a signal: a service manager that signals the whole process group (systemd's
default `KillMode`) already sent it SIGTERM, and a second one would stop it at once. The same
pipe closes when the parent dies (even by SIGKILL), so workers never outlive it. Workers run in
their own session, so a terminal's Ctrl-C reaches only the parent, which asks them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path

import trio

from supervisor.app.workerplan import plan_workers
from supervisor.config import Config, ConfigError, SupervisorConfig
from supervisor.logging_setup import logger_for
from supervisor.runtime import (
    Backoff,
    ChildSpec,
    RestartIntensityExceeded,
    Supervisor,
    current_child,
    leaves,
)

__all__ = [
    "READY_OPTION",
    "STOP_MARGIN",
    "WorkerExited",
    "WorkerProcess",
    "describe_status",
    "reserve_address",
    "run_workers",
    "supervise",
    "signals_ready",
    "wait_parent_gone",
    "worker_argv",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130

STOP_MARGIN = 5.0
"""Seconds a worker gets beyond `[supervisor] shutdown_timeout` to exit once asked (the
process's own start-up and exit) before it is killed."""

_KILL_WAIT = 1.0  # seconds a worker told to stop now gets before SIGKILL

READY_OPTION = "--worker-ready-fd"
"""Appended with a file descriptor to a worker's command line by `WorkerProcess`: the write end
of a pipe on which the worker writes a byte once it handles SIGHUP (`signals_ready`). The parent
passes a SIGHUP on only after that; one that comes earlier waits for it."""


def describe_status(status: int) -> str:
    """How a process ended, as people say it: "exited with status 1", "was killed by SIGKILL"
    (`status` as `subprocess` gives it: negative for a signal)."""
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = f"signal {-status}"
        return f"was killed by {name}"
    return f"exited with status {status}"


class WorkerExited(Exception):
    """A worker process exited without being asked to (it is started again by policy)."""

    def __init__(self, index: int, pid: int, status: int) -> None:
        super().__init__(f"worker {index} (pid {pid}) {describe_status(status)}")
        self.index = index
        self.pid = pid
        self.status = status


def worker_argv(
    path: Path, index: int, listen: str, *, count: int = 0, python: str = sys.executable
) -> list[str]:
    """The command line of worker `index` of `count` (0: not said) on configuration file `path`,
    sharing `listen`."""
    count_option = ["--worker-count", str(count)] if count else []
    return [
        python,
        "-m",
        "supervisor",
        "run",
        "-c",
        str(path),
        "--worker",
        str(index),
        "--worker-listen",
        listen,
        *count_option,
    ]


def reserve_address(listen: str) -> tuple[socket.socket, str]:
    """Bind `listen` ("host:port") with SO_REUSEPORT without listening; returns the socket (keep
    it open while the workers run) and the address with its port resolved (port 0 -> the one
    bound). The kernel gives connections only to listening sockets, so this one takes none.

    Raises:
        OSError: the address cannot be bound (in use by another user's or a plain socket,
            not an address of this host).
    """
    host, _, port = listen.rpartition(":")
    infos = socket.getaddrinfo(host.strip("[]") or None, int(port), type=socket.SOCK_STREAM)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock, f"{host}:{sock.getsockname()[1]}"


class WorkerProcess:
    """One worker: a supervised child that runs the process `argv` until asked to stop.

    `run` reports started once the process is spawned, then waits for it. Asked to stop (the
    runtime's stop request), it closes the process's stdin and waits for the exit (the supervisor
    cancels it after its shutdown time: SIGKILL); an exit it did not ask for raises
    `WorkerExited`, so the supervisor starts it again. `stopped` holds the exit statuses of the
    stops it asked for.

    The process is run as `argv + [READY_OPTION, fd]`: it writes a byte on `fd` once it handles
    SIGHUP. `send_signal(SIGHUP)` before that is held and passed on then (several as one: each
    reload reads the whole file); a process that exits first drops it (the next one reads the
    file at its start anyway).
    """

    def __init__(self, index: int, argv: Sequence[str]) -> None:
        self.index = index
        self.argv = list(argv)
        self.process: trio.Process | None = None
        self.stopped: list[int] = []
        self.up = False
        """Whether the running process handles SIGHUP (it said so on its ready pipe)."""
        self._held_hup = False
        self._asked = False
        self._log = logger_for("workers")

    def send_signal(self, signum: int) -> None:
        """Pass `signum` on to the process, if it is running; a SIGHUP to a process not yet up
        is held until it is."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        if signum == signal.SIGHUP and not self.up:
            if not self._held_hup:
                self._log.info(
                    "worker %d is starting: it reloads once it is up",
                    self.index,
                    extra={"worker": self.index},
                )
            self._held_hup = True
            return
        process.send_signal(signum)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the worker process once (see the class docstring).

        Raises:
            WorkerExited: the process exited by itself.
            OSError: the process cannot be started.
        """
        self._asked = False
        self.up = False
        self._held_hup = False
        read_end, write_end = os.pipe()
        ready = trio.lowlevel.FdStream(read_end)
        try:
            try:
                process = await trio.lowlevel.open_process(
                    [*self.argv, READY_OPTION, str(write_end)],
                    stdin=subprocess.PIPE,
                    start_new_session=True,
                    pass_fds=(write_end,),
                )
            finally:
                os.close(write_end)  # the worker's now: EOF once it wrote or exited
            self.process = process
            self._log.info(
                "worker %d started", self.index, extra={"worker": self.index, "pid": process.pid}
            )
            task_status.started()
            await self._supervise(process, ready)
        finally:
            with trio.CancelScope(shield=True):
                await ready.aclose()

    async def _watch_ready(self, process: trio.Process, ready: trio.lowlevel.FdStream) -> None:
        """Until the process says it handles SIGHUP (or exits); then pass on a held one."""
        try:
            said = await ready.receive_some(1)
        except (trio.BrokenResourceError, OSError):
            said = b""
        if said and process.returncode is None:
            self.up = True
            if self._held_hup:
                self._held_hup = False
                process.send_signal(signal.SIGHUP)

    async def _supervise(self, process: trio.Process, ready: trio.lowlevel.FdStream) -> None:
        context = current_child()
        try:
            async with trio.open_nursery() as nursery:

                async def on_stop() -> None:
                    await context.wait_stop_requested()
                    self._asked = True
                    if process.stdin is not None:
                        await process.stdin.aclose()  # the worker's signal to stop

                nursery.start_soon(on_stop)
                nursery.start_soon(self._watch_ready, process, ready)
                status = await process.wait()
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await self._reap(process)
        if self._asked:
            self.stopped.append(status)
            self._log.info(
                "worker %d stopped: it %s",
                self.index,
                describe_status(status),
                extra={"worker": self.index, "pid": process.pid, "status": status},
            )
            return
        raise WorkerExited(self.index, process.pid, status)

    async def _reap(self, process: trio.Process) -> None:
        """Leave no process behind: a running one (cancelled: told to stop now) gets
        `_KILL_WAIT` seconds, then SIGKILL."""
        if process.returncode is None:
            with trio.move_on_after(_KILL_WAIT):
                await process.wait()
        if process.returncode is None:
            self._log.warning(
                "worker %d (pid %d) did not stop; killing it",
                self.index,
                process.pid,
                extra={"worker": self.index},
            )
            process.kill()
            await process.wait()
        if process.stdin is not None:
            await process.stdin.aclose()


def _backoff(settings: SupervisorConfig) -> Backoff:
    return Backoff(
        initial=settings.backoff_initial,
        base=settings.backoff_initial,
        maximum=settings.backoff_max,
    )


async def supervise(
    workers: Sequence[WorkerProcess],
    settings: SupervisorConfig,
    *,
    signals: Sequence[int] = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP),
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> int:
    """Run `workers` until a stop signal (see the module docstring); returns the exit status.

    Raises:
        RestartIntensityExceeded: workers exited more often than `settings` allow (the others
            have been stopped).
    """
    log = logger_for("workers")
    grace = settings.shutdown_timeout + STOP_MARGIN
    specs = [ChildSpec(f"w{w.index}", w.run, shutdown=grace) for w in workers]
    tree = Supervisor(
        specs,
        name="workers",
        intensity=settings.intensity,
        period=settings.period,
        backoff=_backoff(settings),
        ordered=False,
    )
    status = EXIT_OK
    async with trio.open_nursery() as nursery:
        with trio.open_signal_receiver(*signals) as received:
            await nursery.start(tree.run)
            log.info("%d worker processes spawned", len(workers))
            task_status.started()

            async def graceful() -> None:
                # Each worker has its own deadline (`grace`, then SIGKILL); this one is a bound.
                with trio.move_on_after(grace + _KILL_WAIT + 1.0):
                    await tree.stop()
                nursery.cancel_scope.cancel()

            stopping = False
            async for signum in received:
                name = signal.Signals(signum).name
                if signum == signal.SIGHUP:
                    log.info("SIGHUP: every worker reloads the configuration")
                    for worker in workers:
                        worker.send_signal(signal.SIGHUP)
                elif not stopping:
                    stopping = True
                    log.info("%s: stopping %d workers gracefully", name, len(workers))
                    nursery.start_soon(graceful)
                else:
                    log.warning("%s again: stopping the workers now", name)
                    for worker in workers:
                        worker.send_signal(signal.SIGTERM)
                    status = EXIT_INTERRUPTED
                    nursery.cancel_scope.cancel()
                    break
    if status == EXIT_OK:
        # Ended by a SIGTERM of its own (a service manager signalling the group) while still
        # starting, before it handles signals: it had nothing to drain yet.
        clean = (0, -signal.SIGTERM)
        failed = [w.index for w in workers if any(code not in clean for code in w.stopped)]
        if failed:
            log.error("workers %s did not stop cleanly", ", ".join(map(str, failed)))
            status = EXIT_ERROR
    log.info("stopped", extra={"status": status})
    return status


def run_workers(config: Config, count: int, *, path: Path) -> int:
    """Run `count` workers of `config` (read from `path`) until SIGTERM/SIGINT; the exit status.

    Never raises: a failure (the address cannot be reserved, the workers keep exiting) is logged
    on one line and gives status 1; a plan that the resolved address makes invalid (a port 0
    that became a worker's /metrics port) gives status 2.
    """
    log = logger_for("workers")
    try:
        reserved, listen = reserve_address(config.server.listen)
    except OSError as exc:
        log.error("cannot listen on %s: %s", config.server.listen, exc.strerror or exc)
        return EXIT_ERROR
    try:
        try:
            plan = plan_workers(config, count, file=str(path), listen=listen)
        except ConfigError as exc:
            for issue in exc.issues:
                log.error("%s", issue)
            return EXIT_CONFIG
        log.info("running %s", plan.describe())
        workers = [
            WorkerProcess(
                worker.index, worker_argv(path, worker.index, listen, count=len(plan.workers))
            )
            for worker in plan.workers
        ]
        return trio.run(supervise, workers, config.supervisor)
    except Exception as exc:  # trio's nurseries wrap what ended them in exception groups
        for leaf in leaves(exc):
            if isinstance(leaf, RestartIntensityExceeded):
                log.error("stopped: %s (see the workers' errors above)", leaf)
            else:
                log.error("stopped by an error: %s: %s", type(leaf).__name__, leaf)
        return EXIT_ERROR
    finally:
        reserved.close()


async def wait_parent_gone() -> None:
    """In a worker: until its stdin (the parent's pipe) ends: the parent asks it to stop, or is
    gone."""
    stream = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    async with stream:
        try:
            while await stream.receive_some(4096):
                pass
        except (trio.BrokenResourceError, OSError):
            pass


def signals_ready(fd: int | None) -> Callable[[], None] | None:
    """In a worker given `READY_OPTION fd`: what to call once it handles SIGHUP (writes the
    parent a byte on `fd` and closes it); None without a descriptor."""
    if fd is None:
        return None

    def say_ready() -> None:
        try:
            os.write(fd, b"1")
        except OSError:  # the parent is gone: its stdin pipe stops this worker anyway
            pass
        finally:
            with suppress(OSError):
                os.close(fd)

    return say_ready

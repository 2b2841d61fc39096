"""The supervisor process: run an `App` under signals until it is told to stop.

`run_app(config, path=...)` is the `blipee-monitor run` process: it builds the `App` and runs
`serve` in `trio.run`. `serve` handles the signals: SIGTERM/SIGINT stop gracefully (readiness
fails at once, children stop in reverse order within `[supervisor] shutdown_timeout`, exit 0; a
second signal exits at once with status 130); SIGHUP reloads the configuration file (an invalid
file is rejected, the running tree is left alone, and `config_reload_total{result="failure"}`
counts it). An error that stops the process is logged on one line (status 1), never as a
traceback.
"""

from __future__ import annotations

import gc
import math
import signal
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

import trio

from supervisor.app.root import App
from supervisor.config import Config
from supervisor.logging_setup import SecretRedactor, logger_for
from supervisor.runtime import leaves

__all__ = ["EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_OK", "run_app", "serve"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


async def _reload_on_signal(app: App) -> None:
    """Reload for SIGHUP, audited as a reload by "SIGHUP" from "local" (the API's reloads are
    audited by the access guard)."""
    if app.web is not None:
        await app.web.access.audit_event("reload", token="SIGHUP", address="local")
    await app.reload()


@contextmanager
def _signal_callbacks(signals: Sequence[int], callback: Callable[[int], None]) -> Iterator[None]:
    """Call `callback(signum)` for each of `signals` that arrives, in trio's system task, at the
    scheduler pass after the signal, as `trio.open_signal_receiver` delivers them to its queue,
    but without the further pass that wakes a receiving task: on a loop busy with thousands of
    checks each pass is long. `callback` must not raise (trio would crash) and must not block.
    The previous handlers are put back on the way out."""
    token = trio.lowlevel.current_trio_token()

    def handler(signum: int, frame: FrameType | None) -> None:
        with suppress(trio.RunFinishedError):
            token.run_sync_soon(callback, signum)

    previous: dict[int, Any] = {}
    try:
        for signum in signals:
            previous[signum] = signal.signal(signum, handler)
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


async def serve(
    app: App,
    *,
    signals: Sequence[int] = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP),
    freeze_gc: bool = False,
    stop_when: Callable[[], Awaitable[object]] | None = None,
    signals_ready: Callable[[], object] | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> int:
    """Run `app` until a stop signal; returns the exit status (0 graceful, 130 forced).

    A stop signal begins the stop in the call that receives it (`App.request_stop`: readiness
    fails, the checks are cancelled at once), one scheduler pass after it arrived; a task then
    waits for the rest of the tree, at most `[supervisor] shutdown_timeout`. A second stop
    signal cancels everything in its own call.

    `freeze_gc` (the process does it; a host or a test must not): once the tree has started,
    move every object alive out of the garbage collector's generations (`gc.freeze()`), so
    collections no longer walk the thousands of long-lived actor objects (p99 lateness of the
    checks' schedule at 3,000 checks/s: ~92 ms -> ~19 ms, docs/benchmarks.md). The price: a
    reference cycle among what start built is never collected, even once a reload replaced it
    (a one-time amount, at most what start built). And once the stop begins, no collection at
    all (`gc.disable()`): the process ends after it (docs/decisions/0017).

    `stop_when`: when it returns, stop gracefully as on SIGTERM (a `run --workers` worker whose
    parent asks it to stop, or is gone).

    `signals_ready`: called once `signals` are handled, before the app starts (a `run
    --workers` worker tells its parent, which holds a SIGHUP until then); a reload asked during
    the start is done once the app has started.

    Raises:
        supervisor.runtime.RestartIntensityExceeded: the root supervisor gave up.
    """
    log = logger_for("main")
    timeout = app.config.supervisor.shutdown_timeout
    state = _StopState()
    # What the signal's call leaves to a task: reloads, the wait for the graceful stop, and the
    # signals that came before the app had started (handled once it has, as SIGHUP always is).
    send, received = trio.open_memory_channel[tuple[int, bool]](math.inf)

    async with trio.open_nursery() as nursery:

        def begin_stop(reason: str) -> None:
            state.stopping = True
            log.info("%s: stopping gracefully", reason)
            if freeze_gc:
                # The process ends after the stop, without freeing anything (`exit_now`): the
                # garbage of thousands of tasks unwinding (a `Cancelled` and its traceback
                # each) is not worth collecting, and collecting it halved the stop's pace.
                gc.disable()
            app.request_stop()

        def on_stop_signal(signum: int) -> None:
            name = signal.Signals(signum).name
            if not state.stopping:
                begin_stop(name)
            elif state.status == EXIT_OK:
                log.warning("%s again: stopping now", name)
                state.status = EXIT_INTERRUPTED
                nursery.cancel_scope.cancel()

        def on_signal(signum: int) -> None:
            try:
                handled = signum != signal.SIGHUP and state.started
                if handled:
                    on_stop_signal(signum)
                send.send_nowait((signum, handled))
            except Exception:  # trio must not see it: logged, the signal is lost
                log.exception("handling signal %s failed", signum)

        async def graceful() -> None:
            with trio.move_on_after(timeout) as scope:
                await app.stop()
            if scope.cancelled_caught:
                log.warning("graceful stop took longer than %gs; cancelling", timeout)
            nursery.cancel_scope.cancel()

        with _signal_callbacks(signals, on_signal):
            if signals_ready is not None:
                signals_ready()
            await nursery.start(app.run)
            if freeze_gc:
                gc.collect()
                gc.freeze()
            log.info("started", extra={"checks": len(app.config.checks)})
            state.started = True
            task_status.started()

            if stop_when is not None:

                async def watch() -> None:
                    await stop_when()
                    if not state.stopping:
                        begin_stop("stdin closed (the parent process stops, or is gone)")
                        send.send_nowait((signal.SIGTERM, True))

                nursery.start_soon(watch)

            waiting = False
            async for signum, handled in received:
                if signum == signal.SIGHUP:
                    log.info("SIGHUP: reloading the configuration")
                    nursery.start_soon(_reload_on_signal, app)
                    continue
                if not handled:  # it came during the start
                    on_stop_signal(signum)
                if not waiting:
                    waiting = True
                    nursery.start_soon(graceful)
    log.info("stopped", extra={"status": state.status})
    return state.status


class _StopState:
    """Where `serve` stands: started, stopping (the first stop signal came), the exit status."""

    __slots__ = ("started", "status", "stopping")

    def __init__(self) -> None:
        self.started = False  # the app has started: a stop signal is acted on in its call
        self.stopping = False
        self.status = EXIT_OK


def run_app(
    config: Config,
    *,
    path: Path | None,
    env: Mapping[str, str] | None = None,
    redactor: SecretRedactor | None = None,
    adjust: Callable[[Config], Config] | None = None,
    stop_when: Callable[[], Awaitable[object]] | None = None,
    signals_ready: Callable[[], object] | None = None,
) -> int:
    """Run the supervisor process on `config` until SIGTERM/SIGINT; return the exit status.
    `redactor`: the one the log formatter uses (the app adds the secrets of each reload);
    `adjust`: applied to each reloaded configuration (see `App`); `stop_when`, `signals_ready`:
    see `serve`.

    Never raises: a failure is logged on one line and gives status 1.
    """
    log = logger_for("main")
    try:
        app = App(config, path=path, env=env, redactor=redactor, adjust=adjust)
        return trio.run(
            partial(serve, app, freeze_gc=True, stop_when=stop_when, signals_ready=signals_ready)
        )
    except Exception as exc:
        for leaf in leaves(exc):
            log.error("stopped by an error: %s: %s", type(leaf).__name__, leaf)
        return EXIT_ERROR

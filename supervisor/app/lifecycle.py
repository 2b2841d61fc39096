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
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from pathlib import Path

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

    `freeze_gc` (the process does it; a host or a test must not): once the tree has started,
    move every object alive out of the garbage collector's generations (`gc.freeze()`), so
    collections no longer walk the thousands of long-lived actor objects (p99 lateness of the
    checks' schedule at 3,000 checks/s: ~92 ms -> ~19 ms, docs/benchmarks.md). The price: a
    reference cycle among what start built is never collected, even once a reload replaced it
    (a one-time amount, at most what start built).

    `stop_when`: when it returns, stop gracefully as on SIGTERM (a `run --workers` worker whose
    parent asks it to stop, or is gone).

    `signals_ready`: called once `signals` are handled, before the app starts (a `run
    --workers` worker tells its parent, which holds a SIGHUP until then); a reload asked during
    the start is done once the app has started.

    Raises:
        supervisor.runtime.RestartIntensityExceeded: the root supervisor gave up.
    """
    log = logger_for("main")
    status = EXIT_OK
    timeout = app.config.supervisor.shutdown_timeout

    async with trio.open_nursery() as nursery:
        with trio.open_signal_receiver(*signals) as received:
            if signals_ready is not None:
                signals_ready()
            await nursery.start(app.run)
            if freeze_gc:
                gc.collect()
                gc.freeze()
            log.info("started", extra={"checks": len(app.config.checks)})
            task_status.started()
            stopping = False

            async def graceful() -> None:
                with trio.move_on_after(timeout) as scope:
                    await app.stop()
                if scope.cancelled_caught:
                    log.warning("graceful stop took longer than %gs; cancelling", timeout)
                nursery.cancel_scope.cancel()

            def begin_stop(reason: str) -> None:
                nonlocal stopping
                stopping = True
                app.health.begin_draining()
                log.info("%s: stopping gracefully", reason)
                nursery.start_soon(graceful)

            if stop_when is not None:

                async def watch() -> None:
                    await stop_when()
                    if not stopping:
                        begin_stop("stdin closed (the parent process stops, or is gone)")

                nursery.start_soon(watch)

            async for signum in received:
                if signum == signal.SIGHUP:
                    log.info("SIGHUP: reloading the configuration")
                    nursery.start_soon(_reload_on_signal, app)
                elif not stopping:
                    begin_stop(signal.Signals(signum).name)
                else:
                    log.warning("%s again: stopping now", signal.Signals(signum).name)
                    status = EXIT_INTERRUPTED
                    nursery.cancel_scope.cancel()
                    break
    log.info("stopped", extra={"status": status})
    return status


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

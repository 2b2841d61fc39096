"""Command line: `blipee-monitor run [--workers [N]] | check-config | test-alert | export-rules |
import-alertmanager | --version`.

Exit statuses:
    0   success (`run`: stopped by SIGTERM/SIGINT after a graceful stop)
    1   a runtime failure (the error is logged on one line; never a traceback)
    2   the configuration is invalid (every problem on stderr) or the command line is wrong;
        `--workers` without `[storage] url`
    130 `run` stopped at once by a second SIGTERM/SIGINT during the graceful stop
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TextIO

from supervisor import __version__
from supervisor.config import (
    Config,
    ConfigError,
    ConfigIssue,
    load_config_and_warnings,
    resolve_config_path,
    summarize,
)
from supervisor.logging_setup import SecretRedactor, configure_logging, logger_for

if TYPE_CHECKING:
    from supervisor.app.workerplan import WorkerPlan

__all__ = ["EXIT_CONFIG", "EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_OK", "console", "main"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="blipee-monitor",
        description="Health checks, metrics, alert rules and notifications in one process.",
    )
    parser.add_argument("--version", action="version", version=f"blipee-monitor {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    config_help = "configuration file (default: ./config.toml if present, else the packaged one)"
    workers_help = (
        "run N worker processes on this host, sharded replicas sharing [storage] url (PostgreSQL)"
        " and the API address; without N or with 'auto': one per core (default: one process)"
    )
    run = sub.add_parser("run", help="run the supervisor until SIGTERM/SIGINT")
    run.add_argument("-c", "--config", default=None, metavar="PATH", help=config_help)
    run.add_argument(
        "--workers", nargs="?", const="auto", default=None, metavar="N", help=workers_help
    )
    # Set by `run --workers` on the processes it starts; not for people.
    run.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    run.add_argument("--worker-listen", default=None, help=argparse.SUPPRESS)
    run.add_argument("--worker-count", type=int, default=0, help=argparse.SUPPRESS)
    run.add_argument("--worker-ready-fd", type=int, default=None, help=argparse.SUPPRESS)
    check = sub.add_parser("check-config", help="validate the configuration and summarise it")
    check.add_argument("-c", "--config", default=None, metavar="PATH", help=config_help)
    check.add_argument(
        "--workers",
        nargs="?",
        const="auto",
        default=None,
        metavar="N",
        help="also say what `run --workers N` would run",
    )
    test = sub.add_parser("test-alert", help="send a test notification")
    test.add_argument("-c", "--config", default=None, metavar="PATH", help=config_help)
    test.add_argument(
        "--channel", default=None, metavar="NAME", help="only this channel (default: all enabled)"
    )
    export = sub.add_parser(
        "export-rules", help="write the rules as a Prometheus rules file (notes on stderr)"
    )
    export.add_argument("-c", "--config", default=None, metavar="PATH", help=config_help)
    export.add_argument(
        "-o", "--output", default=None, metavar="FILE", help="write here (default: stdout)"
    )
    imp = sub.add_parser(
        "import-alertmanager",
        help="write an alertmanager.yml's routing, receivers, inhibit rules and time intervals"
        " as TOML (notes and secret variables on stderr)",
    )
    imp.add_argument("file", metavar="alertmanager.yml", help="Alertmanager's configuration")
    imp.add_argument(
        "-o", "--output", default=None, metavar="FILE", help="write here (default: stdout)"
    )
    return parser


def _load(path: Path, err: TextIO) -> tuple[Config, tuple[ConfigIssue, ...]] | None:
    try:
        return load_config_and_warnings(path)
    except ConfigError as exc:
        print(str(exc), file=err)
        count = len(exc.issues)
        print(f"{path}: {count} error{'s' if count != 1 else ''}; configuration not used", file=err)
        return None


def _worker_count(text: str | None, err: TextIO) -> int | None:
    """`--workers`'s number of processes; 0 when it was not given, None (printed) if invalid."""
    if text is None:
        return 0
    from supervisor.app.workerplan import available_cores, parse_worker_count

    try:
        return parse_worker_count(text, cores=available_cores())
    except ValueError as exc:
        print(f"blipee-monitor: {exc}", file=err)
        return None


def _plan(config: Config, count: int, path: Path, err: TextIO) -> WorkerPlan | None:
    """The plan of `run --workers count`; None (every problem printed) when it cannot run."""
    from supervisor.app.workerplan import plan_workers

    try:
        return plan_workers(config, count, file=str(path))
    except ConfigError as exc:
        print(str(exc), file=err)
        print(f"{path}: cannot run {count} worker{'s' if count != 1 else ''}", file=err)
        return None


def _check_config(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    path = resolve_config_path(args.config)
    count = _worker_count(args.workers, err)
    if count is None:
        return EXIT_CONFIG
    loaded = _load(path, err)
    if loaded is None:
        return EXIT_CONFIG
    config, warnings = loaded
    out.write(summarize(config, str(path)))
    # Warnings do not change the exit status: the configuration is used as it is.
    for warning in warnings:
        print(f"warning: {warning}", file=err)
    if count:
        plan = _plan(config, count, path, err)
        if plan is None:
            return EXIT_CONFIG
        out.write(f"\nrun --workers {count}: {plan.describe()}\n")
    return EXIT_OK


def _run(args: argparse.Namespace, err: TextIO) -> int:
    path = resolve_config_path(args.config)
    count = _worker_count(args.workers, err)
    if count is None:
        return EXIT_CONFIG
    if count and args.worker is not None:
        print("blipee-monitor: --worker is set by --workers; give only --workers", file=err)
        return EXIT_CONFIG
    loaded = _load(path, err)
    if loaded is None:
        return EXIT_CONFIG
    config, warnings = loaded
    worker = None
    if args.worker is not None:  # one of the processes of `run --workers`
        # The parent holds a reload until this worker says it handles SIGHUP (`serve` tells it
        # on the ready pipe); one from elsewhere meanwhile must not end it (the default action):
        # it is reading the file now anyway.
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        from supervisor.app.workerplan import Worker, replica_base

        listen = args.worker_listen or config.server.listen
        base = replica_base(config, socket.gethostname())
        worker = Worker(args.worker, listen, base, args.worker_count)
        try:
            config = worker.apply(config, file=str(path))
        except ConfigError as exc:
            print(str(exc), file=err)
            print(f"{path}: configuration not used", file=err)
            return EXIT_CONFIG
    elif count and _plan(config, count, path, err) is None:
        return EXIT_CONFIG
    redactor = SecretRedactor(config.redaction_needles())
    configure_logging(
        format=config.log.format,
        level=config.log.level,
        stream=err,
        redactor=redactor,
        fields={"worker": worker.index} if worker is not None else {},
    )
    log = logger_for("main")
    log.info("configuration loaded", extra={"path": str(path)})
    if worker is None:  # the parent of workers has logged them
        for warning in warnings:
            log.warning("configuration warning: %s", warning)
    if count:
        from supervisor.app.workers import run_workers

        return run_workers(config, count, path=path)
    # Disabled channels are logged by the notify package as it builds the channels.
    from supervisor.app.lifecycle import run_app  # the actors are imported only to run them

    if worker is None:
        return run_app(config, path=path, env=os.environ, redactor=redactor)
    from supervisor.app.workers import signals_ready, wait_parent_gone

    return run_app(
        config,
        path=path,
        env=os.environ,
        redactor=redactor,
        adjust=partial(worker.apply, file=str(path)),
        stop_when=wait_parent_gone,
        signals_ready=signals_ready(args.worker_ready_fd),
    )


def _test_alert(args: argparse.Namespace, err: TextIO) -> int:
    path = resolve_config_path(args.config)
    loaded = _load(path, err)
    if loaded is None:
        return EXIT_CONFIG
    config = loaded[0]
    configure_logging(
        format=config.log.format,
        level=config.log.level,
        stream=err,
        redactor=SecretRedactor(config.redaction_needles()),
    )
    from supervisor.app.testalert import TestAlertError, send_test_alert

    try:
        sent = send_test_alert(config, channel=args.channel)
    except TestAlertError as exc:
        for line in exc.delivered:
            print(line)
        print(f"test-alert: {exc}", file=err)
        return exc.exit_status
    for line in sent:
        print(line)
    return EXIT_OK


def _metric_kinds(config: Config) -> dict[str, str]:
    """Each metric a rule may watch, by name, with its kind: what the monitor running `config`
    declares, read from the declarations themselves (an `App` built on `config`: an in-memory
    database, nothing served, nothing started, no environment), so no metric is left out."""
    import logging

    from actors.store import Database
    from supervisor.app.root import App

    # The build's warnings (a disabled channel, ...) are check-config's to report, not ours.
    logging.disable(logging.WARNING)
    try:
        with Database(":memory:") as database:
            app = App(config, database=database, serve_http=False, env={})
            return {handle.name: str(handle.kind) for handle in app.metrics.metrics()}
    finally:
        logging.disable(logging.NOTSET)


def _write_output(text: str, output: str | None, err: TextIO) -> int:
    if output is None:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"cannot write {output}: {exc.strerror or exc}", file=err)
        return EXIT_ERROR
    return EXIT_OK


def _export_rules(args: argparse.Namespace, err: TextIO) -> int:
    path = resolve_config_path(args.config)
    loaded = _load(path, err)
    if loaded is None:
        return EXIT_CONFIG
    config = loaded[0]
    from actors.rules.export import RulesExport, export_rules, render_rules_file
    from actors.rules.slo_export import slo_rule_groups

    export = export_rules(config.rules, _metric_kinds(config))
    if config.slos:  # each SLO's recording and burn-rate alerting rules, a group each
        groups = [*export.document["groups"], *slo_rule_groups(config.slos)]
        export = RulesExport({**export.document, "groups": groups}, export.notes)
    for note in export.notes:
        print(f"export-rules: {note}", file=err)
    return _write_output(render_rules_file(export, source=str(path)), args.output, err)


def _import_alertmanager(args: argparse.Namespace, err: TextIO) -> int:
    import yaml

    from actors.routing.amimport import import_alertmanager
    from actors.routing.exceptions import InvalidAlertmanagerConfig

    try:
        text = Path(args.file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"cannot read {args.file}: {getattr(exc, 'strerror', None) or exc}", file=err)
        return EXIT_ERROR
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        print(f"{args.file}: not valid YAML: {exc}".replace("\n", " "), file=err)
        return EXIT_CONFIG
    try:
        result = import_alertmanager(document, source=Path(args.file).name)
    except InvalidAlertmanagerConfig as exc:
        print(f"{args.file}: {exc}", file=err)
        return EXIT_CONFIG
    for note in result.notes:
        print(f"import-alertmanager: {note}", file=err)
    for variable in result.variables:
        print(
            f"import-alertmanager: secret: set {variable.name} (the value at {variable.path})",
            file=err,
        )
    return _write_output(result.toml, args.output, err)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit status (see module doc)."""
    err = sys.stderr
    args = _parser().parse_args(argv)
    try:
        if args.command == "check-config":
            return _check_config(args, sys.stdout, err)
        if args.command == "test-alert":
            return _test_alert(args, err)
        if args.command == "export-rules":
            return _export_rules(args, err)
        if args.command == "import-alertmanager":
            return _import_alertmanager(args, err)
        return _run(args, err)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:
        # Last resort: one line, never a traceback.
        print(f"blipee-monitor: error: {type(exc).__name__}: {exc}", file=err)
        return EXIT_ERROR


def console() -> NoReturn:
    """The process's entry point (the `blipee-monitor` console script, `python -m supervisor`):
    `main()`, then the exit without the interpreter's teardown (`supervisor.process_exit`),
    which for thousands of checks took about a second of a stop. A `SystemExit` of the argument
    parser (`--help`, `--version`, a wrong command line) leaves as usual."""
    from supervisor.process_exit import exit_now

    exit_now(main())

"""What `blipee-monitor run --workers N` runs in each process: pure configuration arithmetic.

A worker is a whole replica, the same program on the same file, with these keys overridden (the
user's file is never edited; the overrides are applied again to every reload of it):

    [cluster] mode          WORKER_MODE ("sharded": the checks are split over the live workers)
    [cluster] replica       "<replica or host name>-w<i>"   (host-w0, host-w1, ...)
    [cluster] siblings      every worker's replica name: a worker's first share of the checks
                            waits until it sees the others alive (at most 3 heartbeats), so the
                            first one up does not take every check only to hand most back
    [server]  listen        the one API address every worker shares (SO_REUSEPORT; a port 0 in
                            the file is resolved once by the parent, so all share the same one)
    [server]  metrics_listen  the configured port + i        (9464, 9465, ...; port 0 stays 0)
    [server]  reuse_port    true
    [storage] spool_path    "<stem>-w<i><suffix>"            (data/spool-w0.db: one per replica)

so N workers on one host are what N pods of a Deployment are on a cluster: replicas on one
PostgreSQL database, each scraped on its own /metrics address, behind one address for the API
(the kernel spreads the connections as a Service would), each with its own notification spool. See
docs/decisions/0014-workers-are-replicas.md.

Every function here raises `ConfigError` (an issue at the key concerned) for what cannot run,
so the command line prints it as it prints any configuration error (exit status 2) and a
worker's reload rejects it as it rejects an invalid file.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import PurePath
from typing import Literal

from pydantic import ValidationError

from actors.cluster.config import ClusterConfig
from actors.web.config import ServerConfig, parse_listen
from supervisor.config import Config, ConfigError, ConfigIssue

__all__ = [
    "MAX_WORKERS",
    "NEEDS_SHARED_STORAGE",
    "WORKER_MODE",
    "Worker",
    "WorkerPlan",
    "available_cores",
    "parse_worker_count",
    "plan_workers",
    "replica_base",
]

WORKER_MODE: Literal["redundant", "sharded"] = "sharded"
"""The `[cluster] mode` of every worker (the one line to change when sharded mode lands)."""

MAX_WORKERS = 128
"""More processes than this on one host is a typing mistake, not a plan."""

NEEDS_SHARED_STORAGE = (
    "run --workers needs [storage] url: the workers are replicas that share their state in"
    ' PostgreSQL (set [storage] url = "postgresql://...", or run without --workers)'
)


def available_cores() -> int:
    """The CPUs this process may run on (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def parse_worker_count(text: str, *, cores: int) -> int:
    """`--workers`'s value: a number from 1 to `MAX_WORKERS`, or "auto" (`cores`).

    Raises:
        ValueError: anything else (the message says what is accepted).
    """
    value = text.strip().lower()
    if value == "auto":
        return max(1, min(cores, MAX_WORKERS))
    if not value.isdigit() or not 1 <= int(value) <= MAX_WORKERS:
        raise ValueError(
            f"--workers takes a number of processes from 1 to {MAX_WORKERS}, or 'auto' (one per"
            f" core), got {text!r}"
        )
    return int(value)


def _with_port(listen: str, port: int) -> str:
    """`listen` ("host:port", IPv6 bracketed) with another port."""
    return f"{listen.rpartition(':')[0]}:{port}"


def _issues(error: ValidationError, file: str, section: str) -> list[ConfigIssue]:
    issues = []
    for problem in error.errors():
        message = str(problem["msg"]).removeprefix("Value error, ")
        path = (section, *(str(part) for part in problem["loc"]))
        issues.append(ConfigIssue(file, f"run --workers: {message}", path))
    return issues


@dataclass(frozen=True, slots=True)
class Worker:
    """Worker `index` of a `run --workers` host; `listen`: the API address all of them share;
    `base`: the first part of the replica names (`[cluster] replica`, else the host name);
    `count`: how many workers the parent started (0: not known, no siblings awaited)."""

    index: int
    listen: str
    base: str
    count: int = 0

    @property
    def siblings(self) -> tuple[str, ...]:
        """The replica names of the `count` workers started together, this one's included."""
        return tuple(f"{self.base}-w{index}" for index in range(self.count))

    @property
    def replica(self) -> str:
        """This worker's replica name: "<base>-w<index>"."""
        return f"{self.base}-w{self.index}"

    def metrics_listen(self, config: Config) -> str:
        """The configured `metrics_listen` with its port moved up by `index` (0 stays 0).

        Raises:
            ValueError: the port would pass 65535.
        """
        configured = config.server.metrics_listen
        port = parse_listen(configured)[1]
        if port == 0:
            return configured
        if port + self.index > 65535:
            raise ValueError(
                f"run --workers: worker {self.index} would serve /metrics on port"
                f" {port + self.index}, past 65535; give metrics_listen a lower port"
            )
        return _with_port(configured, port + self.index)

    def spool_path(self, config: Config) -> str:
        """The configured `spool_path` with "-w<index>" after its stem (each replica has its own
        spool file; a worker started again finds its predecessor's)."""
        path = PurePath(config.storage.spool_path)
        return str(path.with_name(f"{path.stem}-w{self.index}{path.suffix}"))

    def apply(self, config: Config, *, file: str = "<config>") -> Config:
        """`config` as this worker runs it (see the module docstring); `file` names it in
        errors.

        Raises:
            ConfigError: no `[storage] url`, or an overridden key is not valid (a port past
                65535, /metrics on the API's address, a replica name too long, a mode refused).
        """
        if not config.storage.shared:
            raise ConfigError([ConfigIssue(file, NEEDS_SHARED_STORAGE, ("storage",))])
        try:
            metrics = self.metrics_listen(config)
        except ValueError as exc:
            raise ConfigError([ConfigIssue(file, str(exc), ("server", "metrics_listen"))]) from None
        # The overridden keys are checked by their models' own validators (alone: the other
        # keys are the file's, already valid); the rest of each section stays as it is.
        try:
            ServerConfig.model_validate({"listen": self.listen, "metrics_listen": metrics})
        except ValidationError as exc:
            raise ConfigError(_issues(exc, file, "server")) from None
        try:
            ClusterConfig.model_validate(
                {"mode": WORKER_MODE, "replica": self.replica, "siblings": self.siblings}
            )
        except ValidationError as exc:
            raise ConfigError(_issues(exc, file, "cluster")) from None
        storage = config.storage.model_copy(update={"spool_path": self.spool_path(config)})
        server = config.server.model_copy(
            update={"listen": self.listen, "metrics_listen": metrics, "reuse_port": True}
        )
        cluster = (config.cluster or ClusterConfig()).model_copy(
            update={"mode": WORKER_MODE, "replica": self.replica, "siblings": self.siblings}
        )
        return config.model_copy(update={"server": server, "cluster": cluster, "storage": storage})


def replica_base(config: Config, host: str) -> str:
    """The first part of the workers' replica names: `[cluster] replica`, else `host`."""
    if config.cluster is not None and config.cluster.replica:
        return config.cluster.replica
    return host


@dataclass(frozen=True, slots=True)
class WorkerPlan:
    """The workers of a host and the configuration each runs (`plan_workers`)."""

    workers: tuple[Worker, ...]
    configs: tuple[Config, ...]

    def describe(self) -> str:
        """One line: how many, which replicas, the shared address and each /metrics."""
        first = self.configs[0]
        mode = first.cluster.mode if first.cluster is not None else WORKER_MODE
        names = ", ".join(worker.replica for worker in self.workers)
        metrics = ", ".join(config.server.metrics_listen for config in self.configs)
        count = len(self.workers)
        return (
            f"{count} worker process{'es' if count != 1 else ''}, {mode} replicas"
            f" {names}; API and probes on {first.server.listen} (shared, SO_REUSEPORT);"
            f" /metrics on {metrics}"
        )


def plan_workers(
    config: Config,
    count: int,
    *,
    file: str = "<config>",
    host: str | None = None,
    listen: str | None = None,
) -> WorkerPlan:
    """The `count` workers of `config` and the configuration of each. `host`: the host name
    (default: this one's); `listen`: the API address they share (default: the configured one).

    Raises:
        ConfigError: what `Worker.apply` raises for any of them.
    """
    base = replica_base(config, host if host is not None else socket.gethostname())
    shared = listen if listen is not None else config.server.listen
    workers = tuple(Worker(index, shared, base, count) for index in range(count))
    return WorkerPlan(workers, tuple(worker.apply(config, file=file) for worker in workers))

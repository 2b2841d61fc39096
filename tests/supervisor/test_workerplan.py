"""`run --workers`: the worker count and each worker's overrides, as pure functions."""

from __future__ import annotations

import pytest

from supervisor.app.cluster import sharding
from supervisor.app.workerplan import (
    MAX_WORKERS,
    NEEDS_SHARED_STORAGE,
    WORKER_MODE,
    Worker,
    parse_worker_count,
    plan_workers,
    replica_base,
)
from supervisor.config import Config, ConfigError, parse_config

URL = "postgresql://monitor@db:5432/monitor"


def _config(
    extra: str = "", *, listen: str = "0.0.0.0:3000", metrics: str = "0.0.0.0:9464"
) -> Config:
    text = (
        f'[server]\nlisten = "{listen}"\nmetrics_listen = "{metrics}"\nmax_connections = 50\n'
        f'[storage]\nurl = "{URL}"\n{extra}'
    )
    return parse_config(text, env={})


@pytest.mark.parametrize(
    ("text", "count"),
    [("auto", 4), ("AUTO", 4), ("1", 1), ("3", 3), (f"{MAX_WORKERS}", MAX_WORKERS)],
)
def test_worker_count(text: str, count: int) -> None:
    assert parse_worker_count(text, cores=4) == count


def test_auto_is_at_least_one_and_at_most_the_limit() -> None:
    assert parse_worker_count("auto", cores=0) == 1
    assert parse_worker_count("auto", cores=1000) == MAX_WORKERS


@pytest.mark.parametrize("text", ["0", "-1", "two", "", "1.5", f"{MAX_WORKERS + 1}"])
def test_a_bad_worker_count_says_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match=r"--workers takes a number of processes from 1 to 128"):
        parse_worker_count(text, cores=2)


def test_a_worker_overrides_its_keys_and_keeps_the_rest() -> None:
    config = _config('[cluster]\nheartbeat = "500ms"\n')
    worker = Worker(2, "0.0.0.0:3000", "web-1")
    applied = worker.apply(config)
    assert applied.server.listen == "0.0.0.0:3000"
    assert applied.server.metrics_listen == "0.0.0.0:9466"
    assert applied.server.reuse_port is True
    assert applied.server.max_connections == 50
    assert applied.cluster is not None
    assert (applied.cluster.replica, applied.cluster.mode) == ("web-1-w2", WORKER_MODE)
    assert applied.cluster.heartbeat == 0.5
    assert applied.storage.spool_path == "data/spool-w2.db"
    assert applied.storage.url == config.storage.url
    assert applied.storage.spool_limit == config.storage.spool_limit
    assert applied.checks == config.checks
    # Applying it again (a reload of the same file) gives the same configuration.
    assert worker.apply(config) == applied


def test_the_shared_address_replaces_the_configured_one() -> None:
    applied = Worker(0, "127.0.0.1:41234", "h").apply(_config(listen="127.0.0.1:0"))
    assert applied.server.listen == "127.0.0.1:41234"


@pytest.mark.parametrize(
    ("metrics", "index", "expected"),
    [
        ("0.0.0.0:9464", 0, "0.0.0.0:9464"),
        ("0.0.0.0:9464", 3, "0.0.0.0:9467"),
        ("127.0.0.1:0", 5, "127.0.0.1:0"),
        ("[::1]:9000", 1, "[::1]:9001"),
        ("metrics.local:65535", 0, "metrics.local:65535"),
    ],
)
def test_metrics_port_moves_up_by_the_index(metrics: str, index: int, expected: str) -> None:
    assert Worker(index, "0.0.0.0:3000", "h").metrics_listen(_config(metrics=metrics)) == expected


def test_a_metrics_port_past_65535_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"server.metrics_listen: run --workers: worker 2 would"):
        Worker(2, "0.0.0.0:3000", "h").apply(_config(metrics="0.0.0.0:65534"), file="m.toml")


def test_a_metrics_port_on_the_api_address_is_refused() -> None:
    config = _config(listen="0.0.0.0:3000", metrics="0.0.0.0:2999")
    Worker(0, "0.0.0.0:3000", "h").apply(config)
    with pytest.raises(ConfigError, match=r"m.toml: server: run --workers: metrics_listen"):
        Worker(1, "0.0.0.0:3000", "h").apply(config, file="m.toml")


def test_without_shared_storage_a_worker_is_refused() -> None:
    config = parse_config('[storage]\npath = "m.db"\n', env={})
    with pytest.raises(ConfigError) as caught:
        Worker(0, "0.0.0.0:3000", "h").apply(config, file="m.toml")
    assert str(caught.value) == f"m.toml: storage: {NEEDS_SHARED_STORAGE}"


def test_a_replica_name_too_long_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"cluster.replica: run --workers: replica must be"):
        Worker(0, "0.0.0.0:3000", "h" * 126).apply(_config())


def test_replica_names_start_with_the_configured_replica_else_the_host() -> None:
    assert replica_base(_config(), "vm") == "vm"
    assert replica_base(_config('[cluster]\nreplica = ""\n'), "vm") == "vm"
    assert replica_base(_config('[cluster]\nreplica = "pod-7"\n'), "vm") == "pod-7"


def test_plan_describes_every_worker() -> None:
    plan = plan_workers(_config(), 2, host="vm")
    assert [w.replica for w in plan.workers] == ["vm-w0", "vm-w1"]
    assert plan.describe() == (
        f"2 worker processes, {WORKER_MODE} replicas vm-w0, vm-w1; API and probes on"
        " 0.0.0.0:3000 (shared, SO_REUSEPORT); /metrics on 0.0.0.0:9464, 0.0.0.0:9465"
    )
    assert plan_workers(_config(), 1, host="vm").describe().startswith("1 worker process,")


def test_each_worker_knows_its_siblings_and_its_share_waits_for_them() -> None:
    plan = plan_workers(_config('[cluster]\nheartbeat = "500ms"\n'), 3, host="vm")
    for config in plan.configs:
        assert config.cluster is not None
        assert config.cluster.siblings == ("vm-w0", "vm-w1", "vm-w2")
    ownership = sharding(plan.configs[1], "vm-w1")
    assert ownership is not None
    ownership.update(["vm-w1"], now=0.0)  # alone at its first beat: it waits
    ownership.update(["vm-w1", "vm-w2"], now=1.49)  # up to 3 heartbeats
    assert ownership.waiting
    ownership.update(["vm-w1", "vm-w2"], now=1.5)
    assert ownership.assigned
    assert ownership.missing == {"vm-w0"}
    # A worker told no count (an older parent) and a replica started alone wait for nobody.
    alone = Worker(0, "0.0.0.0:3000", "vm").apply(_config())
    assert alone.cluster is not None
    assert alone.cluster.siblings == ()
    solo = sharding(_config('[cluster]\nmode = "sharded"\n'), "r1")
    assert solo is not None
    solo.update(["r1"], now=0.0)
    assert solo.assigned


def test_siblings_in_the_file_are_replica_names() -> None:
    config = _config('[cluster]\nmode = "sharded"\nsiblings = ["a", "b"]\n')
    assert config.cluster is not None
    assert config.cluster.siblings == ("a", "b")
    with pytest.raises(ConfigError, match=r"siblings must be replica names"):
        _config('[cluster]\nsiblings = ["a b"]\n')


@pytest.mark.parametrize(
    ("configured", "expected"),
    [("data/spool.db", "data/spool-w1.db"), ("/var/lib/m/spool", "/var/lib/m/spool-w1")],
)
def test_each_worker_has_its_own_spool_file(configured: str, expected: str) -> None:
    config = _config(f'spool_path = "{configured}"\n')
    assert Worker(1, "0.0.0.0:3000", "h").apply(config).storage.spool_path == expected

"""[cluster] as check-config and the application see it."""

from __future__ import annotations

import os
import socket
import textwrap

from supervisor.config import parse_config, summarize

SOURCE = textwrap.dedent(
    """
    [storage]
    url = "postgresql://monitor:${PGPASSWORD}@db:5432/monitor"
    [cluster]
    heartbeat = "500ms"
    """
)


def test_defaults_name_the_replica_after_host_and_pid() -> None:
    config = parse_config(SOURCE, file="c.toml", env={"PGPASSWORD": "hunter2"})
    assert config.cluster is not None
    assert config.cluster.mode == "redundant"
    assert config.cluster.replica_name() == f"{socket.gethostname()}-{os.getpid()}"
    assert config.cluster.lease == 1.5
    assert "hunter2" in config.secret_values()
    text = summarize(config, "c.toml")
    assert "hunter2" not in text
    assert "storage: PostgreSQL postgresql://monitor:***@db:5432/monitor" in text
    assert "cluster: replica <host name + pid>, redundant, heartbeat 500ms" in text


def test_a_named_replica_keeps_its_name() -> None:
    config = parse_config(
        SOURCE.replace('heartbeat = "500ms"', 'replica = "web-1"'),
        file="c.toml",
        env={"PGPASSWORD": "x"},
    )
    assert config.cluster is not None
    assert config.cluster.replica_name() == "web-1"
    assert config.cluster.heartbeat == 2.0

"""deploy/kubernetes/replicas/: two replicas on PostgreSQL, valid against the Kubernetes schemas,
with a config.toml the monitor accepts and the pod's name as the replica's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

from tests.e2e.harness import ROOT, cli

FILE = ROOT / "deploy" / "kubernetes" / "replicas" / "deployment-postgresql.yaml"
VERSION = "1.30.0"
DOCUMENTS: dict[str, dict[str, Any]] = {
    document["kind"]: document for document in yaml.safe_load_all(FILE.read_text())
}


def test_every_document_is_valid_against_the_schemas() -> None:
    assert set(DOCUMENTS) == {"ConfigMap", "Deployment", "PodDisruptionBudget"}
    for document in DOCUMENTS.values():
        kubernetes_validate.validate(document, VERSION, strict=True)


def test_two_replicas_roll_one_at_a_time_and_one_stays_up() -> None:
    spec = DOCUMENTS["Deployment"]["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert DOCUMENTS["PodDisruptionBudget"]["spec"]["minAvailable"] == 1
    volumes = {v["name"] for v in spec["template"]["spec"]["volumes"]}
    assert volumes == {"config", "tmp", "spool"}  # nothing but the spool kept on the pod
    [container] = spec["template"]["spec"]["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    config = DOCUMENTS["ConfigMap"]["data"]["config.toml"]
    assert f'spool_path = "{mounts["spool"]}/spool.db"' in config


def test_the_config_is_accepted_and_names_each_replica_after_its_pod(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(DOCUMENTS["ConfigMap"]["data"]["config.toml"])
    env = {
        "BLIPEE_API_TOKEN": "a-token-from-the-secret-0123456789",
        "PGPASSWORD": "from-the-secret",
        "HOSTNAME": "blipee-monitor-7d9f-x2x4q",
    }
    result = cli("check-config", "-c", str(config), cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "storage: PostgreSQL postgresql://monitor:***@postgres:5432/monitor" in result.stdout
    assert "cluster: replica blipee-monitor-7d9f-x2x4q, redundant" in result.stdout
    assert "from-the-secret" not in result.stdout
    container = DOCUMENTS["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert {"BLIPEE_API_TOKEN", "PGPASSWORD"} <= {e["name"] for e in container["env"]}

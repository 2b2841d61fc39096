"""deploy/kubernetes/: valid against the Kubernetes schemas, the seed's probes, a safe pod, and a
ConfigMap whose config.toml the monitor accepts.

The schemas are those the `kubernetes-validate` package ships (strict: unknown fields are
errors). The ServiceMonitor is a Prometheus Operator resource the package has no schema for; it is
checked against the Service it selects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.e2e.harness import ROOT, cli

KUBE = ROOT / "deploy" / "kubernetes"
VERSION = "1.30.0"


def _documents() -> dict[str, dict[str, Any]]:
    """Every resource the kustomization applies, by kind."""
    kustomization = yaml.safe_load((KUBE / "kustomization.yaml").read_text())
    resources: dict[str, dict[str, Any]] = {}
    for name in kustomization["resources"]:
        for document in yaml.safe_load_all((KUBE / name).read_text()):
            assert document["kind"] not in resources, f"{name}: a second {document['kind']}"
            resources[document["kind"]] = document
    return resources


RESOURCES = _documents()


@pytest.mark.parametrize(
    "path", sorted(p.name for p in KUBE.glob("*.yaml") if p.name != "kustomization.yaml")
)
def test_each_manifest_is_valid_against_the_schemas(path: str) -> None:
    for document in yaml.safe_load_all((KUBE / path).read_text()):
        if document["kind"] == "ServiceMonitor":
            continue
        kubernetes_validate.validate(document, VERSION, strict=True)


def test_the_kustomization_applies_every_manifest_but_the_secret_example() -> None:
    assert set(RESOURCES) == {
        "ConfigMap",
        "PersistentVolumeClaim",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "ServiceMonitor",
    }


def _container() -> dict[str, Any]:
    containers = RESOURCES["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def test_probes_are_the_seeds() -> None:
    container = _container()
    assert container["livenessProbe"] == {
        "httpGet": {"path": "/api/health/live", "port": 3000},
        "initialDelaySeconds": 30,
        "periodSeconds": 10,
    }
    assert container["readinessProbe"] == {
        "httpGet": {"path": "/api/health/ready", "port": 3000},
        "initialDelaySeconds": 5,
        "periodSeconds": 5,
    }


def test_the_pod_runs_as_non_root_on_a_read_only_root() -> None:
    pod = RESOURCES["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    context = _container()["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    # preStop lets endpoints drop the pod before SIGTERM; the grace period covers it and the
    # monitor's own drain (shutdown_timeout).
    pre_stop = _container()["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] > pre_stop + 20


def test_service_and_service_monitor_select_the_pods() -> None:
    pod_labels = RESOURCES["Deployment"]["spec"]["template"]["metadata"]["labels"]
    service = RESOURCES["Service"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    container_ports = {p["name"] for p in _container()["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= container_ports
    monitor = RESOURCES["ServiceMonitor"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    service_ports = {p["name"] for p in service["spec"]["ports"]}
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    assert "metrics" in service_ports
    budget = RESOURCES["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]
    assert budget.items() <= pod_labels.items()


def test_the_config_map_is_a_config_the_monitor_accepts(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(RESOURCES["ConfigMap"]["data"]["config.toml"])
    env = {"BLIPEE_API_TOKEN": "a-token-from-the-secret-0123456789"}
    result = cli("check-config", "-c", str(config), cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    # Every variable the config reads is set by the Deployment (from the Secret) or defaulted.
    names = {e["name"] for e in _container()["env"]}
    assert {"BLIPEE_API_TOKEN", "SLACK_WEBHOOK_URL", "PAGERDUTY_ROUTING_KEY"} <= names
    missing = cli("check-config", "-c", str(config), cwd=tmp_path)
    assert missing.returncode == 2
    assert "BLIPEE_API_TOKEN" in missing.stdout + missing.stderr

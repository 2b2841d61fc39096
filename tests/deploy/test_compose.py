"""deploy/compose/ and deploy/prometheus/: every file a service mounts exists, and each config is
accepted by the program that reads it (promtool, amtool, the monitor's check-config).

Images are not built or run here (no container engine in CI); the Dockerfile's instructions are
checked for what the image promises: non-root, the liveness HEALTHCHECK, SIGTERM.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.e2e.harness import ROOT, cli, require_binary

COMPOSE = ROOT / "deploy" / "compose"


def _compose() -> dict[str, object]:
    document = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
    assert isinstance(document, dict)
    return document


def test_every_mounted_file_exists() -> None:
    services = _compose()["services"]
    assert isinstance(services, dict)
    assert {"monitor-1", "monitor-2", "postgres", "prometheus", "alertmanager", "grafana",
            "otel-collector", "jaeger"} <= set(services)  # fmt: skip
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (COMPOSE / source).resolve().exists(), f"{name}: {source}"


def test_the_monitor_replicas_probe_liveness_and_stop_on_sigterm() -> None:
    services = _compose()["services"]
    assert isinstance(services, dict)
    for name in ("monitor-1", "monitor-2"):
        monitor = services[name]
        assert "/api/health/live" in " ".join(monitor["healthcheck"]["test"])
        assert monitor["stop_signal"] == "SIGTERM"
    dockerfile = (ROOT / "Dockerfile").read_text()
    for line in ("STOPSIGNAL SIGTERM", "USER 10001", "HEALTHCHECK", "/api/health/live"):
        assert line in dockerfile


def test_prometheus_config_and_its_rules_pass_promtool(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    prometheus = ROOT / "deploy" / "prometheus"
    # As mounted in the container: the rule file beside the config, by its absolute path there.
    config = (prometheus / "prometheus.yml").read_text()
    assert "/etc/prometheus/rules.yml" in config
    (tmp_path / "rules.yml").write_text((prometheus / "rules.yml").read_text())
    (tmp_path / "prometheus.yml").write_text(
        config.replace("/etc/prometheus/rules.yml", str(tmp_path / "rules.yml"))
    )
    result = subprocess.run(
        [promtool, "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_alertmanager_config_passes_amtool() -> None:
    amtool = require_binary("amtool")
    result = subprocess.run(
        [amtool, "check-config", str(COMPOSE / "alertmanager.yml")],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_monitor_config_passes_check_config(tmp_path: Path) -> None:
    env = {"BLIPEE_API_TOKEN": "compose-token-0123456789", "POSTGRES_PASSWORD": "secret"}
    result = cli("check-config", "-c", str(COMPOSE / "config.toml"), cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stdout + result.stderr

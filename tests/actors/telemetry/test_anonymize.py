"""Label anonymisation: applied where samples enter the store; a key is required to turn it on."""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from actors.clock import FixedClock
from actors.models import CheckResult, CheckStatus
from actors.state import HealthState
from actors.telemetry.anonymize import Anonymizer
from actors.telemetry.catalog import declare_catalog
from actors.telemetry.recording import Telemetry
from actors.telemetry.store import MetricStore
from supervisor.config import ConfigError, parse_config

ROOT = Path(__file__).resolve().parents[3]
KEY = "test-key"


def _token(value: str) -> str:
    return hmac.new(KEY.encode(), value.encode(), hashlib.sha256).hexdigest()[:16]


@pytest.fixture
def anon_store() -> MetricStore:
    store = MetricStore(
        clock=FixedClock(1_700_000_000.0), anonymizer=Anonymizer(["organization", "check"], KEY)
    )
    declare_catalog(store)
    return store


def test_every_way_into_the_store_is_anonymised(anon_store: MetricStore) -> None:
    heard: list[tuple[str, tuple[str, ...]]] = []
    anon_store.add_listener(lambda name, values: heard.append((name, values)))
    telemetry = Telemetry(store=anon_store)
    telemetry.record_user_message("esg", "org-123")
    telemetry.record_business_metric("network_connections", 5, {"organization": "org-123"})
    telemetry.gauge("org_reports", "Reports.", ["organization"]).set(1, {"organization": "org-123"})
    anon_store.record("benchmarks_performed_total", 1, {"organization": "org-123"})
    anon_store.set_counter_total("benchmarks_performed_total", 4, {"organization": "org-123"})
    anon_store.handle("emissions_tracked_kg_total").record(("org-123", "scope1"), 2.0, 1.7e9)
    health = HealthState(checks={"org-123-db": True}, recorder=anon_store, clock=FixedClock(1.7e9))
    health.publish(
        CheckResult(
            check="org-123-db",
            status=CheckStatus.PASS,
            message="",
            latency_seconds=0.1,
            timestamp=1.7e9,
            observed=CheckStatus.PASS,
        )
    )
    registry = CollectorRegistry()
    registry.register(anon_store.collector())
    text = generate_latest(registry).decode()
    assert "org-123" not in text
    assert "org-123" not in repr(heard)
    for handle in anon_store.metrics():
        assert "org-123" not in repr(list(handle.series))
    token = _token("org-123")
    assert f'user_messages_total{{intent="esg",organization="{token}"}} 1.0' in text
    assert f'benchmarks_performed_total{{organization="{token}"}} 4.0' in text
    assert f'org_reports{{organization="{token}"}} 1.0' in text
    # Listeners get the stored values, which the store takes back.
    name, values = next(h for h in heard if h[0] == "network_connections_active")
    assert anon_store.aggregate_series(name, [values], {}, "last", 60) == {
        (("organization", token),): 5.0
    }


def test_no_anonymiser_keeps_values() -> None:
    store = MetricStore(clock=FixedClock(1.7e9), anonymizer=Anonymizer())
    declare_catalog(store)
    assert store.anonymizer is None
    Telemetry(store=store).record_user_message("esg", "org-123")
    assert store.aggregate("user_messages_total", {}, "last", 60) == {
        (("intent", "esg"), ("organization", "org-123")): 1.0
    }


def test_spans_and_the_agent_registry_use_the_stores_anonymiser() -> None:
    from actors.telemetry.agents import AgentRegistry

    store = MetricStore(clock=FixedClock(1.7e9), anonymizer=Anonymizer(["agent"], KEY))
    declare_catalog(store)
    telemetry = Telemetry(store=store, agents=AgentRegistry())
    telemetry.record_agent_execution("carbon-hunter", 0.1, True)
    assert telemetry.agents is not None
    assert telemetry.agents.status(_token("carbon-hunter"), 1.7e9) is not None
    assert telemetry.agents.status("carbon-hunter", 1.7e9) is None
    assert store.aggregate("agent_execution_duration_seconds", {}, "count", 60) == {
        (("agent", _token("carbon-hunter")),): 1.0
    }
    assert telemetry.anonymizer.attributes({"agent": "carbon-hunter"}) == {
        "agent": _token("carbon-hunter")
    }


NO_KEY = """[security]
anonymize_labels = ["organization"]
anonymize_key = "${LABEL_HMAC_KEY:-}"
"""


def test_labels_without_a_key_are_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(NO_KEY, env={})
    message = str(caught.value)
    assert "<config>:3:1: security.anonymize_key:" in message
    assert "anonymize_key" in message
    assert "LABEL_HMAC_KEY" in message
    # With the key, the same file is valid.
    config = parse_config(NO_KEY, env={"LABEL_HMAC_KEY": "k"})
    assert config.security.anonymize_labels == ("organization",)


def test_default_anonymises_nothing_and_needs_no_key() -> None:
    assert parse_config("", env={}).security.anonymize_labels == ()
    for path in (ROOT / "config.toml", ROOT / "supervisor" / "default_config.toml"):
        assert parse_config(path.read_text(), env={}).security.anonymize_labels == ()


@pytest.mark.parametrize("labels", ['["bad-name"]', '["__x"]', '["a", "a"]'])
def test_bad_label_names_are_config_errors(labels: str) -> None:
    with pytest.raises(ConfigError, match="anonymize_labels"):
        parse_config(f'[security]\nanonymize_labels = {labels}\nanonymize_key = "k"\n', env={})


@pytest.mark.parametrize("command", ["check-config", "run"])
def test_check_config_and_run_report_a_missing_key_alike(tmp_path: Path, command: str) -> None:
    path = tmp_path / "m.toml"
    path.write_text(NO_KEY)
    result = subprocess.run(
        [sys.executable, "-m", "supervisor", command, "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2, result.stderr
    assert f"{path}:3:1: security.anonymize_key:" in result.stderr
    assert "set anonymize_key" in result.stderr
    assert "Traceback" not in result.stderr

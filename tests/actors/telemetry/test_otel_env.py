"""OTEL_* variables: resolved as the installed OpenTelemetry Python SDK resolves them.

The differential tests set the same variables in the process environment (where the SDK reads
them) and in the mapping given to `resolve_otel`/`build_otel`, and compare what each built.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider, sampling
from pydantic import SecretStr

from actors.clock import FixedClock
from actors.telemetry.config import TelemetryConfig
from actors.telemetry.exceptions import OtelEnvError
from actors.telemetry.otel import OtelSetup, build_otel, resolve_otel
from actors.telemetry.store import MetricStore
from supervisor.config import ConfigError, parse_config

OTEL_VARS = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_METRIC_EXPORT_INTERVAL",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
)
SDK_DEFAULT_HEADERS = {"content-type", "user-agent"}


@pytest.fixture
def sdk_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The process environment without any OTEL_* variable (the SDK's side of the comparison)."""
    for name in OTEL_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _set(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def _store() -> MetricStore:
    return MetricStore(clock=FixedClock(1.7e9))


def _exporter_view(exporter: Any) -> tuple[str, float, dict[str, str]]:
    client = exporter._client
    headers = {k.lower(): v for k, v in client._headers.items()}
    return (
        exporter._endpoint,
        client._timeout,
        {k: v for k, v in headers.items() if k not in SDK_DEFAULT_HEADERS},
    )


def _ours(setup: OtelSetup) -> tuple[Any, Any]:
    assert setup.tracer_provider is not None
    assert setup.metrics is not None
    processor = setup.tracer_provider._active_span_processor._span_processors[0]
    return processor.span_exporter, setup.metrics._exporter  # type: ignore[attr-defined]


EXPORT_CASES = [
    {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/",
        "OTEL_EXPORTER_OTLP_HEADERS": "X-Team=ops,authorization=Bearer%20abc,liberal=a b",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "2.5",
    },
    {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/base",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces:4318/custom/path",
        "OTEL_EXPORTER_OTLP_HEADERS": "x-all=1",
        "OTEL_EXPORTER_OTLP_METRICS_HEADERS": "x-metrics=2",
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "3",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "7",
    },
    {
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://m:4318/v1/metrics",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:4318/v1/traces",
    },
]


@pytest.mark.parametrize("env", EXPORT_CASES)
def test_endpoints_headers_and_timeouts_match_the_sdk(
    sdk_env: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    setup = build_otel(TelemetryConfig(), store=_store(), environ=env)
    ours_traces, ours_metrics = _ours(setup)
    _set(sdk_env, env)
    # (ours were built before the process environment held the variables)
    sdk_traces, sdk_metrics = OTLPSpanExporter(), OTLPMetricExporter()
    assert _exporter_view(ours_traces) == _exporter_view(sdk_traces)
    assert _exporter_view(ours_metrics) == _exporter_view(sdk_metrics)
    setup.shutdown()


def test_the_signal_endpoint_alone_exports_only_that_signal(sdk_env: pytest.MonkeyPatch) -> None:
    env = {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://m:4318/v1/metrics"}
    setup = build_otel(TelemetryConfig(), store=_store(), environ=env)
    assert setup.metrics is not None
    assert setup.tracer_provider is None
    assert not setup.enabled


RESOURCE_CASES = [
    {
        "OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attrs, team = esg%20ops,"
        "deployment.environment=staging,url=a=b",
        "OTEL_SERVICE_NAME": "svc",
    },
    {"OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attrs,k=v"},
    {"OTEL_SERVICE_NAME": "only-name"},
]


@pytest.mark.parametrize("env", RESOURCE_CASES)
def test_resource_attributes_match_the_sdk(
    sdk_env: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    full = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", **env}
    setup = build_otel(TelemetryConfig(), store=_store(), environ=full)
    assert setup.resource is not None
    ours = dict(setup.resource.attributes)
    _set(sdk_env, env)
    sdk = dict(Resource.create().attributes)
    for key, value in sdk.items():
        if key.startswith(("process.", "host.", "os.", "service.instance")):
            continue  # other detectors of Resource.create
        assert ours[key] == value, key
    setup.shutdown()


SAMPLER_CASES = [
    {},
    {"OTEL_TRACES_SAMPLER": "always_off"},
    {"OTEL_TRACES_SAMPLER": "always_on", "OTEL_TRACES_SAMPLER_ARG": "0.3"},
    {"OTEL_TRACES_SAMPLER": "parentbased_always_off"},
    {"OTEL_TRACES_SAMPLER": "TraceIdRatio", "OTEL_TRACES_SAMPLER_ARG": "0.25"},
    {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5"},
    {"OTEL_TRACES_SAMPLER": "traceidratio"},
]


@pytest.mark.parametrize("env", SAMPLER_CASES)
def test_sampler_matches_the_sdk(sdk_env: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    full = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", **env}
    setup = build_otel(TelemetryConfig(), store=_store(), environ=full)
    assert setup.tracer_provider is not None
    _set(sdk_env, env)
    sdk: sampling.Sampler = sampling._get_from_env_or_default()
    assert setup.tracer_provider.sampler.get_description() == sdk.get_description()
    assert TracerProvider().sampler.get_description() == sdk.get_description()
    setup.shutdown()


@pytest.mark.parametrize("interval", ["250", "1500.5"])
def test_metric_export_interval_matches_the_sdk(sdk_env: pytest.MonkeyPatch, interval: str) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_METRIC_EXPORT_INTERVAL": interval}
    settings = resolve_otel(TelemetryConfig(), env)
    assert settings is not None
    sdk_env.setenv("OTEL_METRIC_EXPORT_INTERVAL", interval)
    reader = PeriodicExportingMetricReader(ConsoleMetricExporter(out=io.StringIO()))
    try:
        assert settings.metrics_interval * 1000 == pytest.approx(reader._export_interval_millis)
    finally:
        reader.shutdown()


def test_defaults_without_variables() -> None:
    settings = resolve_otel(TelemetryConfig(otlp_endpoint="http://c:4318/"), {})
    assert settings is not None
    assert settings.traces_endpoint == "http://c:4318/v1/traces"
    assert settings.metrics_endpoint == "http://c:4318/v1/metrics"
    assert (settings.traces_timeout, settings.metrics_interval) == (10.0, 60.0)
    assert (settings.sampler, settings.sampler_ratio) == ("parentbased_always_on", None)
    assert settings.resource_attributes["service.name"] == "blipee-os"
    assert settings.resource_attributes["deployment.environment"] == "production"
    assert resolve_otel(TelemetryConfig(), {}) is None


def test_toml_keys_win_over_the_variables() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:4318",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://env-traces:4318/v1/traces",
        "OTEL_EXPORTER_OTLP_HEADERS": "api-key=from-env,x-team=ops",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "7",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_SERVICE_NAME": "env-service",
        "OTEL_RESOURCE_ATTRIBUTES": "team=env,deployment.environment=env-env,region=eu",
        "OTEL_METRIC_EXPORT_INTERVAL": "1000",
        "OTEL_TRACES_SAMPLER": "always_off",
        "OTEL_API_KEY": "env-key",
    }
    config = TelemetryConfig(
        otlp_endpoint="http://toml:4318",
        otlp_api_key=SecretStr("toml-key"),
        otlp_protocol="http/protobuf",
        otlp_timeout="2s",
        service_name="toml-service",
        environment="toml-env",
        resource_attributes={"team": "toml"},
        metrics_export_interval="30s",
        trace_sample_ratio=0.5,
    )
    settings = resolve_otel(config, env)
    assert settings is not None
    assert settings.traces_endpoint == "http://toml:4318/v1/traces"
    assert settings.metrics_endpoint == "http://toml:4318/v1/metrics"
    assert settings.traces_headers == {"api-key": "toml-key", "x-team": "ops"}
    assert (settings.traces_timeout, settings.metrics_timeout) == (2.0, 2.0)
    assert settings.metrics_interval == 30.0
    assert (settings.sampler, settings.sampler_ratio) == ("parentbased_traceidratio", 0.5)
    attrs = settings.resource_attributes
    assert attrs["service.name"] == "toml-service"
    assert attrs["deployment.environment"] == attrs["deployment.environment.name"] == "toml-env"
    assert (attrs["team"], attrs["region"]) == ("toml", "eu")
    # and the variables apply once the keys are unset
    from_env = resolve_otel(TelemetryConfig(), {**env, "OTEL_EXPORTER_OTLP_PROTOCOL": ""})
    assert from_env is not None
    assert from_env.traces_headers == {"api-key": "env-key", "x-team": "ops"}
    assert from_env.resource_attributes["deployment.environment"] == "env-env"
    assert from_env.resource_attributes["service.name"] == "env-service"


BAD = [
    ("OTEL_EXPORTER_OTLP_TIMEOUT", "10s", "not a number"),
    ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "-1", "positive"),
    ("OTEL_METRIC_EXPORT_INTERVAL", "1m", "not a number"),
    ("OTEL_METRIC_EXPORT_INTERVAL", "0", "positive"),
    ("OTEL_TRACES_SAMPLER", "sometimes", "unknown sampler; use one of always_off"),
    ("OTEL_TRACES_SAMPLER_ARG", "half", "must be a number"),
    ("OTEL_TRACES_SAMPLER_ARG", "1.5", "within 0..1"),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "only http/protobuf is supported"),
    ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json", "only http/protobuf is supported"),
    ("OTEL_RESOURCE_ATTRIBUTES", "team", "'team' is not key=value"),
]


@pytest.mark.parametrize(("variable", "value", "reason"), BAD)
def test_bad_values_are_config_errors(variable: str, value: str, reason: str) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", variable: value}
    if variable == "OTEL_TRACES_SAMPLER_ARG":
        env["OTEL_TRACES_SAMPLER"] = "traceidratio"
    with pytest.raises(OtelEnvError, match=variable):
        resolve_otel(TelemetryConfig(), env)
    with pytest.raises(ConfigError) as caught:
        parse_config("", env=env)
    message = str(caught.value)
    assert message.startswith(f"<config>: telemetry: environment variable {variable}=")
    assert reason in message
    # With the export off nothing is read, so nothing fails.
    parse_config("", env={variable: value})


def test_a_bad_header_variable_does_not_show_its_value() -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_EXPORTER_OTLP_HEADERS": "x=1,Bearer s3"}
    with pytest.raises(ConfigError) as caught:
        parse_config("", env=env)
    assert "OTEL_EXPORTER_OTLP_HEADERS: item 2 is not key=value" in str(caught.value)
    assert "s3" not in str(caught.value)


@pytest.mark.parametrize("command", ["check-config", "run"])
def test_check_config_and_run_report_a_bad_variable(tmp_path: Path, command: str) -> None:
    path = tmp_path / "m.toml"
    path.write_text('[storage]\npath = "m.db"\n')
    result = subprocess.run(
        [sys.executable, "-m", "supervisor", command, "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=tmp_path,
        env={
            "PATH": "/usr/bin:/bin",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "ten",
        },
    )
    assert result.returncode == 2, result.stderr
    assert f"{path}: telemetry: environment variable OTEL_EXPORTER_OTLP_TIMEOUT='ten'" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr

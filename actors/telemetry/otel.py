"""OpenTelemetry: traces and the OTLP view of the metric store, over OTLP/HTTP (protobuf).

`build_otel(config, store=..., environ=...)` returns an `OtelSetup`:
- `tracer`: a real SDK tracer when a traces endpoint is configured, else a `NoOpTracer` (no
  provider, no exporter, no thread: spans cost next to nothing). Pass it to actors; nothing is
  set globally.
- `tracer_provider`: the SDK `TracerProvider` (or None), exporting spans to the traces endpoint
  (`otlp.make_provider`). Give it to the ASGI/httpx instrumentations.
- `metrics`: an `OtlpMetricsExporter` actor (or None) that exports every series of the store to
  the metrics endpoint every `metrics_interval` seconds (`otlp`).
- `shutdown()`: flushes pending spans and stops the span exporter (the metrics actor flushes when
  it is cancelled).

`resolve_otel(config, environ)` is the pure part: the `[telemetry]` keys over the standard
OpenTelemetry SDK variables found in `environ` (the composition root passes `os.environ`; nothing
here reads the process environment). A key that is set wins; an unset key (empty string or
absent) falls back to the variable, then to the default:

- endpoint: `otlp_endpoint` (+ `/v1/traces`, `/v1/metrics`), else
  OTEL_EXPORTER_OTLP_{TRACES,METRICS}_ENDPOINT (as given), else OTEL_EXPORTER_OTLP_ENDPOINT
  (+ `/v1/...`), else no export of that signal;
- headers: OTEL_EXPORTER_OTLP_{TRACES,METRICS}_HEADERS, else OTEL_EXPORTER_OTLP_HEADERS; over
  them the header `otlp_api_key_header` (default `api-key`) with `otlp_api_key`, else
  OTEL_API_KEY (the seed's variable);
- timeout: `otlp_timeout`, else OTEL_EXPORTER_OTLP_{TRACES,METRICS}_TIMEOUT, else
  OTEL_EXPORTER_OTLP_TIMEOUT (seconds), else 10 s;
- protocol: `otlp_protocol`, else OTEL_EXPORTER_OTLP_{TRACES,METRICS}_PROTOCOL, else
  OTEL_EXPORTER_OTLP_PROTOCOL; `http/protobuf` is the only one supported (and the default);
- resource: OTEL_RESOURCE_ATTRIBUTES, `resource_attributes` over it per key; `service.name`:
  `service_name`, else OTEL_SERVICE_NAME, else the attribute, else "blipee-os";
  `deployment.environment` (and `.name`): `environment`, else OTEL_ENVIRONMENT (the seed's
  variable, not the SDK's), else the attribute, else "production";
- metrics interval: `metrics_export_interval`, else OTEL_METRIC_EXPORT_INTERVAL (ms), else 60 s;
- sampler: `trace_sample_ratio` (`parentbased_traceidratio`), else OTEL_TRACES_SAMPLER with
  OTEL_TRACES_SAMPLER_ARG, else `parentbased_always_on`.

The semantics are the installed Python SDK's (the tests compare with it): the signal-specific
variable before the generic one; a signal endpoint used as given, the generic one with
`/v1/traces` or `/v1/metrics` appended; headers parsed by the SDK's own parser
(`opentelemetry.util.re.parse_env_headers`, lower-case names); OTEL_EXPORTER_OTLP_TIMEOUT in
seconds (the Python SDK's unit, where the specification says milliseconds);
OTEL_RESOURCE_ATTRIBUTES `k=v,k2=v2` percent-decoded, OTEL_SERVICE_NAME over its `service.name`;
the sampler names of the SDK's table. Where the SDK logs a warning and carries on with a default,
this is an error (`OtelEnvError`): a non-numeric or non-positive timeout or interval, an unknown
sampler, a ratio that is not a number in 0..1, a header or attribute pair without `=`, and any
protocol but `http/protobuf` (the gRPC exporter is not installed; `http/json` has no Python
exporter). Other OTLP variables (compression, certificates) are read by the SDK's exporter itself.
Nothing is validated while export is off.

Without an endpoint nothing of the SDK or its exporters is imported (`otlp` holds that part).
"""

from __future__ import annotations

import logging
import math
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from actors.telemetry.exceptions import OtelEnvError

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer

    from actors.telemetry.config import TelemetryConfig
    from actors.telemetry.otlp import OtlpMetricsExporter
    from actors.telemetry.store import MetricStore

__all__ = ["OtelSettings", "OtelSetup", "build_otel", "resolve_otel"]

DEFAULT_SERVICE = "blipee-os"
DEFAULT_ENVIRONMENT = "production"
DEFAULT_TIMEOUT = 10.0
DEFAULT_INTERVAL = 60.0
DEFAULT_SAMPLER = "parentbased_always_on"
PROTOCOL = "http/protobuf"
_RATIO_SAMPLERS = ("traceidratio", "parentbased_traceidratio")
_SIGNALS = ("traces", "metrics")


@dataclass(frozen=True)
class OtelSettings:
    """The resolved export settings (see the module docstring); endpoints are full URLs.

    `traces_endpoint` / `metrics_endpoint` empty: that signal is not exported. `sampler` is a
    name of the SDK's table, `sampler_ratio` its ratio (ratio samplers only).
    """

    traces_endpoint: str
    metrics_endpoint: str
    traces_headers: dict[str, str]
    metrics_headers: dict[str, str]
    traces_timeout: float
    metrics_timeout: float
    resource_attributes: dict[str, str]
    sampler: str
    sampler_ratio: float | None
    metrics_interval: float


def _var(environ: Mapping[str, str], name: str) -> tuple[str, str]:
    """(variable, stripped value) of `name`; the value is "" when unset."""
    return name, environ.get(name, "").strip()


def _signal_var(environ: Mapping[str, str], what: str, signal: str) -> tuple[str, str]:
    """OTEL_EXPORTER_OTLP_<SIGNAL>_<WHAT> when set, else OTEL_EXPORTER_OTLP_<WHAT> (SDK order)."""
    name, value = _var(environ, f"OTEL_EXPORTER_OTLP_{signal.upper()}_{what}")
    return (name, value) if value else _var(environ, f"OTEL_EXPORTER_OTLP_{what}")


def _endpoint(config: TelemetryConfig, environ: Mapping[str, str], signal: str) -> str:
    base = config.otlp_endpoint.strip()
    if base:
        return f"{base.rstrip('/')}/v1/{signal}"
    own = environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT", "").strip()
    if own:
        return own
    generic = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    return f"{generic.removesuffix('/')}/v1/{signal}" if generic else ""


def _seconds(name: str, text: str, scale: float) -> float:
    try:
        value = float(text) * scale
    except ValueError:
        raise OtelEnvError(name, text, "not a number") from None
    if not 0 < value < math.inf:
        raise OtelEnvError(name, text, "must be a positive, finite number")
    return value


def _pairs(name: str, text: str, *, secret: bool = False) -> list[tuple[str, str]]:
    """`k=v,k2=v2` (empty items skipped).

    Raises:
        OtelEnvError: an item without `k=` (named by position only when `secret`: header
            values carry credentials).
    """
    pairs = []
    for position, item in enumerate(text.split(","), 1):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            what = f"item {position}" if secret else repr(item.strip())
            raise OtelEnvError(
                name, None if secret else text, f"{what} is not key=value (comma-separated)"
            )
        pairs.append((key.strip(), value.strip()))
    return pairs


def _headers(config: TelemetryConfig, environ: Mapping[str, str], signal: str) -> dict[str, str]:
    from opentelemetry.util.re import parse_env_headers

    name, text = _signal_var(environ, "HEADERS", signal)
    _pairs(name, text, secret=True)  # the SDK would skip a malformed item with a warning
    headers = dict(parse_env_headers(text, liberal=True))
    api_key = config.otlp_api_key.get_secret_value() or environ.get("OTEL_API_KEY", "").strip()
    if api_key:
        headers[config.otlp_api_key_header.lower()] = api_key
    return headers


def _resource_attributes(config: TelemetryConfig, environ: Mapping[str, str]) -> dict[str, str]:
    # As the SDK's OTELResourceDetector: split on ",", then on the first "=", strip, and
    # percent-decode the value; OTEL_SERVICE_NAME over service.name.
    name, text = _var(environ, "OTEL_RESOURCE_ATTRIBUTES")
    attrs = {key: urllib.parse.unquote(value) for key, value in _pairs(name, text)}
    attrs.update(config.resource_attributes)
    service = (
        config.service_name
        or environ.get("OTEL_SERVICE_NAME", "").strip()
        or attrs.get("service.name", "")
        or DEFAULT_SERVICE
    )
    environment = (
        config.environment
        or environ.get("OTEL_ENVIRONMENT", "").strip()
        or attrs.get("deployment.environment.name", "")
        or attrs.get("deployment.environment", "")
        or DEFAULT_ENVIRONMENT
    )
    attrs["service.name"] = service
    # both keys: `deployment.environment.name` is the newer semantic convention
    attrs["deployment.environment"] = environment
    attrs["deployment.environment.name"] = environment
    return attrs


def _sampler(config: TelemetryConfig, environ: Mapping[str, str]) -> tuple[str, float | None]:
    if config.trace_sample_ratio is not None:
        return "parentbased_traceidratio", config.trace_sample_ratio
    from opentelemetry.sdk.trace import sampling

    name, text = _var(environ, "OTEL_TRACES_SAMPLER")
    sampler = text.lower() or DEFAULT_SAMPLER
    # The SDK's own table of sampler names (it has no public accessor).
    known = sorted(sampling._KNOWN_SAMPLERS)
    if sampler not in known:
        raise OtelEnvError(name, text, f"unknown sampler; use one of {', '.join(known)}")
    if sampler not in _RATIO_SAMPLERS:
        return sampler, None
    arg_name, arg = _var(environ, "OTEL_TRACES_SAMPLER_ARG")
    if not arg:
        return sampler, 1.0  # the SDK's default ratio
    try:
        ratio = float(arg)
    except ValueError:
        raise OtelEnvError(arg_name, arg, "the sampler's ratio must be a number") from None
    if not 0.0 <= ratio <= 1.0:
        raise OtelEnvError(arg_name, arg, "the sampler's ratio must be within 0..1")
    return sampler, ratio


def resolve_otel(config: TelemetryConfig, environ: Mapping[str, str]) -> OtelSettings | None:
    """The export settings from `config` over the OTEL_* variables of `environ` (see the module
    docstring); None when no endpoint is configured (nothing else is then read or checked).

    Raises:
        OtelEnvError: a variable in use has a value the SDK would not take as meant (it names
            the variable and says what is expected).
    """
    endpoints = {signal: _endpoint(config, environ, signal) for signal in _SIGNALS}
    if not any(endpoints.values()):
        return None
    for signal in _SIGNALS:
        name, protocol = _signal_var(environ, "PROTOCOL", signal)
        if config.otlp_protocol is None and protocol and protocol != PROTOCOL:
            raise OtelEnvError(
                name, protocol, f"only {PROTOCOL} is supported (OTLP over HTTP, protobuf)"
            )
    timeouts: dict[str, float] = {}
    for signal in _SIGNALS:
        name, text = _signal_var(environ, "TIMEOUT", signal)
        timeouts[signal] = (
            config.otlp_timeout
            if config.otlp_timeout is not None
            else (_seconds(name, text, 1.0) if text else DEFAULT_TIMEOUT)
        )
    if config.metrics_export_interval is not None:
        interval = config.metrics_export_interval
    else:
        name, text = _var(environ, "OTEL_METRIC_EXPORT_INTERVAL")
        interval = _seconds(name, text, 0.001) if text else DEFAULT_INTERVAL
    sampler, ratio = _sampler(config, environ)
    return OtelSettings(
        traces_endpoint=endpoints["traces"],
        metrics_endpoint=endpoints["metrics"],
        traces_headers=_headers(config, environ, "traces"),
        metrics_headers=_headers(config, environ, "metrics"),
        traces_timeout=timeouts["traces"],
        metrics_timeout=timeouts["metrics"],
        resource_attributes=_resource_attributes(config, environ),
        sampler=sampler,
        sampler_ratio=ratio,
        metrics_interval=interval,
    )


@dataclass
class OtelSetup:
    """What `build_otel` made; see the module docstring."""

    tracer: Tracer
    tracer_provider: TracerProvider | None = None
    metrics: OtlpMetricsExporter | None = None
    resource: Resource | None = None
    settings: OtelSettings | None = None
    endpoint: str = ""
    """`[telemetry] otlp_endpoint` or OTEL_EXPORTER_OTLP_ENDPOINT, without a trailing "/"."""
    headers: dict[str, str] = field(default_factory=dict)
    """The headers of the traces export."""

    @property
    def enabled(self) -> bool:
        """True when spans are exported (a traces endpoint is configured)."""
        return self.tracer_provider is not None

    def shutdown(self) -> None:
        """Flush pending spans and stop the span exporter (blocking; call from a thread)."""
        if self.tracer_provider is not None:
            self.tracer_provider.force_flush()
            self.tracer_provider.shutdown()


def build_otel(
    config: TelemetryConfig,
    *,
    store: MetricStore,
    environ: Mapping[str, str] | None = None,
    metrics_interval: float | None = None,
    logger: logging.Logger | None = None,
) -> OtelSetup:
    """Build tracing and the OTLP metrics actor from `config` and `environ` (default: empty;
    see `resolve_otel`). `metrics_interval` overrides the resolved export interval.

    Nothing starts here: the span processor's thread starts with the first span, and the metrics
    actor runs when the supervisor starts it.

    Raises:
        OtelEnvError: see `resolve_otel` (`supervisor.config` reports it at load time).
    """
    from opentelemetry.trace import NoOpTracer

    env: Mapping[str, str] = environ if environ is not None else {}
    settings = resolve_otel(config, env)
    if settings is None:
        return OtelSetup(tracer=NoOpTracer())
    from actors.telemetry import otlp  # the SDK and exporters: only when exporting

    resource = otlp.make_resource(settings.resource_attributes)
    provider = (
        otlp.make_provider(
            resource,
            sampler=otlp.make_sampler(settings.sampler, settings.sampler_ratio),
            endpoint=settings.traces_endpoint,
            headers=settings.traces_headers,
            timeout=settings.traces_timeout,
        )
        if settings.traces_endpoint
        else None
    )
    metrics = (
        otlp.make_metrics_exporter(
            store,
            resource,
            endpoint=settings.metrics_endpoint,
            headers=settings.metrics_headers,
            timeout=settings.metrics_timeout,
            interval=settings.metrics_interval if metrics_interval is None else metrics_interval,
            logger=logger,
        )
        if settings.metrics_endpoint
        else None
    )
    base = config.otlp_endpoint.strip() or env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    return OtelSetup(
        tracer=provider.get_tracer("blipee-monitor") if provider is not None else NoOpTracer(),
        tracer_provider=provider,
        metrics=metrics,
        resource=resource,
        settings=settings,
        endpoint=base.rstrip("/"),
        headers=settings.traces_headers,
    )

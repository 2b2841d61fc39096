"""The events applications send (`POST /api/v1/events`), validated with pydantic.

| type | fields |
|---|---|
| agent_execution | agent, duration_seconds (>= 0), success (bool) |
| heartbeat | agent |
| ml_prediction | model, latency_seconds (>= 0), confidence (0..1, optional) |
| ml_accuracy | model, accuracy (0..1) |
| api_request | endpoint, method, status (100..599), duration_seconds (>= 0) |
| business_metric | name, value, labels (object of strings, optional) |
| user_message | intent, organization |

Strings are 1..256 characters; unknown fields are errors (a typo must not pass silently); numbers
must be finite. `apply_event` hands a validated event to the recording API.
"""

from __future__ import annotations

from typing import Annotated, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from actors.telemetry.recording import Telemetry

__all__ = [
    "BATCH_ADAPTER",
    "EVENT_ADAPTER",
    "AgentExecution",
    "ApiRequest",
    "Batch",
    "BusinessMetric",
    "Event",
    "Heartbeat",
    "MlAccuracy",
    "MlPrediction",
    "UserMessage",
    "apply_event",
    "describe_error",
]

Text = Annotated[str, Field(min_length=1, max_length=256)]
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Ratio = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgentExecution(_Event):
    type: Literal["agent_execution"]
    agent: Text
    duration_seconds: Seconds
    success: pydantic.StrictBool


class Heartbeat(_Event):
    type: Literal["heartbeat"]
    agent: Text


class MlPrediction(_Event):
    type: Literal["ml_prediction"]
    model: Text
    latency_seconds: Seconds
    confidence: Ratio | None = None


class MlAccuracy(_Event):
    type: Literal["ml_accuracy"]
    model: Text
    accuracy: Ratio


class ApiRequest(_Event):
    type: Literal["api_request"]
    endpoint: Text
    method: Annotated[str, Field(min_length=1, max_length=16)]
    status: Annotated[int, Field(ge=100, le=599)]
    duration_seconds: Seconds


class BusinessMetric(_Event):
    type: Literal["business_metric"]
    name: Text
    value: Annotated[float, Field(allow_inf_nan=False)]
    labels: dict[Annotated[str, Field(max_length=128)], Annotated[str, Field(max_length=256)]] = (
        Field(default_factory=dict, max_length=16)
    )


class UserMessage(_Event):
    type: Literal["user_message"]
    intent: Text
    organization: Text


Event = Annotated[
    AgentExecution
    | Heartbeat
    | MlPrediction
    | MlAccuracy
    | ApiRequest
    | BusinessMetric
    | UserMessage,
    Field(discriminator="type"),
]


class Batch(BaseModel):
    """`{"events": [...]}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    events: list[Event]


EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
BATCH_ADAPTER: TypeAdapter[Batch] = TypeAdapter(Batch)


def describe_error(exc: pydantic.ValidationError) -> str:
    """One line naming each invalid field: `field: message; ...`."""
    parts = []
    for error in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in error["loc"])
        parts.append(f"{loc}: {error['msg']}" if loc else str(error["msg"]))
    return "; ".join(parts)


def apply_event(telemetry: Telemetry, event: Event) -> None:
    """Record one validated event through `telemetry`.

    Raises:
        TelemetryError: the recording API refused it (e.g. unknown business metric, labels that
            do not fit the metric).
    """
    if isinstance(event, AgentExecution):
        telemetry.record_agent_execution(event.agent, event.duration_seconds, event.success)
    elif isinstance(event, ApiRequest):
        telemetry.record_api_request(
            event.endpoint, event.method, event.status, event.duration_seconds
        )
    elif isinstance(event, MlPrediction):
        telemetry.record_ml_prediction(event.model, event.latency_seconds, event.confidence)
    elif isinstance(event, Heartbeat):
        telemetry.record_heartbeat(event.agent)
    elif isinstance(event, UserMessage):
        telemetry.record_user_message(event.intent, event.organization)
    elif isinstance(event, BusinessMetric):
        telemetry.record_business_metric(event.name, event.value, event.labels)
    else:
        telemetry.record_ml_accuracy(event.model, event.accuracy)

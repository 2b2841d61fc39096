"""Health checks: one supervised `CheckActor` per configured check, one probe module per kind.

    logic.py     pure threshold / slowness / dependency / HTTP-answer logic
    actor.py     CheckActor: the interval loop (jitter, timeout as a cancel scope, publish)
    http.py tcp.py postgres.py redis.py agents.py metric.py selfcheck.py   the probes
    errors.py    exceptions and `describe_error`

`build_probe(config, ...)` picks the probe for a configuration's kind; `build_check_actor(...)`
wraps it in its actor. The composition root passes the collaborators.
"""

from __future__ import annotations

from actors.checks.actor import CheckActor, CheckActorStatistics
from actors.checks.errors import CheckError, JsonPathError, ProbeError, describe_error
from actors.checks.factory import build_check_actor, build_probe
from actors.checks.logic import Observation, ThresholdState
from actors.checks.probe import Probe

__all__ = [
    "CheckActor",
    "CheckActorStatistics",
    "CheckError",
    "JsonPathError",
    "Observation",
    "Probe",
    "ProbeError",
    "ThresholdState",
    "build_check_actor",
    "build_probe",
    "describe_error",
]

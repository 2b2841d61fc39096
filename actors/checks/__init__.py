"""Health checks: one supervised `CheckActor` per configured check, one module per kind.

A check kind is one file, `actors.checks.<kind>`, holding its config model (`<Kind>CheckConfig`, a
`CheckBase`) and its probe (`<Kind>Probe(config, context)`, a `KindProbe` that keeps the model as
`self.config`), plus one line in the registry `actors.checks.kinds.KINDS`. The registry gives the
[[checks]] union (`CheckConfig`), the factory and the docs checks; see docs/extending-checks.md.

    config.py      CheckBase: the keys every kind has
    kinds.py       the registry of kinds: KINDS, CheckConfig, kind_of
    probe.py       Probe (what the actor runs), KindProbe, CheckContext (what probes are lent)
    factory.py     build_probe(config, context), build_check_actor(config, context, ...)
    logic.py       pure threshold / slowness / dependency / HTTP-answer logic
    actor.py       CheckActor: the interval loop (jitter, timeout as a cancel scope, publish)
    tlscontext.py  ClientContexts: the TLS client contexts the checks share
    errors.py      exceptions and `describe_error`

The composition root lends the collaborators (clock, metric store, agent registry, supervision
tree, TLS client contexts) in one `CheckContext`.
"""

from __future__ import annotations

from actors.checks.actor import CheckActor, CheckActorStatistics
from actors.checks.errors import CheckError, JsonPathError, ProbeError, describe_error
from actors.checks.factory import build_check_actor, build_probe
from actors.checks.kinds import KINDS, CheckConfig, CheckKind
from actors.checks.logic import Observation, ThresholdState
from actors.checks.probe import CheckContext, KindProbe, Probe
from actors.checks.tlscontext import ClientContexts

__all__ = [
    "KINDS",
    "CheckActor",
    "CheckActorStatistics",
    "CheckConfig",
    "CheckContext",
    "CheckError",
    "CheckKind",
    "ClientContexts",
    "JsonPathError",
    "KindProbe",
    "Observation",
    "Probe",
    "ProbeError",
    "ThresholdState",
    "build_check_actor",
    "build_probe",
    "describe_error",
]

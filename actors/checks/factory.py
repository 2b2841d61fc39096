"""Build the probe and the actor of a configured check with the kind registered for it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from actors.checks.actor import CheckActor
from actors.checks.cadence import FIRST_ROUND
from actors.checks.config import CheckBase
from actors.checks.errors import CheckError
from actors.checks.kinds import kind_of
from actors.checks.probe import CheckContext, Probe
from actors.checks.schedule import Lateness
from actors.checks.timer import CheckTimer
from actors.state import HealthState

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

__all__ = ["build_check_actor", "build_probe"]


def build_probe(config: CheckBase, context: CheckContext) -> Probe:
    """The probe of `config`'s kind, lent `context` (`CheckKind.probe(config, context)`).

    Probes built with one context share its collaborators, the TLS client contexts among them.

    Raises:
        CheckError: `config`'s model is not one of a registered kind, or the kind needs a
            collaborator `context` does not lend (e.g. "check m: a metric check needs the metric
            store, ...").
        ProbeError: the probe refuses a value of the configuration (a malformed redis URL).
    """
    try:
        kind = kind_of(config)
    except LookupError as exc:
        raise CheckError(f"check {config.name}: {exc}") from None
    return kind.probe(config, context)


def build_check_actor(
    config: CheckBase,
    context: CheckContext,
    *,
    health: HealthState,
    tracer: Tracer | None = None,
    schedule: Lateness | None = None,
    first_round: float = FIRST_ROUND,
    timer: CheckTimer | None = None,
) -> CheckActor:
    """A `CheckActor` running `config` with the probe of its kind (see `build_probe`); the actor
    times its runs with the context's clock and reports its lateness to `schedule`; its first run
    comes within `first_round` seconds (`actors.checks.cadence`); it waits for its runs on
    `timer` when given (`actors.checks.timer`).

    Raises:
        CheckError, ProbeError: as `build_probe`.
    """
    probe = build_probe(config, context)
    return CheckActor(
        config=config,
        probe=probe,
        health=health,
        clock=context.clock,
        tracer=tracer,
        schedule=schedule,
        first_round=first_round,
        timer=timer,
    )

"""Build the probe and the actor of a configured check."""

from __future__ import annotations

import random
from typing import Any

from actors.checks.actor import CheckActor
from actors.checks.config import (
    CheckBase,
    HttpCheckConfig,
    PostgresCheckConfig,
    RedisCheckConfig,
    TcpCheckConfig,
)
from actors.checks.errors import CheckError
from actors.checks.http import HttpProbe
from actors.checks.postgres import PostgresProbe
from actors.checks.probe import Probe
from actors.checks.redis import RedisProbe
from actors.checks.tcp import TcpProbe
from actors.clock import Clock
from actors.state import HealthState

__all__ = ["build_check_actor", "build_probe"]


def build_probe(config: CheckBase, *, clock: Clock | None = None) -> Probe:
    """The probe for `config`'s kind.

    Raises:
        CheckError: the kind needs a collaborator that was not given, or is unknown.
    """
    if isinstance(config, HttpCheckConfig):
        return HttpProbe(config=config, clock=clock)
    if isinstance(config, TcpCheckConfig):
        return TcpProbe(config=config)
    if isinstance(config, PostgresCheckConfig):
        return PostgresProbe(config=config)
    if isinstance(config, RedisCheckConfig):
        return RedisProbe(config=config)
    raise CheckError(f"check {config.name}: kind {getattr(config, 'kind', '?')} is not supported")


def build_check_actor(
    config: CheckBase,
    *,
    health: HealthState,
    clock: Clock | None = None,
    tracer: Any | None = None,
    rng: random.Random | None = None,
) -> CheckActor:
    """A `CheckActor` running `config` with the probe of its kind (see `build_probe`)."""
    probe = build_probe(config, clock=clock)
    return CheckActor(
        config=config, probe=probe, health=health, clock=clock, tracer=tracer, rng=rng
    )

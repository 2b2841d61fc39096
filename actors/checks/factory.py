"""Build the probe and the actor of a configured check."""

from __future__ import annotations

import random
import ssl
from collections.abc import Callable
from typing import Any

from actors.checks.actor import CheckActor
from actors.checks.agents import AgentsProbe, AgentsView
from actors.checks.config import (
    AgentsCheckConfig,
    CheckBase,
    HttpCheckConfig,
    MetricCheckConfig,
    PostgresCheckConfig,
    RedisCheckConfig,
    SelfCheckConfig,
    TcpCheckConfig,
)
from actors.checks.errors import CheckError
from actors.checks.http import HttpProbe
from actors.checks.metric import MetricProbe, MetricReader
from actors.checks.probe import Probe
from actors.checks.redis import RedisProbe
from actors.checks.selfcheck import SelfProbe, TreeView
from actors.checks.tcp import TcpProbe
from actors.checks.tls import ClientContexts
from actors.clock import Clock
from actors.state import HealthState

__all__ = ["build_check_actor", "build_probe"]


def build_probe(
    config: CheckBase,
    *,
    clock: Clock | None = None,
    store: MetricReader | None = None,
    agents: AgentsView | None = None,
    tree: Callable[[], TreeView | None] | None = None,
    ssl_context: ssl.SSLContext | None = None,
    tls: ClientContexts | None = None,
) -> Probe:
    """The probe for `config`'s kind.

    `store` (the MetricStore) is needed by `metric` checks, `agents` (the AgentRegistry) by
    `agents` checks, `tree` (returns the root supervisor's snapshot, or None before it runs) by
    `self` checks. `tls` gives the TLS client contexts of `http` and `redis` checks: pass the same
    `ClientContexts` to every check, so they share one context per verification mode (the
    composition root does). Without `tls` the probe gets a `ClientContexts` of its own, whose
    verifying context is `ssl_context` when given (e.g. one trusting a private CA).

    Raises:
        CheckError: the kind needs a collaborator that was not given, or is unknown.
        ValueError: both `tls` and `ssl_context` were given.
    """
    if tls is None:
        tls = ClientContexts(ssl_context)
    elif ssl_context is not None:
        raise ValueError("pass tls or ssl_context, not both")
    if isinstance(config, HttpCheckConfig):
        return HttpProbe(config=config, clock=clock, tls=tls)
    if isinstance(config, TcpCheckConfig):
        return TcpProbe(config=config)
    if isinstance(config, PostgresCheckConfig):
        # imported here: psycopg and libpq cost ~8 MB of RSS that configs without a
        # postgres check need not pay
        from actors.checks.postgres import PostgresProbe

        return PostgresProbe(config=config)
    if isinstance(config, RedisCheckConfig):
        return RedisProbe(config=config, tls=tls)
    if isinstance(config, AgentsCheckConfig):
        if agents is None:
            raise CheckError(f"check {config.name}: an agents check needs the agent registry")
        return AgentsProbe(config=config, registry=agents, clock=clock)
    if isinstance(config, MetricCheckConfig):
        if store is None:
            raise CheckError(f"check {config.name}: a metric check needs the metric store")
        return MetricProbe(config=config, store=store, clock=clock)
    if isinstance(config, SelfCheckConfig):
        if tree is None:
            raise CheckError(f"check {config.name}: a self check needs the supervision tree")
        return SelfProbe(config=config, tree=tree, clock=clock)
    raise CheckError(f"check {config.name}: kind {getattr(config, 'kind', '?')} is not supported")


def build_check_actor(
    config: CheckBase,
    *,
    health: HealthState,
    clock: Clock | None = None,
    tracer: Any | None = None,
    store: MetricReader | None = None,
    agents: AgentsView | None = None,
    tree: Callable[[], TreeView | None] | None = None,
    ssl_context: ssl.SSLContext | None = None,
    tls: ClientContexts | None = None,
    rng: random.Random | None = None,
) -> CheckActor:
    """A `CheckActor` running `config` with the probe of its kind (see `build_probe`).

    Raises:
        CheckError, ValueError: as `build_probe`.
    """
    probe = build_probe(
        config,
        clock=clock,
        store=store,
        agents=agents,
        tree=tree,
        ssl_context=ssl_context,
        tls=tls,
    )
    return CheckActor(
        config=config, probe=probe, health=health, clock=clock, tracer=tracer, rng=rng
    )

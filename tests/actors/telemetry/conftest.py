"""Shared fixtures: a store with the seed catalogue and a Telemetry over it."""

from __future__ import annotations

import pytest

from actors.clock import FixedClock
from actors.telemetry.agents import AgentRegistry
from actors.telemetry.anonymize import Anonymizer
from actors.telemetry.catalog import declare_catalog
from actors.telemetry.recording import Telemetry
from actors.telemetry.store import MetricStore

T0 = 1_700_000_000.0


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def store(clock: FixedClock) -> MetricStore:
    s = MetricStore(clock=clock, anonymizer=Anonymizer(["organization"], "test-key"))
    declare_catalog(s)
    return s


@pytest.fixture
def telemetry(store: MetricStore) -> Telemetry:
    return Telemetry(store=store, agents=AgentRegistry())

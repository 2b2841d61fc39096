"""Persisted alert state on both engines: what is saved is loaded back, to the microsecond."""

from __future__ import annotations

from actors.rules.evaluate import Instance, Phase
from actors.rules.persist import SqliteAlertStateStore
from tests.conftest import Stores


def _instance(
    fp: str, phase: Phase = Phase.FIRING, fired_at: float | None = 1.7e9 + 0.123456
) -> Instance:
    return Instance(
        fingerprint=fp,
        labels=(("alertname", "Down"), ("check", fp)),
        phase=phase,
        active_since=1.7e9 + 0.000001,
        last_true=1.7e9 + 59.5,
        value=0.25,
        annotations=(("summary", "it's 100% down"),),
        fired_at=fired_at,
    )


async def test_save_load_replace_and_delete(stores: Stores) -> None:
    store = SqliteAlertStateStore(database=stores.open())
    await store.save("r1", [_instance("a"), _instance("b", Phase.PENDING, None)], [])
    await store.save("r2", [_instance("a")], [])
    # Another process (or replica) reads the same state.
    again = SqliteAlertStateStore(database=stores.open())
    loaded = await again.load()
    assert loaded == {
        "r1": {"a": _instance("a"), "b": _instance("b", Phase.PENDING, None)},
        "r2": {"a": _instance("a")},
    }
    await again.save("r1", [_instance("b")], ["a"])  # b fires, a is gone: atomically
    assert await store.load() == {"r1": {"b": _instance("b")}, "r2": {"a": _instance("a")}}
    await store.save("r1", [], [])  # nothing to do

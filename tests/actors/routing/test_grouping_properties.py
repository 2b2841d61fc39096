"""Properties of grouping over random alert histories (Hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.models import Alert, AlertStatus
from actors.routing.grouping import Group, GroupTiming, add_alert, flush, group_key

TIMING = GroupTiming(group_wait=0, group_interval=10, repeat_interval=1000)

# A history: (delay before the event, alert index, fires?) steps.
HISTORY = st.lists(
    st.tuples(st.floats(0, 30), st.integers(0, 3), st.booleans()), min_size=1, max_size=40
)


def _alert(index: int, firing: bool, starts_at: float, now: float) -> Alert:
    return Alert(
        fingerprint=f"a{index}",
        labels=(("alertname", "A"), ("i", str(index))),
        annotations=(),
        status=AlertStatus.FIRING if firing else AlertStatus.RESOLVED,
        starts_at=starts_at,
        ends_at=None if firing else now,
    )


@settings(max_examples=200, deadline=None)
@given(HISTORY)
def test_receivers_hear_every_resolution_and_nothing_unannounced(
    history: list[tuple[float, int, bool]],
) -> None:
    key = group_key("hooks", "default", (("alertname", "A"),))
    group: Group | None = None
    now = 0.0
    starts: dict[int, float] = {}
    told_firing: set[str] = set()  # what receivers believe is firing
    keys: set[str] = set()

    def run_until(t: float) -> None:
        nonlocal group
        while group is not None and group.next_flush is not None and group.next_flush <= t:
            group, notification = flush(group, group.next_flush, TIMING, lambda a: False)
            if notification is None:
                continue
            assert notification.key not in keys
            keys.add(notification.key)
            for alert in notification.alerts:
                if alert.status is AlertStatus.RESOLVED:
                    assert alert.fingerprint in told_firing  # never an unannounced resolution
                    told_firing.discard(alert.fingerprint)
                else:
                    told_firing.add(alert.fingerprint)

    for delay, index, fires in history:
        run_until(now + delay)
        now += delay
        if fires:
            starts.setdefault(index, now)
        elif index not in starts:
            continue  # resolving an alert that is not firing: rules never do that
        alert = _alert(index, fires, starts[index], now)
        if not fires:
            del starts[index]
        if group is None:
            group = Group(key=key, channel="hooks", labels=(("alertname", "A"),))
        group = add_alert(group, alert, now, TIMING)
    # Everything resolves; after enough ticks receivers believe nothing fires.
    for index in list(starts):
        assert group is not None
        group = add_alert(group, _alert(index, False, starts[index], now), now, TIMING)
    run_until(now + 100)
    assert told_firing == set()
    assert group is None

"""Grouping, timers, dedup, repeat and idempotency keys (pure, explicit times)."""

from __future__ import annotations

from dataclasses import replace

from actors.models import Alert, AlertStatus
from actors.routing.grouping import Group, GroupTiming, add_alert, flush, group_key, group_labels

TIMING = GroupTiming(group_wait=0, group_interval=60, repeat_interval=3600)


def _alert(fp: str, status: AlertStatus = AlertStatus.FIRING, start: float = 0.0) -> Alert:
    labels = (("alertname", "A"), ("i", fp))
    return Alert(fp, labels, (), status, start, None if status is AlertStatus.FIRING else 1.0)


def _never(alert: Alert) -> bool:
    return False


def _group() -> Group:
    labels = group_labels({"alertname": "A", "i": "x"}, ["alertname"])
    return Group(key=group_key("hooks", "default", labels), channel="hooks", labels=labels)


def test_group_key_and_labels() -> None:
    labels = group_labels({"alertname": "A", "x": "1"}, ["alertname", "missing"])
    assert labels == (("alertname", "A"),)  # no missing="" (Alertmanager leaves it out)
    assert group_key("c", "default", labels) == 'c/default:{alertname="A"}'
    assert group_labels({"b": "1", "a": "2", "c": ""}, ["..."]) == (("a", "2"), ("b", "1"))
    assert group_labels({"a": "1", "c": ""}, ["a", "a", "c"]) == (("a", "1"),)


def test_first_alert_pages_at_once_later_ones_wait_group_interval() -> None:
    g = add_alert(_group(), _alert("a"), 10, TIMING)
    assert g.next_flush == 10
    g2, n = flush(g, 10, TIMING, _never)
    assert n is not None
    assert [a.fingerprint for a in n.alerts] == ["a"]
    assert n.status is AlertStatus.FIRING
    assert g2 is not None
    assert g2.next_flush == 70
    g3 = add_alert(g2, _alert("b"), 20, TIMING)
    assert g3.next_flush == 70  # waits for the group's tick
    g4, n = flush(g3, 70, TIMING, _never)
    assert n is not None
    assert [a.fingerprint for a in n.alerts] == ["a", "b"]
    # unchanged group: nothing until repeat_interval
    assert g4 is not None
    g5, n = flush(g4, 130, TIMING, _never)
    assert n is None
    assert g5 is not None
    _, n = flush(g5, 70 + 3600, TIMING, _never)
    assert n is not None  # reminder


def test_group_wait_batches_and_unsent_resolution_is_dropped() -> None:
    timing = replace(TIMING, group_wait=30)
    g = add_alert(_group(), _alert("a"), 0, timing)
    g = add_alert(g, _alert("a", AlertStatus.RESOLVED), 10, timing)
    assert g.next_flush == 30
    g2, n = flush(g, 30, timing, _never)
    assert n is None
    assert g2 is None


def test_resolution_sent_and_group_dropped() -> None:
    g1, n1 = flush(add_alert(_group(), _alert("a"), 0, TIMING), 0, TIMING, _never)
    assert g1 is not None
    assert n1 is not None
    g2 = add_alert(g1, _alert("a", AlertStatus.RESOLVED), 5, TIMING)
    g3, n2 = flush(g2, 60, TIMING, _never)
    assert g3 is None
    assert n2 is not None
    assert n2.status is AlertStatus.RESOLVED
    assert n2.key != n1.key


def test_muted_alerts_are_left_out_but_resolution_still_goes() -> None:
    g = add_alert(_group(), _alert("a"), 0, TIMING)
    g1, n = flush(g, 0, TIMING, lambda a: True)
    assert n is None
    assert g1 is not None
    g2, n = flush(g1, 60, TIMING, _never)
    assert n is not None  # unmuted: sent at the next tick
    assert g2 is not None
    g3 = add_alert(g2, _alert("a", AlertStatus.RESOLVED), 61, TIMING)
    _, n = flush(g3, 120, TIMING, lambda a: True)
    assert n is not None
    assert n.status is AlertStatus.RESOLVED


def test_idempotency_key_is_stable_for_the_same_flush() -> None:
    g = add_alert(_group(), _alert("a"), 0, TIMING)
    _, n1 = flush(g, 0, TIMING, _never)
    _, n2 = flush(g, 0, TIMING, _never)
    assert n1 is not None
    assert n2 is not None
    assert n1.key == n2.key
    # the same alert firing again later (new starts_at) is a different notification
    g_again = add_alert(_group(), _alert("a", start=500), 500, TIMING)
    _, n3 = flush(g_again, 500, TIMING, _never)
    assert n3 is not None
    assert n3.key != n1.key


def test_restored_log_does_not_repage() -> None:
    g = add_alert(_group(), _alert("a"), 0, TIMING)
    g1, n = flush(g, 0, TIMING, _never)
    assert g1 is not None
    assert n is not None
    restarted = replace(_group(), log=g1.log)
    g2 = add_alert(restarted, _alert("a"), 100, TIMING)
    _, n = flush(g2, 100, TIMING, _never)
    assert n is None


def test_context_is_attached() -> None:
    g = add_alert(_group(), _alert("a"), 0, TIMING)
    _, n = flush(g, 0, TIMING, _never, context=lambda alerts: {"held": [len(alerts)]})
    assert n is not None
    assert n.context == {"held": [1]}

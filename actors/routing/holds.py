"""Dependency holds: an alert whose labels carry `check=X` is held while check X is blocked by a
failing dependency (X's latest result has `details["blocked_by"]`). The notification of the
parent (an alert with `check=<the blocking check>`) names the alerts it holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from actors.models import Alert

__all__ = ["BlockedBy", "blocked_by_of", "held_for"]

BlockedBy = Callable[[str], tuple[str, ...]]
"""Given a check name, the checks blocking it (empty when it is not blocked)."""


def blocked_by_of(details: Mapping[str, object]) -> tuple[str, ...]:
    """Normalise a check result's `details["blocked_by"]` (a name or a list of names)."""
    value = details.get("blocked_by")
    if not value:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple | set | frozenset):
        return tuple(str(v) for v in value if v)
    return (str(value),)


def held_for(
    parents: Iterable[Alert], held: Iterable[tuple[Alert, tuple[str, ...]]]
) -> list[dict[str, str]]:
    """Describe the held alerts whose blocking checks are the `check` label of a parent alert.

    `held` pairs each held alert with the checks blocking it. Each entry gives alertname, check,
    blocked_by and fingerprint, sorted for a stable notification.
    """
    parent_checks = {dict(a.labels).get("check", "") for a in parents} - {""}
    out: list[dict[str, str]] = []
    for alert, blockers in held:
        hit = sorted(parent_checks.intersection(blockers))
        if hit:
            labels = dict(alert.labels)
            out.append(
                {
                    "alertname": labels.get("alertname", ""),
                    "check": labels.get("check", ""),
                    "blocked_by": ",".join(hit),
                    "fingerprint": alert.fingerprint,
                }
            )
    out.sort(key=lambda d: (d["alertname"], d["check"], d["fingerprint"]))
    return out

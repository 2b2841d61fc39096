"""Pure rule evaluation: comparison, templating and the per-instance alert state machine.

Everything here is plain functions over plain frozen data; no event loop, no I/O, no clock.
Times are wall-clock Unix seconds passed in by the caller.

One *instance* is one (rule, label set): every series of the rule's metric that matches the
condition's label filter is evaluated on its own, as Prometheus does. An instance moves

    inactive --(condition true)--> pending --(held for `duration`)--> firing
    pending  --(condition false)--> inactive          (dropped silently, nothing emitted)
    firing   --(false for longer than `keep_firing_for`)--> resolved (emitted, then inactive)

With `duration == 0` a true condition fires at once. `keep_firing_for` keeps a firing instance
firing while the condition has been false for less than that long, counted from the first
evaluation that found it false (as Prometheus' `KeepFiringSince`); it resets when the condition
holds again. The `absent` aggregate yields one series (the condition's label filter) when no
matching series has a sample in the window; that series is "true" whatever the operator.
"""

from __future__ import annotations

import enum
import hashlib
import math
import operator as op
import re
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from functools import partial

from actors.models import Alert, AlertEvent, AlertStatus, Labels, Severity
from actors.rules.exceptions import DuplicateLabelset

__all__ = [
    "AGGREGATES",
    "OPERATORS",
    "TEMPLATE_ACTION",
    "Condition",
    "Divisor",
    "Instance",
    "Phase",
    "Rule",
    "StepResult",
    "alert_labels",
    "compare",
    "fingerprint",
    "idle",
    "render",
    "resolve_all",
    "step",
]

OPERATORS: Mapping[str, Callable[[float, float], bool]] = {
    ">": op.gt,
    ">=": op.ge,
    "<": op.lt,
    "<=": op.le,
    "==": op.eq,
    "!=": op.ne,
}
"""The comparison operators of a rule condition."""

AGGREGATES = frozenset(
    {
        "last",
        "avg",
        "min",
        "max",
        "sum",
        "count",
        "rate",
        "increase",
        "p50",
        "p90",
        "p95",
        "p99",
        "absent",
    }
)
"""The aggregate names of a rule condition (see CONTRACT.md)."""


def compare(value: float, operator: str, threshold: float) -> bool:
    """Return whether `value <operator> threshold` holds; NaN never holds.

    Raises:
        KeyError: `operator` is not one of `OPERATORS`.
    """
    if math.isnan(value):
        return False
    return OPERATORS[operator](value, threshold)


def fingerprint(labels: Labels) -> str:
    """A stable 16-hex-digit hash of a canonical label set (same across processes/restarts)."""
    # One update over the concatenation: the same digest as one update per part, cheaper.
    data = b"".join(b"%s\xff%s\xfe" % (name.encode(), value.encode()) for name, value in labels)
    return hashlib.sha256(data).hexdigest()[:16]


# --- templating -------------------------------------------------------------------------------

TEMPLATE_ACTION = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
"""One `{{ ... }}` of an annotation template; group 1 is the expression, trimmed."""


def _format_value(value: float | None) -> str:
    if value is None:
        return ""
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


def render(
    template: str,
    *,
    value: float | None,
    labels: Mapping[str, str],
    extra: Mapping[str, str] | None = None,
) -> str:
    """Render `{{ value }}` and `{{ labels.NAME }}` (also `$value`, `$labels.NAME`) in `template`.

    A tiny substitution, never an evaluator: `extra` names (e.g. `threshold`) are looked up as
    plain keys; a missing label renders empty; any other expression is left as written.
    """
    if "{{" not in template:
        return template

    def sub(match: re.Match[str]) -> str:
        expr = match.group(1).lstrip("$").strip()
        if expr == "value":
            return _format_value(value)
        if expr.startswith("labels."):
            return labels.get(expr[len("labels.") :], "")
        if extra is not None and expr in extra:
            return extra[expr]
        return match.group(0)

    return TEMPLATE_ACTION.sub(sub, template)


# --- rules and instances ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Divisor:
    """The denominator of a ratio condition (`divide_by`), read over the condition's window."""

    metric: str
    labels: Labels = ()
    aggregate: str = "last"


@dataclass(frozen=True, slots=True)
class Condition:
    """What a rule watches: `aggregate` of `metric` series matching `labels` over `window` s.

    With `divide_by`, each series' value is divided by the denominator series of the same
    labels (`actors.rules.ratio`).
    """

    metric: str
    labels: Labels = ()
    aggregate: str = "last"
    window: float = 300.0
    operator: str = ">"
    threshold: float = 0.0
    duration: float = 0.0
    divide_by: Divisor | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """One alert rule, as evaluated (built from config or the `add_rule` API)."""

    id: str
    name: str
    condition: Condition
    severity: Severity = Severity.WARNING
    channels: tuple[str, ...] = ()
    annotations: Labels = ()
    labels: Labels = ()
    keep_firing_for: float = 0.0
    enabled: bool = True


class Phase(enum.StrEnum):
    """State of a live instance (inactive instances are simply not kept)."""

    PENDING = "pending"
    FIRING = "firing"


@dataclass(frozen=True, slots=True)
class Instance:
    """The live state of one (rule, label set).

    `active_since` is when the condition first held (Prometheus' activeAt; it becomes the
    alert's `starts_at`); `last_true` when it last held; `false_since` the first evaluation that
    found a firing instance's condition false, while `keep_firing_for` keeps it firing (None
    while the condition holds; not persisted: after a restart the count starts again, as in
    Prometheus).
    """

    fingerprint: str
    labels: Labels
    phase: Phase
    active_since: float
    last_true: float
    value: float
    annotations: Labels = ()
    fired_at: float | None = None
    false_since: float | None = None

    def to_alert(
        self, *, status: AlertStatus = AlertStatus.FIRING, ends_at: float | None = None
    ) -> Alert:
        """This instance as the `Alert` receivers see."""
        return Alert(
            fingerprint=self.fingerprint,
            labels=self.labels,
            annotations=self.annotations,
            status=status,
            starts_at=self.active_since,
            ends_at=ends_at,
            value=self.value,
        )


@dataclass(frozen=True, slots=True)
class StepResult:
    """The outcome of evaluating one rule once: its new instances and the events to emit.

    `changed` holds fingerprints whose persisted state (phase, active_since) changed or that were
    removed, so a caller persists only those.
    """

    instances: dict[str, Instance]
    events: list[AlertEvent] = field(default_factory=list)
    changed: set[str] = field(default_factory=set)


def alert_labels(rule: Rule, series: Labels) -> Labels:
    """Labels for `series`: series labels + rule labels + alertname, rule, severity.

    A label whose value is empty is no label (as in Prometheus): a series' `cluster=""` is left
    out, and a rule label set to `""` removes the series' label of that name.
    """
    merged = dict(series)
    merged.update(rule.labels)
    merged["alertname"] = rule.name
    merged["rule"] = rule.id
    merged["severity"] = str(rule.severity)
    return tuple(sorted((name, value) for name, value in merged.items() if value))


def _annotations(rule: Rule, value: float, labels: Labels) -> Labels:
    if not rule.annotations:
        return ()
    label_map = dict(labels)
    extra = {
        "threshold": _format_value(rule.condition.threshold),
        "metric": rule.condition.metric,
    }
    return tuple(
        (name, render(text, value=value, labels=label_map, extra=extra))
        for name, text in rule.annotations
    )


def _event(rule: Rule, alert: Alert, now: float) -> AlertEvent:
    return AlertEvent(alert=alert, rule_id=rule.id, channels=rule.channels, at=now)


def step(
    rule: Rule,
    instances: Mapping[str, Instance],
    values: Mapping[Labels, float],
    now: float,
    *,
    keep_missing: AbstractSet[str] = frozenset(),
    scope: AbstractSet[str] | None = None,
    fingerprint_of: Callable[[Labels], str] | None = None,
    since: Mapping[Labels, float] | None = None,
) -> StepResult:
    """Evaluate `rule` at `now` given the aggregated `values` per series; pure.

    `instances` (by fingerprint) is the rule's state before this step; the result holds the state
    after. Emits a FIRING event when an instance starts firing or the annotations of a firing
    instance change, a RESOLVED event (with `ends_at = now`) when it resolves. Pending instances
    emit nothing. Instances in `keep_missing` whose series has no value are kept as they are
    (after a restart, until the metric store has been fed again); a value that is present always
    counts.

    `scope` makes the step incremental: when given, only the instances whose fingerprint is in
    it are evaluated (every other one is carried over unchanged), and `values` holds the values
    of just those series (a series of the scope missing from `values` has no value, as in a
    full step). For the instances of the scope, the result (instances, events, `changed`) is
    exactly that of a full step over every series' values, provided no series left out of
    `values` has a fingerprint in the scope: rule labels overriding series labels can merge
    series into one instance, and the rules actor evaluates such rules whole.

    `fingerprint_of(series)` must return `fingerprint(alert_labels(rule, series))` (the
    default); the rules actor passes its memo of them (`fingerprints.SeriesFingerprints`).

    `since` (series -> wall time of the sample behind its value, at most `now`) dates what a
    series' value starts: a new instance is active (pending) from its sample's time, not from
    `now`, so a round that runs a little after its samples (the rules actor coalesces them)
    counts `duration` from the samples' own times. Series not in it start at `now`.

    Raises:
        DuplicateLabelset: two series whose condition holds have the same alert labels (rule
            labels overriding the series' made them one); as Prometheus, the evaluation fails
            and the caller keeps `instances` as they were.
    """
    out: dict[str, Instance] = {}
    events: list[AlertEvent] = []
    changed: set[str] = set()
    cond = rule.condition
    seen: set[str] = set()
    if fingerprint_of is None:
        fingerprint_of = partial(_fingerprint_of, rule)
    absent = cond.aggregate == "absent"
    holds = OPERATORS[cond.operator]
    threshold = cond.threshold

    for series, value in values.items():
        # `compare`, inline: this loop runs for every series of every rule at every tick
        if not absent and (value != value or not holds(value, threshold)):
            continue
        if not series and absent:
            series = cond.labels  # as Prometheus' absent(): the filter's labels
        fp = fingerprint_of(series)
        prev = instances.get(fp)
        # the same fingerprint is the same labels: an instance's need not be built again
        labels = alert_labels(rule, series) if prev is None else prev.labels
        if fp in seen:
            raise DuplicateLabelset(rule.id, labels)
        seen.add(fp)
        annotations = _annotations(rule, value, labels)
        if prev is None:
            start = now if since is None else min(since.get(series, now), now)
            inst = Instance(fp, labels, Phase.PENDING, start, start, value, annotations)
            changed.add(fp)
        else:
            inst = replace(
                prev, last_true=now, value=value, annotations=annotations, false_since=None
            )
        if inst.phase is Phase.PENDING and now - inst.active_since >= cond.duration:
            inst = replace(inst, phase=Phase.FIRING, fired_at=now)
            changed.add(fp)
            events.append(_event(rule, inst.to_alert(), now))
        elif (
            prev is not None and prev.phase is Phase.FIRING and prev.annotations != inst.annotations
        ):
            events.append(_event(rule, inst.to_alert(), now))
        out[fp] = inst

    present: set[str] | None = None
    for fp, prev in instances.items():
        if fp in seen:
            continue
        if scope is not None and fp not in scope:
            out[fp] = prev
            continue
        if fp in keep_missing:
            if present is None:
                present = {fingerprint_of(series) for series in values}
            if fp not in present:
                out[fp] = prev
                continue
        if prev.phase is Phase.PENDING:
            changed.add(fp)
            continue
        if rule.keep_firing_for > 0:
            false_since = now if prev.false_since is None else prev.false_since
            if now - false_since < rule.keep_firing_for:
                out[fp] = prev if prev.false_since is not None else replace(prev, false_since=now)
                continue
        changed.add(fp)
        events.append(_event(rule, prev.to_alert(status=AlertStatus.RESOLVED, ends_at=now), now))

    return StepResult(out, events, changed)


def _fingerprint_of(rule: Rule, series: Labels) -> str:
    return fingerprint(alert_labels(rule, series))


def idle(
    rule: Rule,
    instances: Mapping[str, Instance],
    values: Mapping[Labels, float],
    series: Iterable[Labels],
    fingerprint_of: Callable[[Labels], str] | None = None,
) -> bool:
    """Whether the incremental `step` of `rule` over `values`, with the scope of `series` (the
    fingerprints of their instances), would change nothing: no value holds and no instance of
    `instances` is one of `series`'. Then that step returns `instances` as they are, no event,
    nothing changed (whatever `keep_missing`), and need not be taken. Always False for
    `absent` rules (every value holds). `fingerprint_of` as in `step`. Pure; never raises."""
    cond = rule.condition
    if cond.aggregate == "absent":
        return False
    holds = OPERATORS[cond.operator]
    threshold = cond.threshold
    for value in values.values():
        if value == value and holds(value, threshold):
            return False
    if not instances:
        return True
    if fingerprint_of is None:
        fingerprint_of = partial(_fingerprint_of, rule)
    for s in series:  # noqa: SIM110 (a loop, not all(): this runs per rule and sample)
        if fingerprint_of(s) in instances:
            return False
    return True


def resolve_all(rule: Rule, instances: Iterable[Instance], now: float) -> list[AlertEvent]:
    """RESOLVED events for every firing instance of a rule that was removed or disabled."""
    return [
        _event(rule, inst.to_alert(status=AlertStatus.RESOLVED, ends_at=now), now)
        for inst in instances
        if inst.phase is Phase.FIRING
    ]

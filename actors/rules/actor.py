"""The rules actor: evaluates alert rules against the metric store and emits `AlertEvent`s.

Event driven and incremental: the metric store calls `on_sample(name, series)` after every
recorded sample (wire it with `store.add_listener(actor.on_sample)`, or let `run()` do it); the
changed series are coalesced per metric, so a burst of samples costs one round, and a round
evaluates each rule watching those metrics over just the series that changed (`step` with a
scope: the other instances of the rule are carried over untouched). A check result re-reads one
series, not every series of `health_check_up`. `absent` rules, which are about every series,
and rules whose labels merge several series into one alert, are evaluated whole. A tick (1 s
by default) re-evaluates every rule over every series for what only time changes: `duration`,
sliding windows, absence, `keep_firing_for`. Which store reads a round makes, and which rule
gets which series of them, is planned by the pure functions of `actors.rules.plan`. A rule's
alert fingerprint per series is computed once and kept (`fingerprints.SeriesFingerprints`,
pruned to the series that still report), and a rule whose changed series neither hold nor
have an instance is not stepped at all (`evaluate.idle`): what an unfiltered rule costs per
sample is a few lookups.

Rounds are batched (`batch`, 25 ms by default): a sample after a quiet spell is evaluated at
once (after one scheduler pass, so results made ready together go together), but no
sample-driven round starts within `batch` of the previous one; what arrives meanwhile waits for
one round together. With checks spread over the second (200 at 1 s: 200 results a second) that
is at most 40 rounds a second instead of one per result. The bound: a sample is evaluated at
most `batch` after it was recorded (plus the round itself; under a flood, the `max_busy` rest
may be longer, as before). Timing stays the samples': each changed series is dated by when its
sample was recorded, and an instance it starts is pending from then (`step(since=...)`), so
`duration` counts from the sample, not from the round; only the moment pending turns firing, or
an alert resolves, is the round's (later by at most `batch`).

Rules come from configuration and, at runtime, from `add_rule({...})` / `remove_rule(id)` (the
seed's `alerting` API; this actor is that object). Transitions are persisted through an
`AlertStateStore` *before* their events are sent, so a restart neither re-pages a firing alert nor
forgets to resolve it: restored firing instances are re-announced at start (routing's
notification log recognises them) and resolve normally when their condition no longer holds.

A store that fails (`StoreError`: the database is down, read-only, full) does not stop alerting:
the transitions that could not be saved are kept in memory, merged per rule and instance (so
they are bounded by the instances themselves, not by the outage's length), their events are sent
all the same, and the save is retried with backoff (0.5 s doubling to 30 s) until it succeeds.
Only a restart of the process during the outage loses what was not saved (the alerts are then
evaluated again from fresh samples). A failing load at start begins with no stored state.

Sharded replicas (`evaluates`, `release`, `adopt`): a replica evaluates only the series and
instances `evaluates(labels)` accepts (those of the checks it runs, and every series that names
no check). When a check moves to another replica, `release` drops its instances here without
resolving them (routing forgets them too: a `released` event), and the new owner `adopt`s them
from the shared alert state before its next evaluation, so the firing episode goes on (same
`starts_at`, same fingerprint: the shared notification log sees nothing new to page). An adopted
instance is judged only by samples taken after the check came here: the replica's store may still
hold an earlier stint's samples of the check (it ran it before the dead owner joined), and a full
round reading those would resolve the episode and the next own run start a new one.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import trio

from actors.clock import Clock
from actors.models import AlertEvent, AlertStatus, Labels
from actors.rules.config import RuleConfig
from actors.rules.evaluate import (
    Condition,
    Instance,
    Phase,
    Rule,
    idle,
    resolve_all,
    step,
)
from actors.rules.exceptions import DuplicateLabelset, RuleNotFound
from actors.rules.fingerprints import SeriesFingerprints
from actors.rules.index import SelectorIndex
from actors.rules.persist import AlertStateStore, MemoryAlertStateStore
from actors.rules.plan import (
    Read,
    changed_reads,
    dispatch,
    distribute,
    plan_reads,
    selectors,
    share_changed,
)
from actors.rules.plan import scope as scope_of
from actors.rules.ratio import read as read_condition
from actors.rules.spec import rule_from_config, rule_from_spec
from actors.store.errors import StoreError
from actors.telemetry.exceptions import TelemetryError
from actors.telemetry.protocols import MetricStoreProtocol

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

__all__ = [
    "ALERTS_FIRING",
    "RULE_EVALUATION_FAILURES",
    "AlertSink",
    "AlertView",
    "RulesActor",
]

ALERTS_FIRING = "alerts_firing"
RULE_EVALUATION_FAILURES = "rule_evaluation_failures_total"
_SAVE_BACKOFF_MIN = 0.5  # seconds before a failed alert state save is retried, doubling
_SAVE_BACKOFF_MAX = 30.0
_NO_CONDITION = Condition(metric="")
_NONE: Mapping[str, Instance] = {}  # a rule's instances when it has none (never changed)
_Scoped = Mapping[str, Sequence[tuple[str, ...]]]  # changed series (label values) per rule id


class AlertSink(Protocol):
    """Where alert events go: a trio memory channel or a runtime `Mailbox` send side."""

    async def send(self, value: AlertEvent, /) -> None:
        """Deliver one event (may wait while the receiver is full)."""
        ...


@dataclass(frozen=True, slots=True)
class AlertView:
    """One pending or firing instance, as `GET /api/v1/alerts` shows it."""

    rule_id: str
    state: str
    fingerprint: str
    labels: Labels
    annotations: Labels
    active_since: float
    value: float

    def to_json(self) -> dict[str, object]:
        """The API representation (times in Unix seconds and RFC 3339 by the blueprint)."""
        return {
            "fingerprint": self.fingerprint,
            "rule": self.rule_id,
            "state": self.state,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "activeSince": self.active_since,
            "value": self.value,
        }


class RulesActor:
    """Evaluates rules; emits AlertEvents to `sink`; records `alerts_firing{rule,severity}`.

    Args:
        rules: the configured rules.
        store: the metric store (read with `aggregate`, `alerts_firing` recorded into it).
        sink: where AlertEvents go (routing's mailbox).
        state: persisted instance state (defaults to in-memory: no persistence).
        clock: wall time for evaluation and alert times; its monotonic time (the event loop's)
            paces the tick and the rest after a busy round.
        tracer: an OpenTelemetry tracer; one span per evaluation cycle when given.
        logger: where evaluation problems are logged.
        tick: seconds between evaluations of every rule.
        listen: register `on_sample` with the store in `run()` (False when wired by the caller).
        max_busy: the largest share of the core sample-driven evaluation takes under a flood
            of samples (a round that took d seconds is followed by a rest of
            d * (1 / max_busy - 1) before the next sample-driven round; rounds under 1 ms never
            rest, so a quiet system alerts at once).
        batch: the least time between two sample-driven rounds (seconds; 0: a round per wake-up).
            Samples arriving within it after a round wait for one round together; a sample
            after a quiet spell is evaluated at once: the added delay is at most `batch`.
        restore_grace: seconds after start during which a restored instance whose series has
            no value yet (the metric store is in memory: it starts empty) keeps its state
            instead of resolving; a value that arrives is evaluated normally. The same holds
            for an adopted instance, from its adoption.
        evaluates: which series and instances (by labels) this replica evaluates; None: all
            (see the module docstring).

    Attributes:
        evaluations: rule steps taken so far (a rule over its changed series counts once).
        series_evaluated: series values read from the store for evaluation so far.
        evaluation_failures: rule evaluations that failed so far (also
            `rule_evaluation_failures_total{rule}`; `errors()` has the current ones).

    Raises:
        InvalidRule: never for `RuleConfig` (already validated); see `add_rule`.
        MetricDeclarationError: `alerts_firing` already declared differently.
    """

    def __init__(
        self,
        *,
        rules: Sequence[RuleConfig] = (),
        store: MetricStoreProtocol,
        sink: AlertSink,
        clock: Clock,
        state: AlertStateStore | None = None,
        tracer: Tracer | None = None,
        logger: logging.Logger | None = None,
        tick: float = 1.0,
        listen: bool = True,
        max_busy: float = 0.5,
        batch: float = 0.025,
        restore_grace: float = 60.0,
        evaluates: Callable[[Mapping[str, str]], bool] | None = None,
    ) -> None:
        self._store = store
        self._sink = sink
        self._clock = clock
        self._state: AlertStateStore = state if state is not None else MemoryAlertStateStore()
        self._tracer = tracer
        self._log = logger or logging.getLogger("blipee.rules")
        self._tick = tick
        self._listen = listen
        self._max_busy = min(max(max_busy, 0.05), 1.0)
        self._batch = max(batch, 0.0)
        self._next_round = -math.inf  # monotonic: no sample-driven round before it
        self._restore_grace = restore_grace
        # Restored or adopted instances kept while their series has no value: rule id ->
        # fingerprint -> until (wall seconds).
        self._restored: dict[str, dict[str, float]] = {}
        self._evaluates = evaluates
        # Checks gained, with when (wall seconds), whose stored instances `_adopt` takes over.
        self._adopting: list[tuple[Callable[[Mapping[str, str]], bool], float]] = []
        # Adopted instances no sample of this replica has reached yet: rule id -> fingerprint
        # -> when the check came here. Their series' older values are not read (`_own`).
        self._unsampled: dict[str, dict[str, float]] = {}
        self._rules: dict[str, Rule] = {}
        # which rules a sample concerns, and a full round's reads: kept as the rules change
        self._index = SelectorIndex()
        self._plan: list[Read] | None = None
        self._instances: dict[str, dict[str, Instance]] = {}
        # each rule's alert fingerprint per series, computed once (not per sample and rule)
        self._fingerprints: dict[str, SeriesFingerprints] = {}
        # changed series per watched metric (with the wall time of the latest sample of each),
        # and rules to evaluate whole (added or replaced)
        self._dirty: dict[str, dict[tuple[str, ...], float]] = {}
        self._dirty_rules: set[str] = set()
        self._wake = trio.Event()
        self._outgoing: list[tuple[Rule, list[AlertEvent], list[Instance], list[str]]] = []
        # Transitions a failing store did not take, per rule and fingerprint (None: delete).
        self._unsaved: dict[str, dict[str, Instance | None]] = {}
        self._save_backoff = _SAVE_BACKOFF_MIN
        self._save_retry_at = 0.0
        self._firing_counts: dict[tuple[str, str], int] = {}
        self._warned: set[str] = set()
        self._errors: dict[str, str] = {}
        self.evaluations = 0
        self.series_evaluated = 0
        self.evaluation_failures = 0
        store.declare(
            ALERTS_FIRING,
            "gauge",
            "Alert instances currently firing, per rule and severity.",
            ("rule", "severity"),
        )
        store.declare(
            RULE_EVALUATION_FAILURES,
            "counter",
            "Rule evaluations that failed (e.g. two series with the same alert labels).",
            ("rule",),
        )
        for config in rules:
            self._install(rule_from_config(config))

    # -- the `alerting` API ------------------------------------------------------------------

    def add_rule(self, spec: Mapping[str, Any] | RuleConfig) -> Rule:
        """Add (or replace, by id) a rule; it is evaluated at once.

        Raises:
            InvalidRule: the rule is invalid (every problem listed).
        """
        rule = rule_from_config(spec) if isinstance(spec, RuleConfig) else rule_from_spec(spec)
        old = self._rules.get(rule.id)
        if old is not None:
            self._unwatch(old)
        self._install(rule)
        self._dirty_rules.add(rule.id)
        self._wake.set()
        return rule

    def remove_rule(self, rule_id: str) -> None:
        """Remove a rule; its firing instances are resolved.

        Raises:
            RuleNotFound: no rule has this id.
        """
        rule = self._rules.pop(rule_id, None)
        if rule is None:
            raise RuleNotFound(rule_id)
        self._unwatch(rule)
        self._retire(rule)
        self._fingerprints.pop(rule_id, None)
        self._wake.set()

    def rules(self) -> list[Rule]:
        """The loaded rules, by id."""
        return [self._rules[k] for k in sorted(self._rules)]

    def alerts(self) -> list[AlertView]:
        """Every pending and firing instance, firing first, then by rule and labels."""
        out = [
            AlertView(
                rule_id,
                str(inst.phase),
                inst.fingerprint,
                inst.labels,
                inst.annotations,
                inst.active_since,
                inst.value,
            )
            for rule_id, insts in self._instances.items()
            for inst in insts.values()
        ]
        out.sort(key=lambda a: (a.state != "firing", a.rule_id, a.labels))
        return out

    def errors(self) -> dict[str, str]:
        """The rules whose latest evaluation failed, by id, with the error (cleared by the next
        evaluation that succeeds)."""
        return dict(self._errors)

    # -- sharded replicas --------------------------------------------------------------------

    def release(self, lost: Callable[[Mapping[str, str]], bool]) -> int:
        """Drop the instances whose labels `lost` accepts, without resolving them: another
        replica evaluates them from now on (their stored state stays, for it to adopt).
        Firing ones are sent to routing as `released` events, which it forgets silently.
        Returns how many instances were dropped. Call it once `evaluates` rejects them."""
        now = self._clock.now()
        dropped = 0
        for rule_id, insts in list(self._instances.items()):
            gone = [fp for fp, inst in insts.items() if lost(dict(inst.labels))]
            if not gone:
                continue
            rule = self._rules[rule_id]
            events = [
                AlertEvent(insts[fp].to_alert(), rule_id, rule.channels, now, released=True)
                for fp in gone
                if insts[fp].phase is Phase.FIRING
            ]
            held = self._restored.get(rule_id, {})
            waiting = self._unsampled.get(rule_id, {})
            for fp in gone:
                del insts[fp]
                held.pop(fp, None)
                waiting.pop(fp, None)
            if not insts:
                del self._instances[rule_id]
            dropped += len(gone)
            self._outgoing.append((rule, events, [], []))
            self._count(rule, insts)
        self._wake.set()
        return dropped

    def adopt(self, gained: Callable[[Mapping[str, str]], bool]) -> None:
        """Take over, before the next evaluation, the stored instances whose labels `gained`
        accepts (and `evaluates` too): pending ones keep counting `duration` from when their
        condition first held, firing ones go on firing (re-announced to routing, whose shared
        log knows them). An instance this replica already has is kept as it is. A store that
        fails is asked again at the next evaluation. Until a sample taken after this call reaches
        an adopted instance's series, the series' older values are not read: the instance is kept
        as one whose series has no value (for the restore grace)."""
        self._adopting.append((gained, self._clock.now()))
        self._wake.set()

    async def _adopt(self) -> None:
        if not self._adopting:
            return
        wanted, self._adopting = self._adopting, []
        try:
            stored = await self._state.load()
        except StoreError as exc:
            self._log.warning("cannot load the alert state to adopt, retrying: %s", exc)
            self._adopting = wanted + self._adopting
            return
        now = self._clock.now()
        until = now + self._restore_grace
        for rule_id, insts in stored.items():
            rule = self._rules.get(rule_id)
            if rule is None or not rule.enabled:
                continue
            mine = self._instances.get(rule_id, {})
            taken: list[tuple[Instance, float]] = []
            for fp, inst in insts.items():
                if fp in mine or not self._accepts(inst.labels):
                    continue
                labels = dict(inst.labels)
                came = [at for accept, at in wanted if accept(labels)]
                if came:
                    taken.append((inst, min(came)))
            if not taken:
                continue
            held = self._restored.setdefault(rule_id, {})
            waiting = self._unsampled.setdefault(rule_id, {})
            for inst, came_at in taken:
                mine[inst.fingerprint] = inst
                held[inst.fingerprint] = until
                waiting[inst.fingerprint] = came_at
            self._instances[rule_id] = mine
            events = [
                AlertEvent(inst.to_alert(status=AlertStatus.FIRING), rule_id, rule.channels, now)
                for inst, _ in taken
                if inst.phase is Phase.FIRING
            ]
            self._outgoing.append((rule, events, [], []))
            self._count(rule, mine)

    def _accepts(self, labels: Labels) -> bool:
        return self._evaluates is None or self._evaluates(dict(labels))

    def _mine(self, rule: Rule, values: Mapping[Labels, float]) -> Mapping[Labels, float]:
        """The values of the series this replica evaluates (all of them unless sharded)."""
        accepts = self._evaluates
        if accepts is None:
            return values
        pinned = dict(rule.condition.labels)
        return {
            series: value for series, value in values.items() if accepts({**pinned, **dict(series)})
        }

    # -- the store listener ------------------------------------------------------------------

    def on_sample(self, metric: str, series: tuple[str, ...]) -> None:
        """Store listener: mark `series` of `metric` for evaluation, dated now (the sample's
        time: a round evaluates it as of then, see `step(since=...)`). Cheap, never raises."""
        if self._index.watches(metric):
            changed = self._dirty.get(metric)
            if changed is None:
                self._dirty[metric] = {series: self._clock.now()}
            else:
                changed[series] = self._clock.now()
            self._wake.set()

    # -- the loop ----------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Restore state, then evaluate until cancelled. Started once state is restored."""
        await self._restore()
        if self._listen:
            self._store.add_listener(self.on_sample)
        try:
            task_status.started()
            await self._flush_outgoing()
            monotonic = self._clock.monotonic
            next_tick = monotonic()
            while True:
                now_mono = monotonic()
                if now_mono >= next_tick:
                    await self.evaluate(None)
                    next_tick = now_mono + self._tick
                    continue
                with trio.move_on_after(next_tick - now_mono):
                    await self._wake.wait()
                if self._dirty and not (self._dirty_rules or self._outgoing or self._adopting):
                    # Coalesce: samples arriving within `batch` of the last sample-driven round
                    # (or its rest under a flood) wait for one round together; a sample after a
                    # quiet spell is evaluated at once. One scheduler pass first, so results
                    # made ready together are taken together.
                    await trio.sleep(max(self._next_round - monotonic(), 0.0))
                if self._dirty or self._dirty_rules or self._outgoing or self._adopting:
                    self._wake = trio.Event()
                    dirty, self._dirty = self._dirty, {}
                    rules, self._dirty_rules = self._dirty_rules, set()
                    began = monotonic()
                    await self.evaluate_changed(dirty, rules, at=dirty)
                    busy = monotonic() - began
                    # Under a flood of samples, leave the recorders their share of the core:
                    # rest as long as the round took (evaluation <= ~max_busy); rounds under
                    # 1 ms never rest beyond the batching window.
                    rest = busy / self._max_busy if busy > 0.001 else 0.0
                    self._next_round = began + max(self._batch, rest)
                else:
                    self._wake = trio.Event()
        finally:
            if self._listen:
                self._store.remove_listener(self.on_sample)

    async def evaluate(self, metrics: Iterable[str] | None) -> None:
        """Evaluate the rules watching `metrics` (all rules when None) over every series, then
        emit events."""
        if metrics is None:
            rule_ids: Iterable[str] = list(self._rules)
        else:
            rule_ids = sorted(set().union(*(self._index.keys(m) for m in metrics)))
        await self._round(lambda: self._evaluate_rules(rule_ids, None, full=metrics is None))

    async def evaluate_changed(
        self,
        series: Mapping[str, Collection[tuple[str, ...]]],
        rules: Iterable[str] = (),
        *,
        at: Mapping[str, Mapping[tuple[str, ...], float]] | None = None,
    ) -> None:
        """Evaluate the rules watching each metric of `series` over just those series (label
        values, as the store's listeners get them), and `rules` (ids) whole; then emit events.

        `at` (per metric, series label values -> wall time of the sample) dates the changed
        series: an instance they start is active from then, not from this round (`step`'s
        `since`); series without one start now.

        Only the rules whose label filter selects a changed series are evaluated (through the
        selector index kept as the rules change: `plan.dispatch`). For the instances of those
        series, the outcome is that of `evaluate` (see `step`). `absent` and ratio rules, and
        rules whose alert labels merge series (`plan.merges_series`), are evaluated over every
        series.
        """
        labels_of: dict[str, dict[tuple[str, ...], Labels]] = {}
        whole = set(rules)
        for metric, values in series.items():
            try:
                labels_of[metric] = {v: self._store.series_labels(metric, v) for v in values}
            except TelemetryError:
                whole.update(self._index.keys(metric))  # as a full round: `_values` warns
        plan = dispatch(self._rules, self._index, labels_of, whole)

        since: dict[str, dict[Labels, float]] = {}
        if at:
            for metric, times in at.items():
                labels = labels_of.get(metric)
                if labels is not None:
                    since[metric] = {labels[v]: t for v, t in times.items() if v in labels}

        def both() -> int:
            return self._evaluate_rules(plan.whole, None, since=since) + self._evaluate_rules(
                plan.scoped, (plan.scoped, labels_of), since=since
            )

        await self._round(both)

    async def _round(self, evaluate: Callable[[], int]) -> None:
        await self._adopt()
        if self._tracer is not None:
            with self._tracer.start_as_current_span("rules.evaluate") as span:
                count = evaluate()
                span.set_attribute("rules.count", count)
                span.set_attribute("rules.events", sum(len(e) for _, e, _, _ in self._outgoing))
        else:
            evaluate()
        await self._flush_outgoing()

    # -- internals ---------------------------------------------------------------------------

    def _install(self, rule: Rule) -> None:
        old = self._rules.get(rule.id)
        self._rules[rule.id] = rule
        self._plan = None
        if not rule.enabled:
            if old is not None:
                self._retire(old)
            return
        for metric, matchers in selectors(rule):
            self._index.add(rule.id, metric, matchers)

    def _unwatch(self, rule: Rule) -> None:
        self._index.remove(rule.id)
        self._plan = None

    def _fingerprints_of(self, rule: Rule) -> SeriesFingerprints:
        """The memo of `rule`'s fingerprints: a new one for a new (or replaced) rule object."""
        memo = self._fingerprints.get(rule.id)
        if memo is None or memo.rule is not rule:
            memo = self._fingerprints[rule.id] = SeriesFingerprints(rule)
        return memo

    def _retire(self, rule: Rule) -> None:
        self._unsampled.pop(rule.id, None)
        insts = self._instances.pop(rule.id, {})
        self._errors.pop(rule.id, None)
        now = self._clock.now()
        events = resolve_all(rule, insts.values(), now)
        self._outgoing.append((rule, events, [], list(insts)))
        self._count(rule, {})

    def _evaluate_rules(
        self,
        rule_ids: Iterable[str],
        changed: tuple[_Scoped, Mapping[str, Mapping[tuple[str, ...], Labels]]] | None,
        *,
        full: bool = False,
        since: Mapping[str, Mapping[Labels, float]] | None = None,
    ) -> int:
        """Step `rule_ids` over every series (`changed` None) or over the changed series only
        (`changed`: each rule's changed series, and their labels per metric). `full`: these
        are all the rules (the plan kept until the rules change serves). `since`: per metric,
        when each changed series' sample was taken (`step`'s `since`)."""
        now = self._clock.now()
        rules = [r for r in (self._rules.get(i) for i in rule_ids) if r is not None and r.enabled]
        if not rules:
            return 0
        touched: dict[str, Sequence[Labels] | None] | None = None
        values: Mapping[str, Mapping[Labels, float]]
        if changed is None:
            if full and self._plan is None:
                self._plan = plan_reads(rules)
            values = self._batch_values(self._plan if full else None, rules, now)
        else:
            values, touched = self._changed_values(rules, *changed, now)
        evaluated = 0
        # This loop runs for every rule at every sample when rules are unfiltered: what it
        # does per rule is kept to a few lookups until a rule has something to step.
        instances_of = self._instances
        memos = self._fingerprints
        errors = self._errors
        sharded = self._evaluates is not None
        for rule in rules:
            rule_id = rule.id
            before = instances_of.get(rule_id, _NONE)
            memo = memos.get(rule_id)
            if memo is None or memo.rule is not rule:
                memo = self._fingerprints_of(rule)
            fingerprint_of = memo.__getitem__
            mine = self._mine(rule, values[rule_id]) if sharded else values[rule_id]
            sampled = since.get(rule.condition.metric) if since else None
            waiting = self._unsampled.get(rule_id) if sharded else None
            if waiting:
                mine = _own(mine, waiting, fingerprint_of, sampled)
            scope: AbstractSet[str] | None = None
            if touched is not None and (series := touched[rule_id]) is not None:
                if not series:
                    continue
                if idle(rule, before, mine, series, fingerprint_of):
                    # What the step would return: nothing holds, no instance of the series.
                    if errors:
                        errors.pop(rule_id, None)
                    evaluated += 1
                    continue
                # Only instances outside the scope need it: none, no fingerprints to compute.
                scope = scope_of(rule, series, fingerprint_of) if before else frozenset()
            elif memo.oversized(len(mine)):
                memo.retain(mine)  # every series read: forget those that stopped
            keep: AbstractSet[str] = frozenset()
            held = self._restored.get(rule_id)
            if held:
                keep = frozenset(fp for fp, until in held.items() if now < until)
                if len(keep) < len(held):
                    if keep:
                        self._restored[rule_id] = {fp: held[fp] for fp in keep}
                    else:
                        del self._restored[rule_id]
            try:
                result = step(
                    rule,
                    before,
                    mine,
                    now,
                    keep_missing=keep,
                    scope=scope,
                    fingerprint_of=fingerprint_of,
                    since=sampled,
                )
            except DuplicateLabelset as exc:
                # As Prometheus: the evaluation fails, the rule's alerts keep their state.
                self._failed(rule, exc)
                continue
            self._errors.pop(rule.id, None)
            evaluated += 1
            if result.instances:
                self._instances[rule.id] = result.instances
            else:
                self._instances.pop(rule.id, None)
            if waiting is not None:
                for fp in [fp for fp in waiting if fp not in result.instances]:
                    del waiting[fp]  # resolved (its series had no value past the grace)
                if not waiting:
                    del self._unsampled[rule_id]
            if result.events or result.changed:
                upserts = [result.instances[fp] for fp in result.changed if fp in result.instances]
                deletes = [fp for fp in result.changed if fp not in result.instances]
                self._outgoing.append((rule, result.events, upserts, deletes))
                self._count(rule, result.instances)
        self.evaluations += evaluated
        return evaluated

    def _batch_values(
        self, reads: Sequence[Read] | None, rules: Sequence[Rule], now: float
    ) -> dict[str, Mapping[Labels, float]]:
        """Values per rule: one store read per read of `reads` (None: `plan_reads(rules)`),
        shared reads handed out."""
        out: dict[str, Mapping[Labels, float]] = {}
        for read in plan_reads(rules) if reads is None else reads:
            if read.shared:
                try:
                    everything = self._store.aggregate(
                        read.metric, {}, read.aggregate, read.window, now=now
                    )
                except TelemetryError:
                    pass  # as the rules' own reads would: `_values` warns and reads nothing
                else:
                    self.series_evaluated += len(everything)
                    out.update(distribute(read, everything))
                    continue
            for rule in read.rules:
                out[rule.id] = self._values(rule, now)
        return out

    def _changed_values(
        self,
        rules: Sequence[Rule],
        scoped: _Scoped,
        labels_of: Mapping[str, Mapping[tuple[str, ...], Labels]],
        now: float,
    ) -> tuple[dict[str, Mapping[Labels, float]], dict[str, Sequence[Labels] | None]]:
        """Values and the changed series read (the scope of `step`) per rule.

        Rules reading the same `(metric, aggregate, window)` share one read of their changed
        series (`plan.changed_reads`). A series that no longer has a value is read without a
        value (its instance resolves as in a full step). Not for `absent` or ratio rules.
        """
        values: dict[str, Mapping[Labels, float]] = {}
        touched: dict[str, Sequence[Labels] | None] = {}
        for read in changed_reads(rules, scoped):
            try:
                found = self._store.aggregate_series(
                    read.metric, read.series, {}, read.aggregate, read.window, now=now
                )
            except TelemetryError:
                for rule in read.rules:  # as a full round: `_values` warns
                    touched[rule.id] = None
                    values[rule.id] = self._values(rule, now)
                continue
            self.series_evaluated += len(found)
            shared, series = share_changed(read, found, scoped, labels_of[read.metric])
            values.update(shared)
            touched.update(series)
        return values, touched

    def _warn(self, rule: Rule, exc: TelemetryError) -> None:
        if rule.id not in self._warned:
            self._warned.add(rule.id)
            self._log.warning("rule %s: %s", rule.id, exc)

    def _failed(self, rule: Rule, exc: DuplicateLabelset) -> None:
        self.evaluation_failures += 1
        self._store.record(RULE_EVALUATION_FAILURES, 1, {"rule": rule.id})
        if self._errors.get(rule.id) != str(exc):
            self._log.warning("rule %s: evaluation failed: %s", rule.id, exc)
        self._errors[rule.id] = str(exc)

    def _values(self, rule: Rule, now: float) -> Mapping[Labels, float]:
        cond = rule.condition
        try:
            values = read_condition(self._store, cond, now)
            self.series_evaluated += len(values)
            return values
        except TelemetryError as exc:
            self._warn(rule, exc)
            if cond.aggregate == "absent":
                return {(): 1.0}
            return {}

    def _count(self, rule: Rule, instances: Mapping[str, Instance]) -> None:
        firing = sum(1 for i in instances.values() if i.phase is Phase.FIRING)
        key = (rule.id, str(rule.severity))
        if self._firing_counts.get(key) != firing:
            self._firing_counts[key] = firing
            self._store.record(ALERTS_FIRING, firing, {"rule": key[0], "severity": key[1]})

    async def _flush_outgoing(self) -> None:
        """Persist, then send, every pending transition, in order.

        Cancellation-safe: a batch leaves `_outgoing` only once it is saved and all its events
        are sent (an event leaves it once sent), so when a full sink keeps this waiting and the
        actor is cancelled (a restart, or a stop while routing lags) the rest is sent by the
        next `run()` of this actor object, not lost.
        """
        outgoing = self._outgoing
        await self._retry_unsaved()
        while outgoing:
            rule, events, upserts, deletes = outgoing[0]
            if upserts or deletes:
                # Durable before anyone hears of it: see the module docstring.
                await self._save(rule.id, upserts, deletes)
                outgoing[0] = (rule, events, [], [])
            while events:
                await self._sink.send(events[0])
                events.pop(0)
            outgoing.pop(0)

    async def _save(
        self, rule_id: str, upserts: Sequence[Instance], deletes: Sequence[str]
    ) -> None:
        """Save one rule's transitions; a failing store keeps them in `_unsaved` (merged after
        any earlier unsaved ones of the rule, so a retry never writes an older state last)."""
        if self._unsaved:
            merged = self._unsaved.setdefault(rule_id, {})
            merged.update({i.fingerprint: i for i in upserts})
            merged.update(dict.fromkeys(deletes))
            await self._retry_unsaved()
            return
        try:
            await self._state.save(rule_id, upserts, deletes)
        except StoreError as exc:
            merged = self._unsaved.setdefault(rule_id, {})
            merged.update({i.fingerprint: i for i in upserts})
            merged.update(dict.fromkeys(deletes))
            self._save_failed(exc)

    async def _retry_unsaved(self) -> None:
        """Save what a failing store did not take, once its backoff has passed."""
        if not self._unsaved or self._clock.monotonic() < self._save_retry_at:
            return
        for rule_id in list(self._unsaved):
            merged = self._unsaved[rule_id]
            upserts = [i for i in merged.values() if i is not None]
            deletes = [fp for fp, i in merged.items() if i is None]
            try:
                await self._state.save(rule_id, upserts, deletes)
            except StoreError as exc:
                self._save_failed(exc)
                return
            if self._unsaved.get(rule_id) is merged:
                del self._unsaved[rule_id]
        self._log.warning("alert state saved again after a store failure")
        self._save_backoff = _SAVE_BACKOFF_MIN
        self._save_retry_at = 0.0

    def _save_failed(self, exc: StoreError) -> None:
        if self._save_backoff == _SAVE_BACKOFF_MIN:
            self._log.error("cannot save alert state, alerting goes on and retries: %s", exc)
        self._save_retry_at = self._clock.monotonic() + self._save_backoff
        self._save_backoff = min(self._save_backoff * 2, _SAVE_BACKOFF_MAX)

    @property
    def unsaved(self) -> int:
        """Instances whose transitions wait for a failing store (0 when all are saved)."""
        return sum(len(m) for m in self._unsaved.values())

    async def _restore(self) -> None:
        try:
            stored = await self._state.load()
        except StoreError as exc:
            self._log.error("cannot load the stored alert state, starting without it: %s", exc)
            stored = {}
        now = self._clock.now()
        until = now + self._restore_grace
        self._restored = {}
        for rule_id, insts in stored.items():
            rule = self._rules.get(rule_id)
            if rule is None or not rule.enabled:
                # The rule is gone: resolve what was firing, forget the rest.
                ghost = Rule(id=rule_id, name=rule_id, condition=_NO_CONDITION)
                events = [
                    AlertEvent(e.alert, rule_id, (), now)
                    for e in resolve_all(ghost, insts.values(), now)
                ]
                self._outgoing.append((ghost, events, [], list(insts)))
                continue
            # Sharded: the instances of checks another replica runs are its to continue.
            insts = {fp: i for fp, i in insts.items() if self._accepts(i.labels)}
            if not insts:
                continue
            self._instances[rule_id] = dict(insts)
            self._restored[rule_id] = dict.fromkeys(insts, until)
            firing = [i for i in insts.values() if i.phase is Phase.FIRING]
            events = [
                AlertEvent(i.to_alert(status=AlertStatus.FIRING), rule_id, rule.channels, now)
                for i in firing
            ]
            self._outgoing.append((rule, events, [], []))
            self._count(rule, insts)


def _own(
    values: Mapping[Labels, float],
    waiting: dict[str, float],
    fingerprint_of: Callable[[Labels], str],
    sampled: Mapping[Labels, float] | None,
) -> Mapping[Labels, float]:
    """`values` without the series of adopted instances (`waiting`: fingerprint -> when their
    check came to this replica) that no sample taken since has reached. A series `sampled`
    (changed in this round, with its sample's time) at or after that time is this replica's own
    from now on: its instance leaves `waiting`."""
    out: dict[Labels, float] | None = None
    for series in values:
        fp = fingerprint_of(series)
        came = waiting.get(fp)
        if came is None:
            continue
        at = sampled.get(series) if sampled is not None else None
        if at is not None and at >= came:
            del waiting[fp]
            continue
        if out is None:
            out = dict(values)
        del out[series]
    return values if out is None else out

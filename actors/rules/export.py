"""Our `[[rules]]` as a Prometheus rules file over the metric names `/metrics` exposes.

Pure translation, no I/O: `export_rules` turns validated rule configurations (and the kind of
each metric they watch) into a rules document and the notes about what could not be said
exactly; `render_rules_file` writes it as YAML with those notes as comments. `blipee-monitor
export-rules` prints the notes on stderr too.

How a condition becomes PromQL (`aggregate(metric{labels}[window]) operator threshold`):

| aggregate | counter | gauge | histogram |
|---|---|---|---|
| `last` | `m` | `m` | none |
| `avg min max` | none | `*_over_time(m[w])` | `avg`: `rate(m_sum[w]) / rate(m_count[w])` |
| `pNN` | none | `quantile_over_time(q, m[w])` | `histogram_quantile(q, rate(m_bucket[w]))` |
| `sum` | `increase(m[w])` | none | `increase(m_sum[w])` |
| `count` | `changes(m[w])` | none | `increase(m_count[w])` |
| `increase` | `increase(m[w])` | `delta(m[w])` | `increase(m_count[w])` |
| `rate` | `rate(m[w])` | `delta(m[w]) / w` | `rate(m_count[w])` |
| `absent` | `absent_over_time(m[w])` | same | `absent_over_time(m_count[w])` |

"none": Prometheus, which only sees what it scrapes, has no counterpart (a counter's increments,
a gauge's number of samples set, a histogram's single observations); such a rule is left out
and named in a note. Where the counterpart is approximate (extrapolation, bucket interpolation,
time-weighted scrapes), the rule is exported and the note says how it differs.

Alerts: `alert` is the rule's `name`, `for` its `duration`, `keep_firing_for` as is, labels
`severity`, `rule` and the rule's `labels`; annotations (`summary`, `description` and the
others) have `{{ value }}` as `{{ $value }}`, `{{ labels.x }}` as `{{ $labels.x }}`, and what is
known when exporting (`alertname`, `rule`, `severity`, the rule's labels, `threshold`, `metric`)
written out, since Prometheus' `$labels` holds only the series' labels.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from actors.rules.config import ConditionConfig, RuleConfig
from actors.rules.evaluate import TEMPLATE_ACTION

__all__ = [
    "ExportNote",
    "RulesExport",
    "export_rules",
    "format_duration",
    "promql",
    "render_rules_file",
    "translate_template",
]

QUANTILES = {"p50": "0.5", "p90": "0.9", "p95": "0.95", "p99": "0.99"}
_GO_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class ExportNote:
    """What could not be exported exactly for one rule.

    `exported` is False when the rule was left out of the file (no counterpart at all), True
    when it is in the file but Prometheus' answer may differ as `text` says.
    """

    rule_id: str
    text: str
    exported: bool

    def __str__(self) -> str:
        verdict = "approximated" if self.exported else "not exported"
        return f"rule {self.rule_id!r}: {verdict}: {self.text}"


@dataclass(frozen=True, slots=True)
class RulesExport:
    """A rules document (`{"groups": [...]}`, as Prometheus reads it) and its notes."""

    document: dict[str, Any]
    notes: tuple[ExportNote, ...]


def format_duration(seconds: float) -> str:
    """`seconds` as a Prometheus duration: `"0s"`, `"90s"` as `"1m30s"`, `"250ms"`, `"1d"`.

    Sub-millisecond parts are rounded to the millisecond (Prometheus' resolution).
    """
    millis = round(seconds * 1000)
    if millis <= 0:
        return "0s"
    out = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        count, millis = divmod(millis, size)
        if count:
            out.append(f"{count}{unit}")
    if millis:
        out.append(f"{millis}ms")
    return "".join(out)


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _selector(metric: str, labels: Mapping[str, str]) -> str:
    if not labels:
        return metric
    # A JSON string is a valid PromQL string literal (the same escapes).
    inside = ", ".join(
        f"{name}={json.dumps(value, ensure_ascii=False)}" for name, value in sorted(labels.items())
    )
    return f"{metric}{{{inside}}}"


def promql(
    condition: ConditionConfig, kind: str, divisor_kind: str | None = None
) -> tuple[str | None, str | None]:
    """The PromQL expression of `condition` over a metric of `kind`, and a note.

    Returns `(expr, note)`: `expr` is None when Prometheus has no counterpart (the note says
    why); otherwise `note` is None when the expression means the same, or says how it differs.
    A ratio (`divide_by`, over a metric of `divisor_kind`) is `a / (b != 0)`: a zero or missing
    denominator is no value, as ours.

    Raises:
        ValueError: `kind` (or `divisor_kind`) is not counter, gauge or histogram, or
            `divisor_kind` is missing for a ratio.
    """
    expr, note = _aggregate(condition, kind)
    if condition.aggregate == "absent":
        return expr, note  # true whatever the operator: no comparison (never divided)
    below = condition.divide_by
    if expr is not None and below is not None:
        if divisor_kind is None:
            raise ValueError("a ratio needs the kind of its divide_by metric")
        denominator = condition.model_copy(
            update={
                "metric": below.metric,
                "aggregate": below.aggregate or condition.aggregate,
                "labels": condition.labels if below.labels is None else below.labels,
                "divide_by": None,
            }
        )
        below_expr, below_note = _aggregate(denominator, divisor_kind)
        if below_expr is None:
            return None, f"divide_by: {below_note}"
        expr = f"{expr} / ({below_expr} != 0)"
        if below_note is not None:
            note = f"{note}; divide_by: {below_note}" if note else f"divide_by: {below_note}"
    if expr is None:
        return None, note
    return f"{expr} {condition.operator} {_number(condition.threshold)}", note


def _aggregate(condition: ConditionConfig, kind: str) -> tuple[str | None, str | None]:
    """`promql` without the comparison (and without `divide_by`)."""
    if kind not in ("counter", "gauge", "histogram"):
        raise ValueError(f"unknown metric kind {kind!r}")
    agg = condition.aggregate
    window = format_duration(condition.window)
    metric = condition.metric
    labels = condition.labels

    def ranged(name: str = metric) -> str:
        return f"{_selector(name, labels)}[{window}]"

    expr: str | None = None
    note: str | None = None
    if agg == "absent":
        target = f"{metric}_count" if kind == "histogram" else metric
        if condition.window > 300:
            note = (
                "absent_over_time() sees samples of a series that went stale inside the window"
                " (longer than the 5m lookback); here a stale series is absent"
            )
        return f"absent_over_time({ranged(target)})", note
    if kind == "counter":
        if agg == "last":
            expr = _selector(metric, labels)
        elif agg in ("increase", "sum"):
            expr = f"increase({ranged()})"
            note = "increase() extrapolates to the window's edges; here the increments are added"
        elif agg == "rate":
            expr = f"rate({ranged()})"
            note = "rate() extrapolates to the window's edges; here the increments are added"
        elif agg == "count":
            expr = f"changes({ranged()})"
            note = "changes() counts scrapes that saw the total move, not each increment"
        else:
            note = f"{agg} of a counter is over its increments, which Prometheus does not see"
    elif kind == "gauge":
        if agg == "last":
            expr = _selector(metric, labels)
        elif agg in ("min", "max"):
            expr = f"{agg}_over_time({ranged()})"
        elif agg == "avg":
            expr = f"avg_over_time({ranged()})"
            note = "avg_over_time() weighs each scrape; here each value set counts once"
        elif agg in QUANTILES:
            expr = f"quantile_over_time({QUANTILES[agg]}, {ranged()})"
            note = "quantile_over_time() weighs each scrape; here each value set counts once"
        elif agg in ("increase", "rate"):
            expr = f"delta({ranged()})"
            if agg == "rate":
                expr = f"{expr} / {_number(condition.window)}"
            note = "delta() extrapolates to the window's edges; here last minus first held value"
        else:
            note = f"{agg} of a gauge counts the values set, which Prometheus does not see"
    else:
        if agg in QUANTILES:
            expr = f"histogram_quantile({QUANTILES[agg]}, rate({ranged(metric + '_bucket')}))"
            note = (
                "histogram_quantile() interpolates inside a bucket; here the quantile is of the"
                " observations"
            )
        elif agg == "avg":
            expr = f"rate({ranged(metric + '_sum')}) / rate({ranged(metric + '_count')})"
        elif agg == "sum":
            expr = f"increase({ranged(metric + '_sum')})"
            note = "increase() extrapolates to the window's edges; here the observations are added"
        elif agg in ("count", "increase"):
            expr = f"increase({ranged(metric + '_count')})"
            note = (
                "increase() extrapolates to the window's edges; here the observations are counted"
            )
        elif agg == "rate":
            expr = f"rate({ranged(metric + '_count')})"
            note = "rate() extrapolates to the window's edges; here the observations are counted"
        else:
            note = f"{agg} of a histogram is of single observations, which Prometheus does not see"
    return expr, note


def _literal(text: str) -> str:
    # Text of a Go template is printed as is, except `{{`, which opens an action.
    return text.replace("{{", '{{ "{{" }}')


def translate_template(template: str, *, known: Mapping[str, str]) -> str:
    """Our annotation template as a Prometheus (Go) template that renders the same text.

    `{{ value }}` becomes `{{ $value }}`; `{{ labels.NAME }}` becomes the literal `known` value
    when NAME is in `known` with a `labels.` prefix (labels Prometheus' `$labels` lacks: the
    alert's own), else `{{ $labels.NAME }}` (`{{ index $labels "NAME" }}` when NAME is not an
    identifier); any other name in `known` (e.g. `threshold`) is written out; anything else,
    which we print as written, is printed as written there too.
    """
    out: list[str] = []
    position = 0
    for match in TEMPLATE_ACTION.finditer(template):
        out.append(_literal(template[position : match.start()]))
        position = match.end()
        expr = match.group(1).lstrip("$").strip()
        if expr == "value":
            out.append("{{ $value }}")
        elif expr in known:
            out.append(_literal(known[expr]))
        elif expr.startswith("labels."):
            name = expr[len("labels.") :]
            if _GO_IDENTIFIER.match(name):
                out.append(f"{{{{ $labels.{name} }}}}")
            else:
                out.append(f"{{{{ index $labels {json.dumps(name)} }}}}")
        else:
            out.append(_literal(match.group(0)))
    out.append(_literal(template[position:]))
    return "".join(out)


def _alert(rule: RuleConfig, expr: str) -> dict[str, Any]:
    labels = {"severity": str(rule.severity), "rule": rule.id, **rule.labels}
    known = {f"labels.{name}": value for name, value in labels.items()}
    known.update({"labels.alertname": rule.name, "labels.rule": rule.id})
    cond = rule.condition
    known.update({"threshold": _threshold_text(cond.threshold), "metric": cond.metric})
    annotations = dict(rule.annotations)
    if rule.summary:
        annotations.setdefault("summary", rule.summary)
    if rule.description:
        annotations.setdefault("description", rule.description)
    out: dict[str, Any] = {"alert": rule.name, "expr": expr}
    if cond.duration:
        out["for"] = format_duration(cond.duration)
    if rule.keep_firing_for:
        out["keep_firing_for"] = format_duration(rule.keep_firing_for)
    # Prometheus expands templates in label values too: a literal `{{` must stay literal.
    out["labels"] = {name: _literal(value) for name, value in labels.items()}
    if annotations:
        out["annotations"] = {
            name: translate_template(text, known=known) for name, text in annotations.items()
        }
    return out


def _threshold_text(value: float) -> str:
    # As our templates print it (evaluate._format_value).
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


def export_rules(
    rules: Sequence[RuleConfig], kinds: Mapping[str, str], *, group: str = "blipee-monitor"
) -> RulesExport:
    """Translate `rules` into one Prometheus rule group named `group`.

    `kinds` maps each declared metric name to `counter`, `gauge` or `histogram`. A disabled rule,
    a rule over an undeclared metric and a condition without a PromQL counterpart are left out;
    each such rule, and each exported one whose answer may differ, gets a note. Never raises for
    validated rules.
    """
    alerts: list[dict[str, Any]] = []
    notes: list[ExportNote] = []
    for rule in rules:
        if not rule.enabled:
            notes.append(ExportNote(rule.id, "the rule is disabled", exported=False))
            continue
        kind = kinds.get(rule.condition.metric)
        if kind is None:
            text = f"metric {rule.condition.metric!r} is not declared, so its kind is unknown"
            notes.append(ExportNote(rule.id, text, exported=False))
            continue
        below = rule.condition.divide_by
        divisor_kind = kinds.get(below.metric) if below is not None else None
        if below is not None and divisor_kind is None:
            text = f"metric {below.metric!r} is not declared, so its kind is unknown"
            notes.append(ExportNote(rule.id, text, exported=False))
            continue
        expr, note = promql(rule.condition, kind, divisor_kind)
        if expr is None:
            notes.append(ExportNote(rule.id, note or "no PromQL counterpart", exported=False))
            continue
        if note is not None:
            notes.append(ExportNote(rule.id, note, exported=True))
        alerts.append(_alert(rule, expr))
    document: dict[str, Any] = {"groups": [{"name": group, "rules": alerts}]}
    return RulesExport(document, tuple(notes))


def render_rules_file(export: RulesExport, *, source: str = "") -> str:
    """The rules file: a comment header (source, then every note), then the YAML document."""
    header = ["# Prometheus rules exported by blipee-monitor export-rules"]
    if source:
        header.append(f"# from {source}")
    if export.notes:
        header.append("#")
        header.append("# Not exported exactly:")
        header.extend(f"#   {note}" for note in export.notes)
    body = yaml.safe_dump(
        export.document, sort_keys=False, allow_unicode=True, width=10_000, default_flow_style=False
    )
    return "\n".join(header) + "\n" + body

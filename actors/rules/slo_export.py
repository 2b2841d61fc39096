"""The SLOs as Prometheus rules: Sloth-style recording rules and the burn-rate alerting rules.

`slo_rule_groups(slos)` is pure: one rule group per SLO (a mapping `promtool check rules`
accepts once written as YAML or JSON), over the metrics as our `/metrics` exposes them:

- `slo:sli_error:ratio_rate<w>{slo, window}` for each burn-rate window (5m 30m 1h 2h 6h 1d 3d)
  and the SLO's own window (e.g. `ratio_rate30d`): bad / total events over `w`, with
  `sum(rate(...))` on both sides (a latency SLI's total is `<histogram>_count`, its good events
  `<histogram>_bucket{le}`; good events make `(total - good) / total`);
- `slo:objective:ratio`, `slo:error_budget:ratio` (`1 - objective`) and
  `slo:error_budget_remaining:ratio` (`1 - ratio_rate<window> / (1 - objective)`);
- the alerts `SloErrorBudgetBurn{slo, burn="page"|"ticket"}` with the severity, labels and
  window pairs of the generated rules (`actors.rules.slo`): a pair holds when both of its
  windows' error ratio is above `factor * (1 - objective)`, the threshold written as the exact
  float our evaluator compares with.

Selectors: an SLI's `labels` are `=~` matchers and its `labels_not` `!~` (both anchored RE2 in
Prometheus too). Where our SLO evaluator and Prometheus differ is in how a window's events are
counted (`rate()` extrapolates to the window's edges; we add what each evaluation counted):
under a steady rate they agree, see docs/slos.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from actors.configtypes import format_duration
from actors.rules.slo import ALERTS, SEVERITIES, WINDOWS, describe_pairs, rule_id
from actors.rules.slo_config import SelectorConfig, SloConfig
from actors.telemetry.exposition import le_label

__all__ = ["ALERT_NAME", "promql_window", "slo_rule_groups"]

ALERT_NAME = "SloErrorBudgetBurn"


def promql_window(seconds: float) -> str:
    """A window as a PromQL duration ("5m", "30d"); whole seconds."""
    return format_duration(seconds)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _selector(metric: str, selector: SelectorConfig, extra: Mapping[str, str] | None = None) -> str:
    matchers = [f"{name}={_quote(value)}" for name, value in (extra or {}).items()]
    matchers += [f"{name}=~{_quote(value)}" for name, value in sorted(selector.labels.items())]
    matchers += [f"{name}!~{_quote(value)}" for name, value in sorted(selector.labels_not.items())]
    return metric + ("{" + ",".join(matchers) + "}" if matchers else "")


def _sum_rate(selector: str, window: str) -> str:
    return f"sum(rate({selector}[{window}]))"


def error_ratio_expr(slo: SloConfig, window: float) -> str:
    """The PromQL of the SLO's error ratio over `window` seconds."""
    w = promql_window(window)
    if slo.sli is not None:
        sli = slo.sli
        total = _sum_rate(_selector(f"{sli.metric}_count", sli), w)
        good = _sum_rate(_selector(f"{sli.metric}_bucket", sli, {"le": le_label(sli.le)}), w)
        return f"({total} - {good}) / {total}"
    assert slo.total is not None  # validated: total with good or bad
    total = _sum_rate(_selector(slo.total.metric, slo.total), w)
    if slo.bad is not None:
        return f"{_sum_rate(_selector(slo.bad.metric, slo.bad), w)} / {total}"
    assert slo.good is not None
    good = _sum_rate(_selector(slo.good.metric, slo.good), w)
    return f"({total} - {good}) / {total}"


def _ratio(slo: SloConfig, window: float) -> str:
    return f"slo:sli_error:ratio_rate{promql_window(window)}{{slo={_quote(slo.name)}}}"


def _alert_expr(slo: SloConfig, alert: str) -> str:
    budget = 1.0 - slo.objective
    pairs = []
    for pair in ALERTS[alert]:
        threshold = repr(pair.factor(slo.window) * budget)
        long = f"max without (window) ({_ratio(slo, pair.long)} > {threshold})"
        short = f"max without (window) ({_ratio(slo, pair.short)} > {threshold})"
        pairs.append(f"({long} and {short})")
    return " or ".join(pairs)


def slo_rule_groups(slos: Iterable[SloConfig]) -> list[dict[str, Any]]:
    """One Prometheus rule group per SLO: its recording rules, then its two alerting rules."""
    groups: list[dict[str, Any]] = []
    for slo in slos:
        labels = {"slo": slo.name}
        rules: list[dict[str, Any]] = []
        for window in (*WINDOWS, slo.window):
            rules.append(
                {
                    "record": f"slo:sli_error:ratio_rate{promql_window(window)}",
                    "expr": error_ratio_expr(slo, window),
                    "labels": {**labels, "window": promql_window(window)},
                }
            )
        rules.append(
            {"record": "slo:objective:ratio", "expr": repr(slo.objective), "labels": labels}
        )
        budget = repr(1.0 - slo.objective)
        rules.append({"record": "slo:error_budget:ratio", "expr": budget, "labels": labels})
        rules.append(
            {
                "record": "slo:error_budget_remaining:ratio",
                "expr": (
                    f"1 - max without (window) ({_ratio(slo, slo.window)})"
                    f" / {1.0 - slo.objective!r}"
                ),
                "labels": labels,
            }
        )
        for alert in ALERTS:
            pairs = describe_pairs(ALERTS[alert], slo.window)
            rules.append(
                {
                    "alert": ALERT_NAME,
                    "expr": _alert_expr(slo, alert),
                    "labels": {
                        **slo.labels,
                        "slo": slo.name,
                        "burn": alert,
                        "severity": SEVERITIES[alert],
                        "rule": rule_id(slo.name, alert),
                    },
                    "annotations": {
                        "summary": (
                            f"SLO {slo.name}: error ratio {{{{ $value | humanizePercentage }}}}"
                            f" burns the budget ({pairs})"
                        ),
                        **({"description": slo.description} if slo.description else {}),
                    },
                }
            )
        groups.append({"name": f"slo-{slo.name}", "rules": rules})
    return groups

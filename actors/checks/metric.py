"""kind = "metric": fails while `condition` holds for any matching series of the metric store.

`aggregate(metric{labels}[window]) operator threshold` (or a ratio, with `divide_by`) is
evaluated per series, as a rule's condition is (the condition's `duration` is not used here:
`failure_threshold` plays that role).
Details: `series` (how many matched), `failing` (how many hold the condition), `value` (the mean
of the aggregated values). Series labelled `model` are reported as the seed's "mlModels" check:
"All 4 ML models healthy" with `deployedModels` and `avgLatency` (milliseconds, for a metric in
seconds) in the details.
"""

from __future__ import annotations

from typing import Literal

from actors.checks.config import CheckBase
from actors.checks.errors import ProbeError
from actors.checks.logic import Observation
from actors.checks.probe import CheckContext, KindProbe, lent
from actors.rules.config import ConditionConfig
from actors.rules.evaluate import compare
from actors.rules.ratio import read
from actors.rules.spec import condition_from_config
from actors.telemetry.protocols import MetricReader

__all__ = ["MetricCheckConfig", "MetricProbe", "MetricReader"]


class MetricCheckConfig(CheckBase):
    """kind = "metric": fails while `condition` holds for any matching series."""

    kind: Literal["metric"]
    condition: ConditionConfig


def _fmt(value: float) -> str:
    return f"{value:.6g}"


class MetricProbe(KindProbe[MetricCheckConfig]):
    """Evaluates the condition against the store (the `CheckContext`'s `store`); never does I/O.

    Raises:
        CheckError: (at construction) the context lends no metric store.
    """

    def __init__(self, config: MetricCheckConfig, context: CheckContext) -> None:
        super().__init__(config, context)
        self._store: MetricReader = lent(context.store, config, "the metric store")
        self._condition = condition_from_config(config.condition)

    async def probe(self) -> Observation:
        """Aggregate and compare; raises ProbeError when the store refuses the query."""
        cond = self.config.condition
        try:
            values = read(self._store, self._condition, self.context.clock.now())
        except Exception as exc:  # the store's own errors: unknown metric, bad aggregate
            raise ProbeError(f"cannot evaluate {cond.metric}: {exc}") from None
        failing = {
            labels: value
            for labels, value in values.items()
            if compare(value, cond.operator, cond.threshold)
        }
        details: dict[str, object] = {"series": len(values), "failing": len(failing)}
        if values:
            details["value"] = sum(values.values()) / len(values)
        models = {dict(labels).get("model") for labels in values} - {None, ""}
        noun = "series"
        if models:
            noun = "ML models" if len(models) != 1 else "ML model"
            details["deployedModels"] = len(models)
            if cond.metric.endswith("_seconds") and values:
                details["avgLatency"] = round(sum(values.values()) / len(values) * 1000, 1)
        expr = f"{cond.aggregate}({cond.metric})"
        if cond.divide_by is not None:
            expr += f" / {cond.divide_by.aggregate or cond.aggregate}({cond.divide_by.metric})"
        expr += f" {cond.operator} {_fmt(cond.threshold)}"
        if not failing:
            if not values:
                return Observation.ok(f"no {cond.metric} series to judge", details)
            count = len(models) if models else len(values)
            return Observation.ok(f"All {count} {noun} healthy", details)
        worst = sorted(failing.items(), key=lambda item: item[1], reverse=True)[:3]
        shown = ", ".join(
            "{" + ",".join(f"{k}={v}" for k, v in labels) + "}=" + _fmt(value)
            for labels, value in worst
        )
        return Observation.fail(
            f"{len(failing)} of {len(values)} series match {expr}: {shown}", details
        )

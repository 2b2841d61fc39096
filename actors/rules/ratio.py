"""Ratio conditions (`divide_by`): one aggregate divided by another over the same window.

`divide(numerator, denominator)` is pure: each numerator series is divided by the denominator
series with the identical label set, as PromQL's one-to-one vector matching without `on` or
`ignoring` (the metric name is not a label here, so it never stands in the way). A numerator
series with no denominator series of the same labels has no value, and neither has one whose
denominator is 0: a ratio over nothing is unknown, not infinite, so it never fires (the
PromQL counterpart is `a / (b != 0)`). Denominator series with no numerator are left out, as
in PromQL: `errors_total / requests_total` has no value for an agent that never failed once
its error counter was never created; declare the error counter's series (record a 0) to get 0.

`read(reader, condition, now)` makes the reads of a condition (one, or two with `divide_by`).
"""

from __future__ import annotations

from collections.abc import Mapping

from actors.models import Labels
from actors.rules.evaluate import Condition
from actors.telemetry.protocols import MetricReader

__all__ = ["divide", "read"]


def divide(
    numerator: Mapping[Labels, float], denominator: Mapping[Labels, float]
) -> dict[Labels, float]:
    """`numerator / denominator` per identical label set; no value where either is missing or
    the denominator is 0 (or NaN). Never raises."""
    out: dict[Labels, float] = {}
    for labels, value in numerator.items():
        below = denominator.get(labels)
        if below is None or below == 0 or below != below:
            continue
        out[labels] = value / below
    return out


def read(reader: MetricReader, condition: Condition, now: float) -> dict[Labels, float]:
    """The values `condition` compares: its aggregate, or the ratio with `divide_by`.

    Raises:
        UnknownMetricError: either metric was not declared.
        AggregateError: as `MetricReader.aggregate`.
    """
    values = reader.aggregate(
        condition.metric, dict(condition.labels), condition.aggregate, condition.window, now=now
    )
    divisor = condition.divide_by
    if divisor is None:
        return values
    below = reader.aggregate(
        divisor.metric, dict(divisor.labels), divisor.aggregate, condition.window, now=now
    )
    return divide(values, below)

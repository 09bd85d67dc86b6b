"""An experiment read from a unit-level table's sufficient statistics: the rows the engine
returns per variant and metric (``engine/experiment_table.py``) become the arms' statistics,
each treatment is compared with the control on each metric, the split of units is checked
for a sample-ratio mismatch, p-values are Holm-adjusted across the metrics, and the
engine's outlier check becomes ``outlier`` notices.

A metric whose values are all 0 or 1 is read as a proportion, any other as a mean.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .bayesian import Prior
from .compare import Comparison, compare
from .multiple import holm
from .notices import MISSING_VALUES, OUTLIER, Notice, unique
from .sequential import N_STAR
from .srm import SRMCheck, srm
from .statistics import Proportion, Regression, SampleMean, Statistic

__all__ = ["Arm", "MetricResult", "TableResult", "analyze"]


@dataclass(frozen=True)
class Arm:
    """One variant's units with a value of the metric, its mean, and units without one."""

    variant: str
    n: int
    mean: float
    missing: int


@dataclass(frozen=True)
class MetricResult:
    """A metric: ``kind`` (proportion or mean), its arms, each treatment's
    :class:`~.compare.Comparison` with the control, the absolute effects' p-values
    Holm-adjusted across the table's metrics (one per comparison), and notices."""

    metric: str
    kind: str
    arms: tuple[Arm, ...]
    comparisons: tuple[Comparison, ...]
    p_holm: tuple[float, ...]
    notices: tuple[Notice, ...]


@dataclass(frozen=True)
class TableResult:
    """The variants (control first), their units, the SRM check, each metric's result and
    the table's notices (SRM, outliers)."""

    control: str
    variants: tuple[str, ...]
    units: tuple[int, ...]
    srm: SRMCheck
    metrics: tuple[MetricResult, ...]
    notices: tuple[Notice, ...]


def _statistic(row: Mapping[str, Any], binary: bool) -> Statistic:
    n = int(row["n"])
    if binary:
        return Proportion(n, float(row["sum"]))
    return SampleMean(n, float(row["sum"]), float(row["sum_squares"]))


def _regression(row: Mapping[str, Any], binary: bool) -> Regression:
    n = int(row["pre_n"])
    post: SampleMean | Proportion = SampleMean(n, float(row["post_sum"]), float(row["post_sum_squares"]))
    pre: SampleMean | Proportion = SampleMean(n, float(row["pre_sum"]), float(row["pre_sum_squares"]))
    if binary:
        post, pre = Proportion(n, float(row["post_sum"])), Proportion(n, float(row["pre_sum"]))
    return Regression(n, post, pre, float(row["sum_products"]))


def outlier_notices(outliers: Sequence[Mapping[str, Any]]) -> list[Notice]:
    """The engine's outlier rows as ``outlier`` notices (one per metric with flagged values)."""
    found = []
    for o in outliers:
        flagged = int(o["above"]) + int(o["below"])
        if flagged:
            sides = (("below", "lower"), ("above", "upper"))
            bounds = " and ".join(f"{int(o[side])} {side} {o[key]:,.6g}" for side, key in sides
                                  if int(o[side]))
            found.append(Notice(OUTLIER, f"{o['metric']}: {flagged} extreme value(s), {bounds} (max "
                                f"{o['max']:,.6g}, median {o['median']:,.6g}) hold {o['share']:.1%} of its "
                                "total: check them (bots, test accounts, logging errors)"))
    return found


def analyze(statistics: Sequence[Mapping[str, Any]], outliers: Sequence[Mapping[str, Any]] = (),
            control: str | None = None, alpha: float = 0.05, n_star: float = N_STAR,
            prior: Prior = Prior(), weights: Sequence[float] | None = None) -> TableResult:
    """The :class:`TableResult` of the engine's rows. ``control``: the control's variant (by
    default the first in sorted order); ``weights``: the planned split, in the order of
    :attr:`TableResult.variants` (default: equal)."""
    variants = sorted({str(r["variant"]) for r in statistics})
    if not variants:
        raise ValueError("no units with a variant")
    if control is None:
        control = variants[0]
    if control not in variants:
        raise ValueError(f"no variant {control!r}; the variants are {', '.join(variants)}")
    variants = [control, *[v for v in variants if v != control]]
    metrics = list(dict.fromkeys(str(r["metric"]) for r in statistics))
    rows = {(str(r["variant"]), str(r["metric"])): r for r in statistics}
    units = tuple(int(rows[(v, metrics[0])]["units"]) for v in variants)
    check = srm(units, weights, label="the split of units")
    results: list[MetricResult] = []
    for metric in metrics:
        mine = [rows[(v, metric)] for v in variants]
        binary = all(int(r["nonbinary"]) == 0 for r in mine)
        covariate = "pre_n" in mine[0]
        pre_binary = covariate and all(int(r["pre_nonbinary"]) == 0 for r in mine)
        stats = [_statistic(r, binary) for r in mine]
        regs = [_regression(r, binary and pre_binary) for r in mine] if covariate else []
        comparisons = tuple(
            compare(stats[0], stats[i], control, variants[i], alpha, n_star, prior,
                    (regs[0], regs[i]) if covariate else None)
            for i in range(1, len(variants)))
        notices: list[Notice] = []
        missing = sum(int(r["units"]) - int(r["n"]) for r in mine)
        if missing:
            notices.append(Notice(MISSING_VALUES, f"{metric}: {missing} unit(s) without a value, left out"))
        for c in comparisons:
            notices += c.notices
        arms = tuple(Arm(v, s.n, s.mean, int(r["units"]) - s.n) for v, s, r in zip(variants, stats, mine,
                                                                                     strict=True))
        results.append(MetricResult(metric, "proportion" if binary else "mean", arms, comparisons, (),
                                    unique(notices)))
    # Holm across the metrics, separately for each treatment.
    adjusted = [holm([m.comparisons[i].absolute.p_value for m in results]) if results[0].comparisons else []
                for i in range(len(variants) - 1)]
    results = [MetricResult(m.metric, m.kind, m.arms, m.comparisons,
                            tuple(adjusted[i][j] for i in range(len(variants) - 1)), m.notices)
               for j, m in enumerate(results)]
    notices = [*([check.notice] if check.notice else []), *outlier_notices(outliers)]
    return TableResult(control, tuple(variants), units, check, tuple(results), unique(notices))

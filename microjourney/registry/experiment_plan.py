"""Planning the next experiment on a moment: what a cycle of a few weeks can detect, from the
moment's recent persons per week and the per-person variance of the metric in the
workspace's own data (docs/experiments.md, "Planning the next experiment").

The persons are the units, as in the ``experiment`` analysis: each person's metric is a ratio
over their attempts (completed ÷ finished, ...). The engine returns the sufficient statistics
of those ratios over the recent window (:func:`~microjourney.engine.experiments.unit_statistics`):
the baseline is Σnum ÷ Σden and a person's variance the delta method's. With ``n`` persons per
variant, the minimum detectable effect is ``(z₁₋α/₂ + z_power) · √(2σ²/n)``
(:mod:`microjourney.analysis.experiments.power`), relative to the baseline.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd
from pydantic import Field

from ..analysis.experiments.notices import BASELINE_ZERO, MIN_UNITS, TOO_FEW_UNITS, ZERO_VARIANCE
from ..analysis.experiments.power import mde as min_effect
from ..analysis.experiments.power import power as power_of
from ..analysis.experiments.power import sample_size
from ..engine.experiments import span, unit_statistics
from ..spec.experiments import ExperimentMetric
from . import filters
from .base import Analysis, Column, Notice, Output, View
from .experiment_rows import SECONDS, ratio

if TYPE_CHECKING:
    from ..workspace import Workspace

#: The weeks the ``weeks`` table runs to at least.
WEEKS_SHOWN = 8
_EPS = 1e-9

_MDE = ("the smallest true difference a two-sided test finds with the chance --power, "
        "(z₁₋α/₂ + z_power) · √(2σ² ÷ persons per variant)")
PLAN_COLUMNS = (
    Column("rate", "baseline", "rate", "the metric over the recent persons: Σ of their attempts "
           "counted ÷ Σ of their finished attempts", keep=0),
    Column("seconds", "baseline", "seconds", "the metric over the recent persons (duration: "
           "seconds of completed attempts ÷ completed attempts)", keep=0),
    Column("sd", "sd per person", "number", "the standard deviation σ of one person's value "
           "(delta method for a ratio)", keep=3),
    Column("persons_per_week", "persons / week", "number", "persons with a finished attempt in "
           "the recent window × 7 ÷ its days", keep=0),
    Column("weeks", "weeks", "count", "the planned length", keep=0),
    Column("persons_per_variant", "persons / variant", "count", "persons per week × weeks ÷ "
           "variants (rounded down)", keep=0),
    Column("mde", "MDE", "rate", f"{_MDE} ÷ the baseline: the relative lift", keep=0),
    Column("mde_points", "MDE (points)", "points", f"{_MDE}, in points of the rate", keep=2),
    Column("mde_seconds", "MDE (seconds)", "seconds", f"{_MDE}, in seconds", keep=2),
    Column("target", "target lift", "rate", "the lift to plan for (--mde): a difference ÷ the "
           "baseline", keep=2),
    Column("persons_needed", "persons needed", "count", "persons per variant to find the target "
           "lift with the chance --power: 2σ²(z₁₋α/₂ + z_power)² ÷ (target × baseline)²", keep=0),
    Column("weeks_needed", "weeks needed", "count", "persons needed × variants ÷ persons per "
           "week, rounded up", keep=0),
    Column("power", "power", "rate", "the chance of finding the target lift in the planned weeks: "
           "tests that find it ÷ all tests", keep=1),
)
WEEK_COLUMNS = (
    Column("weeks", "weeks", "count", "the experiment's length", keep=0),
    Column("persons_per_variant", "persons / variant", "count", "persons per week × weeks ÷ "
           "variants (rounded down)", keep=0),
    Column("mde", "MDE", "rate", f"{_MDE} ÷ the baseline: the relative lift", keep=0),
    Column("mde_points", "MDE (points)", "points", f"{_MDE}, in points of the rate", keep=1),
    Column("mde_seconds", "MDE (seconds)", "seconds", f"{_MDE}, in seconds", keep=1),
    Column("power", "power", "rate", "the chance of finding the target lift (--mde): tests that "
           "find it ÷ all tests", keep=1),
)


class PlanParams(filters.Filters):
    moment: str = Field(description="The moment the experiment would change.",
                        json_schema_extra={"argument": True})
    metric: ExperimentMetric = Field("completion_rate", description="The metric to detect a change "
                                     "of (the experiment's primary metric).")
    weeks: int = Field(2, ge=1, le=52, description="The planned length in weeks.")
    alpha: float = Field(0.05, gt=0, le=0.5, description="The test's two-sided significance level.")
    power: float = Field(0.8, ge=0.5, le=0.99, description="The chance of finding an effect of "
                         "the MDE's size.")
    variants: int = Field(2, ge=2, le=20, description="Variants, the control included; persons "
                          "split equally.")
    mde: float | None = Field(None, gt=0, le=10, description="A relative lift to plan for (0.05: "
                              "5%): the persons and weeks it needs, and the power at each length.")
    days: int = Field(28, ge=7, le=365, description="The recent days read for persons per week "
                      "and the variance (before --until, else before the end of the data).")


def _midnight(ts: Any) -> datetime:
    t = pd.Timestamp(ts)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return datetime(t.year, t.month, t.day, tzinfo=UTC)


def window(first: Any, last: Any, p: PlanParams) -> tuple[datetime, datetime]:
    """[start, end): ``days`` before ``--until`` (else before the day after the last attempt's
    start), from ``--since`` at the earliest and not before the day of the first attempt."""
    end = filters.when(p.until) if p.until else _midnight(last) + timedelta(days=1)
    start = end - timedelta(days=p.days)
    if p.since:
        start = max(start, filters.when(p.since))
    return max(start, _midnight(first)), end


def _sizes(per_week: float, weeks: int, variants: int) -> int:
    return math.floor(per_week * weeks / variants + _EPS)


def compute(ws: Workspace, p: PlanParams) -> Output:
    lost = None
    if p.metric == "friction_seconds":
        ws.refresh(frictions=True)
        lost = ws.db.table("friction_attempts")
    a = filters.attempts(ws.attempts(p.moment), p)
    bounds = span(a).to_pandas().iloc[0]
    plan_cols = ["moment", "metric", *(c.name for c in PLAN_COLUMNS)]
    week_cols = [c.name for c in WEEK_COLUMNS]
    empty = Output({"plan": pd.DataFrame(columns=plan_cols), "weeks": pd.DataFrame(columns=week_cols)},
                   [Notice("no-attempts", f"{p.moment}: no attempt to plan from", {"moment": p.moment})],
                   meta={"moment": p.moment, "metric": p.metric})
    if pd.isna(bounds["last"]):
        return empty
    start, end = window(bounds["first"], bounds["last"], p)
    sums = unit_statistics(a, lost, p.metric, start, end).to_pandas().iloc[0]
    row = {k.removesuffix("_0"): sums[k] for k in sums.index}
    if pd.isna(row["units"]) or not int(row["units"]):
        return empty
    stat = ratio(row)
    baseline, variance = stat.mean, stat.variance
    days = (end - start).total_seconds() / 86400
    per_week = stat.n * 7 / days
    notices: list[Notice] = []
    where = {"moment": p.moment, "metric": p.metric}
    if stat.n < MIN_UNITS:
        notices.append(Notice(TOO_FEW_UNITS, f"{stat.n} persons in the recent window: the variance "
                              f"needs at least {MIN_UNITS} to be trusted", where))
    usable = variance > 0 and baseline != 0
    if variance <= 0:
        notices.append(Notice(ZERO_VARIANCE, f"every person has the same {p.metric}: no variance "
                              "to plan with", where))
    elif baseline == 0:
        notices.append(Notice(BASELINE_ZERO, f"the baseline {p.metric} is 0: no relative effect", where))
    unit = "mde_seconds" if p.metric in SECONDS else "mde_points"
    target = p.mde * abs(baseline) if p.mde is not None and usable else None

    def at(weeks: int) -> dict[str, Any]:
        n = _sizes(per_week, weeks, p.variants)
        effect = min_effect(variance, n, p.alpha, p.power) if usable else math.nan
        out: dict[str, Any] = {"weeks": weeks, "persons_per_variant": n,
                               "mde": effect / abs(baseline) if usable else math.nan, unit: effect}
        if target is not None:
            out["power"] = power_of(target, variance, n, p.alpha) if n > 0 else math.nan
        return out

    plan: dict[str, Any] = {"moment": p.moment, "metric": p.metric,
                            "seconds" if p.metric in SECONDS else "rate": baseline,
                            "sd": math.sqrt(variance), "persons_per_week": per_week, **at(p.weeks)}
    if target is not None:
        needed = sample_size(target, variance, p.alpha, p.power)
        plan.update(target=p.mde, persons_needed=needed,
                    weeks_needed=math.ceil(needed * p.variants / per_week - _EPS))
    rows = [at(w) for w in range(1, max(WEEKS_SHOWN, p.weeks) + 1)]
    # Only the columns that apply: the rate's or the seconds', the target's with --mde.
    unused = {"seconds", "mde_seconds"} if p.metric not in SECONDS else {"rate", "mde_points"}
    if p.mde is None:
        unused |= {"target", "persons_needed", "weeks_needed", "power"}
    return Output({"plan": pd.DataFrame([plan], columns=[c for c in plan_cols if c not in unused]),
                   "weeks": pd.DataFrame(rows, columns=[c for c in week_cols if c not in unused])},
                  notices,
                  meta={"moment": p.moment, "metric": p.metric, "window_start": start.isoformat(),
                        "window_end": end.isoformat(), "persons": stat.n, "variance": variance})


ANALYSIS = Analysis(
    name="experiment-plan",
    title="Experiment plan",
    doc="What an experiment on a moment can detect: from the moment's recent persons per week "
        "and the per-person variance of the metric, the minimum detectable relative effect for "
        "the planned weeks and by length from 1 to 8 weeks, and with --mde the persons and "
        "weeks that lift needs.",
    params=PlanParams,
    compute=compute,
    views=(View("plan", "Planning {metric}", PLAN_COLUMNS),
           View("weeks", "Minimum detectable effect by length", WEEK_COLUMNS)),
    examples=lambda ws: [{"moment": m} for m in list(ws.moments)[:1]],
    report=False,  # per moment: `microjourney experiment-plan MOMENT`, the API
)

__all__ = ["ANALYSIS", "PlanParams"]

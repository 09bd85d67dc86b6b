"""The rows of the ``experiment`` analysis (:mod:`.experiment`), from the sufficient statistics
the engine returns (:mod:`microjourney.engine.experiments`): each metric per variant against
the control with CUPED beside the plain lift, and the effect by week with its durability
(docs/experiments.md); the sample-ratio check is :mod:`.experiment_srm`'s.

CUPED on a ratio metric (persons are the units, each with a numerator and a denominator over
their attempts): a person's four values — numerator and denominator after exposure, and before
it — have per arm a mean vector μ and a covariance S (from the sums, squares and cross
products). The arm's ratio R = μ₁/μ₂ and its pre-exposure ratio P = μ₃/μ₄ vary, by the delta
method, as the linearised values ``g_R·z`` and ``g_P·z`` (``g`` their gradients), so that
``Var R = g_RᵀSg_R / n``, ``Var P = g_PᵀSg_P / n`` and ``Cov(R, P) = g_RᵀSg_P / n``. The
adjusted arm is ``R − θP`` — the regression-adjusted ratio, as GrowthBook's gbstats adjusts
ratio metrics — with the one ``θ`` that makes the adjusted difference's variance smallest,
``θ = Σ_arms Cov(R, P) ÷ Σ_arms Var P``; the lift divides by the control's unadjusted R.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import numpy as np
import pandas as pd

from ..analysis.experiments.compare import compare
from ..analysis.experiments.cuped import adjusted_moments
from ..analysis.experiments.frequentist import Effect, difference, from_moments
from ..analysis.experiments.guardrails import verdict
from ..analysis.experiments.multiple import benjamini_hochberg, holm
from ..analysis.experiments.notices import MIN_UNITS, NEGATIVE_VARIANCE
from ..analysis.experiments.statistics import Ratio, Regression, SampleMean
from ..analysis.experiments.weekly import Durability, durability
from ..fmt import lower_is_better
from ..spec.experiments import SURVEY_METRICS, Experiment
from .base import Notice

#: The metrics read in seconds and as a mean answer (the ``score`` column); the others are
#: rates.
SECONDS = ("duration", "friction_seconds")
SCORES = ("ces",)
#: CUPED is applied to a metric when each arm has this many persons with pre-exposure data.
CUPED_MIN_PERSONS = MIN_UNITS
#: Weekly lifts and the always-valid interval are given to 9 decimals: sums of seconds add up
#: in another order on another engine, and every engine must give the same numbers.
DIGITS = 9

__all__ = ["CUPED_MIN_PERSONS", "NO_ANSWERS", "SCORES", "SECONDS", "cuped_notice", "linearised",
           "metric_rows", "ratio", "records", "survey_notices", "theta", "value_column", "weekly_rows"]

#: A survey metric with no answer to read.
NO_ANSWERS = "no-survey-answers"


def value_column(metric: str) -> str:
    """The column of the ``metrics`` table a metric's value goes to: ``seconds``, ``score``
    (a mean answer) or ``rate``."""
    return "seconds" if metric in SECONDS else "score" if metric in SCORES else "rate"


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame's rows as dicts by column name."""
    return cast("list[dict[str, Any]]", df.to_dict("records"))


def ratio(row: Mapping[str, Any]) -> Ratio:
    """The delta method's :class:`Ratio` of a variant from the engine's sums."""
    n = int(row["units"])
    num = SampleMean(n, float(row["num"]), float(row["num2"]))
    den = SampleMean(n, float(row["den"]), float(row["den2"]))
    return Ratio(n, num, den, float(row["numden"]))


def _pair(ci: tuple[float, float], digits: int = DIGITS) -> list[float] | None:
    return [round(x, digits) for x in ci] if all(math.isfinite(x) for x in ci) else None


def linearised(row: Mapping[str, Any]) -> Regression | None:
    """The arm's post- and pre-exposure ratios as a :class:`Regression` of their linearised
    values (module doc): means R and P, unit variances ``g_RᵀSg_R`` and ``g_PᵀSg_P``, unit
    covariance ``g_RᵀSg_P``. None when the arm has fewer than 2 persons, or no denominator
    after or before exposure."""
    n = int(row["units"])
    sums = np.array([row["num"], row["den"], row["pre_num"], row["pre_den"]], dtype=float)
    if n < 2 or sums[1] <= 0 or sums[3] <= 0:
        return None
    names = (("num2", "numden", "num_pre_num", "num_pre_den"),
             ("numden", "den2", "den_pre_num", "den_pre_den"),
             ("num_pre_num", "den_pre_num", "pre_num2", "pre_numden"),
             ("num_pre_den", "den_pre_den", "pre_numden", "pre_den2"))
    products = np.array([[float(row[k]) for k in line] for line in names])
    mu = sums / n
    cov = (products - n * np.outer(mu, mu)) / (n - 1)
    r, p = mu[0] / mu[1], mu[2] / mu[3]
    g_r = np.array([1 / mu[1], -mu[0] / mu[1] ** 2, 0.0, 0.0])
    g_p = np.array([0.0, 0.0, 1 / mu[3], -mu[2] / mu[3] ** 2])
    v_r, v_p, c = float(g_r @ cov @ g_r), float(g_p @ cov @ g_p), float(g_r @ cov @ g_p)
    # A SampleMean of mean m and unit variance v has the sums n·m and (n − 1)·v + n·m².
    post = SampleMean(n, n * r, (n - 1) * max(v_r, 0.0) + n * r * r)
    pre = SampleMean(n, n * p, (n - 1) * max(v_p, 0.0) + n * p * p)
    return Regression(n, post, pre, (n - 1) * c + n * r * p)


def theta(control: Regression, treatment: Regression) -> float:
    """``θ = Σ_arms Cov(R, P)/n ÷ Σ_arms Var(P)/n``: the adjustment that leaves the smallest
    variance of the difference (0 when the covariate does not vary)."""
    var = control.pre.variance / control.n + treatment.pre.variance / treatment.n
    cov = control.covariance / control.n + treatment.covariance / treatment.n
    return cov / var if var > 0 else 0.0


def _cuped(base: Mapping[str, Any], row: Mapping[str, Any], plain: Effect,
           ) -> tuple[Effect, float, float] | None:
    """The CUPED lift, the share of the plain lift's variance it removed and θ; None when
    the covariate cannot be used."""
    a, b = linearised(base), linearised(row)
    if a is None or b is None:
        return None
    t = theta(a, b)
    moments, _ = adjusted_moments(a, b, relative=True, theta_=t)
    adjusted = from_moments(moments, True, "cuped")
    ok = math.isfinite(adjusted.se) and math.isfinite(plain.se) and plain.se > 0
    reduction = 1 - adjusted.se**2 / plain.se**2 if ok else math.nan
    return adjusted, reduction, t


def _cuped_ready(e: Experiment, by: Mapping[tuple[str, str], Mapping[str, Any]], metric: str) -> bool:
    rows = [by.get((metric, v)) for v in e.weights()]
    return all(r is not None and int(r.get("pre_units") or 0) >= CUPED_MIN_PERSONS for r in rows)


def metric_rows(e: Experiment, stats: pd.DataFrame, durable: Mapping[tuple[str, str], Durability],
                ) -> tuple[list[dict[str, Any]], list[Notice], list[str]]:
    """Per metric and variant: persons, the rate or seconds, the lift with its interval, p,
    Holm's and Benjamini–Hochberg's p across the metrics, the chance to win, the CUPED lift
    and the variance it removed, the always-valid lift, durability and a verdict. Also the
    notices and the metrics CUPED was applied to."""
    rows: list[dict[str, Any]] = []
    notices: list[Notice] = []
    raw_p: list[tuple[int, float]] = []
    by = {(r["metric"], r["variant"]): r for r in records(stats)}
    cuped_on: list[str] = []
    for metric in e.metrics:
        role = ("primary" if metric == e.metric else
                "secondary" if metric in e.secondary else "guardrail")
        higher = not lower_is_better(metric)
        base = by.get((metric, e.control))
        use_cuped = e.cuped_days > 0 and _cuped_ready(e, by, metric)
        if use_cuped:
            cuped_on.append(metric)
        for v in e.weights():
            row = by.get((metric, v))
            stat = ratio(row) if row else None
            out: dict[str, Any] = {"metric": metric, "role": role, "variant": v,
                                   "units": stat.n if stat else 0, "lift_ci": None,
                                   "always_valid": None, "cuped_lift_ci": None}
            out[value_column(metric)] = stat.mean if stat else math.nan
            if v == e.control or stat is None or base is None:
                out["verdict"] = "control" if v == e.control else "no data"
                rows.append(out)
                continue
            c = compare(ratio(base), stat, e.control, v)
            rel = c.relative
            chance = c.bayesian.chance_to_win if higher else 1 - c.bayesian.chance_to_win
            valid = c.sequential_relative
            out.update(lift=rel.estimate, p=rel.p_value, chance_to_win=chance, lift_ci=_pair(rel.ci),
                       always_valid_lift=valid.estimate, always_valid=_pair(valid.ci, 4))
            if use_cuped and row is not None:
                got = _cuped(base, row, rel)
                if got is not None:
                    adjusted, reduction, t = got
                    out.update(cuped_lift=adjusted.estimate, cuped_lift_ci=_pair(adjusted.ci),
                               variance_reduction=reduction, cuped_theta=t)
                    notices += [Notice(n.code, f"{metric} {v} (CUPED): {n.message}",
                                       {"metric": metric, "variant": v})
                                for n in adjusted.notices if n.code == NEGATIVE_VARIANCE]
            d = durable.get((metric, v))
            out["durability"] = d.verdict if d is not None else None
            if role == "guardrail":
                out["verdict"] = verdict(rel, higher).verdict
            else:
                out["verdict"] = ("inconclusive" if not rel.ci[0] > 0 and not rel.ci[1] < 0 else
                                  "better" if (rel.ci[0] > 0) == higher else "worse")
            notices += [Notice(n.code, f"{metric} {v}: {n.message}", {"metric": metric, "variant": v})
                        for n in c.notices]
            if math.isfinite(rel.p_value):
                raw_p.append((len(rows), rel.p_value))
            rows.append(out)
    values = [p_ for _, p_ in raw_p]
    for (i, _), q_holm, q_bh in zip(raw_p, holm(values), benjamini_hochberg(values), strict=True):
        rows[i]["p_holm"], rows[i]["p_bh"] = q_holm, q_bh
    return rows, notices, cuped_on


def cuped_notice(e: Experiment, stats: pd.DataFrame, applied: Sequence[str]) -> Notice | None:
    """``cuped-not-applied`` naming the metrics with too few persons with pre-exposure data."""
    missing = [m for m in e.metrics if m not in applied]
    if e.cuped_days <= 0 or not missing:
        return None
    by = {(r["metric"], r["variant"]): int(r.get("pre_units") or 0) for r in records(stats)}
    had = ", ".join(f"{v} {by.get((missing[0], v), 0)}" for v in e.weights())
    answers = " (csat, ces: with answers linked to them)" if set(missing) & set(SURVEY_METRICS) else ""
    return Notice("cuped-not-applied", f"CUPED not applied to {', '.join(missing)}: it needs "
                  f"{CUPED_MIN_PERSONS} persons per variant with attempts{answers} in the "
                  f"{e.cuped_days} days before their first exposure (persons with such data for "
                  f"{missing[0]}: {had})", {"experiment": e.name, "metrics": missing})


def survey_notices(e: Experiment, stats: pd.DataFrame, asked: Sequence[str]) -> list[Notice]:
    """``no-survey-answers`` for each survey metric of ``e`` without a person with an answer
    in any variant; ``asked``: the survey metrics some survey of the moment asks (a question
    of that type)."""
    have = set(stats["metric"]) if len(stats) else set()
    out = []
    for m in e.metrics:
        if m not in SURVEY_METRICS or m in have:
            continue
        why = (f"no {m} answer is linked to the exposed persons' attempts of {e.moment} after "
               "their first exposure" if m in asked else
               f"no survey of {e.moment} asks a {m} question")
        out.append(Notice(NO_ANSWERS, f"{m}: {why}; 0 persons (docs/experiments.md, \"Survey "
                          "metrics\")", {"experiment": e.name, "metric": m}))
    return out


def weekly_rows(e: Experiment, weekly: pd.DataFrame, covered: datetime | None = None,
                ) -> tuple[pd.DataFrame, dict[tuple[str, str], Durability], list[Notice]]:
    """Per metric, treatment and week of the attempts: persons of both arms and the lift with
    its interval; the durability of each metric and treatment (:func:`durability` over the
    weeks in order) and a ``novelty`` notice for an effect that fades. A last week the data
    do not cover to its end (``covered``: the end of the data read) is shown but not read for
    the durability: a day or two of attempts would decide it."""
    rows: list[dict[str, Any]] = []
    verdicts: dict[tuple[str, str], Durability] = {}
    notices: list[Notice] = []
    by = {(r["metric"], r["variant"], _monday(r["week"])): r for r in records(weekly)}
    weeks = sorted({_monday(w) for w in weekly["week"]}) if len(weekly) else []
    for metric in e.metrics:
        for v in list(e.weights())[1:]:
            effects: list[Effect] = []
            for week in weeks:
                whole = covered is None or _start(week) + timedelta(days=7) <= covered
                base, row = by.get((metric, e.control, week)), by.get((metric, v, week))
                if base is None and row is None:
                    continue
                out: dict[str, Any] = {"metric": metric, "variant": v, "week": week,
                                       "units": int(row["units"]) if row else 0,
                                       "control_units": int(base["units"]) if base else 0,
                                       "lift_ci": None}
                if base is not None and row is not None:
                    eff = difference(ratio(base), ratio(row), relative=True)
                    if whole:
                        effects.append(eff)
                    out.update(lift=eff.estimate, lift_ci=_pair(eff.ci), p=eff.p_value)
                rows.append(out)
            d = durability(effects)
            verdicts[(metric, v)] = d
            if d.verdict == "novelty":
                notices.append(Notice("novelty", f"{metric} {v}: the effect fades: {d.reason}",
                                      {"metric": metric, "variant": v}))
    columns = ["metric", "variant", "week", "units", "control_units", "lift", "lift_ci", "p"]
    return pd.DataFrame(rows, columns=columns), verdicts, notices


def _start(week: str) -> datetime:
    return datetime.fromisoformat(week).replace(tzinfo=UTC)


def _monday(value: Any) -> str:
    """A week's Monday as ``YYYY-MM-DD`` (a date on DuckDB, a time on another engine)."""
    return pd.Timestamp(value).strftime("%Y-%m-%d")

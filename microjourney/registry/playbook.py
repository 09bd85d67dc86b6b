"""The change playbook: every change kept for a moment, measured on the moment's daily
metrics by an interrupted time series (level and slope change, weekday effects,
autocorrelation-robust intervals; docs/playbook.md), beside the result of the experiment
that tested it, and what each kind of change has done so far."""

from __future__ import annotations

import math
from datetime import date, timedelta
from statistics import median
from typing import TYPE_CHECKING, Any

import pandas as pd
from pydantic import Field

from ..analysis.its import TOO_FEW_DAYS_AFTER, TOO_FEW_DAYS_BEFORE, interrupted
from ..engine.daily import MEANS, RATES, SURVEY_RATES
from ..fmt import lower_is_better
from ..spec.changes import KINDS
from . import experiment as experiment_analysis
from . import filters
from .base import Analysis, Column, Kind, Notice, Output, View, frame
from .daily import daily_table, with_surveys

if TYPE_CHECKING:
    from ..workspace import Workspace

#: The metrics each change is measured on, and the one its verdict is read from.
MEASURED = ("completion_rate", "failure_rate", "escalation_rate", "duration", "friction_seconds")
HEADLINE = "completion_rate"

_EFFECT = ("the modelled difference from the counterfactual (the trend before, carried on) "
           "{horizon} after the change: level + slope change × days; 95% interval, "
           "by GLS with AR(1) errors and Kenward–Roger degrees of freedom (docs/playbook.md)")
CHANGE_COLUMNS = (
    Column("day", "day", "text", "the day the change shipped", keep=0),
    Column("moment", "moment", keep=0),
    Column("kind", "kind", "text", ", ".join(KINDS), keep=0),
    Column("title", "change", keep=0),
    Column("before", "completion before", "rate", "completed ÷ finished attempts over the days "
           "before the change in the window", keep=1),
    Column("after", "completion after", "rate", "completed ÷ finished attempts over the days "
           "from the change on in the window", keep=1),
    Column("effect", "effect", "points", _EFFECT.format(horizon="the horizon"), ci="effect_ci",
           keep=0),
    Column("p", "p", "p", "two-sided p-value of no effect at the horizon", keep=2),
    Column("verdict", "verdict", "text", "better, worse or inconclusive (the effect's interval "
           "on one side of 0); unmeasured (under 14 days before it to judge it against) or too "
           "early (under 7 days after it)", keep=0),
    Column("experiment", "experiment", "text", "the experiment that tested it", keep=2),
    Column("experiment_lift", "experiment lift", "rate", "the experiment's primary metric: "
           "(variant − control) ÷ control; 95% interval", ci="experiment_ci", keep=2),
    Column("experiment_verdict", "experiment verdict", keep=2),
    Column("change_id", "id", keep=3),
)
_DETAIL = (
    Column("day", "day", "text", "the day the change shipped", keep=0),
    Column("moment", "moment", keep=0),
    Column("title", "change", keep=1),
    Column("metric", "metric", keep=0),
)


def _effects(value: Kind, change: Kind, before: str, after: str) -> tuple[Column, ...]:
    """The columns of one table of effects: values read as ``value``, changes as ``change``."""
    return _DETAIL + (
        Column("before", "before", value, before, keep=0),
        Column("after", "after", value, after, keep=0),
        Column("level", "level change", change, "the jump on the change day; 95% interval",
               ci="level_ci", keep=1),
        Column("slope", "slope change", change, "the change of the trend per week; 95% interval",
               ci="slope_ci", keep=2),
        Column("effect", "effect", change, _EFFECT.format(horizon="the horizon"), ci="effect_ci",
               keep=0),
        Column("p", "p", "p", "two-sided p-value of no effect at the horizon", keep=1),
        Column("verdict", "verdict", keep=0),
    )


RATE_COLUMNS = _effects(
    "rate", "points", "the metric's attempts ÷ finished attempts before the change (csat: answers "
    "of 4–5 ÷ CSAT answers, where a survey of the moment asks it)",
    "the same ÷ finished attempts from the change on")
TIME_COLUMNS = _effects(
    "seconds", "seconds", "time to complete: Σ ÷ completed attempts; friction seconds: Σ ÷ finished "
    "attempts; before the change", "the same from the change on")
PATTERN_COLUMNS = (
    Column("kind", "kind", keep=0),
    Column("changes", "changes", "count", "changes of this kind kept", keep=0),
    Column("better", "better", "count", "changes whose completion effect is better", keep=0),
    Column("worse", "worse", "count", "changes whose completion effect is worse", keep=0),
    Column("inconclusive", "inconclusive", "count", "measured, neither better nor worse", keep=1),
    Column("median_effect", "median effect", "points", "the median completion effect of the "
           "measured changes of this kind", keep=0),
)


class Params(filters.Filters):
    moment: str | None = Field(None, description="Only this moment's changes.",
                               json_schema_extra={"argument": True})
    kind: str | None = Field(None, description=f"Only changes of this kind: {', '.join(KINDS)}.")
    window: int = Field(28, ge=7, le=365, description="Days before and after each change "
                        "the time series reads.")
    horizon: int = Field(14, ge=1, le=365, description="Days after the change the effect is "
                         "read at.")


def _values(rows: pd.DataFrame, metric: str) -> tuple[list[float], list[float]]:
    """Each day's value of ``metric`` and its weight (its denominator)."""
    if metric in RATES or metric in SURVEY_RATES:
        num, den = {**RATES, **SURVEY_RATES}[metric]
        n = rows[den].astype(float)
        return (rows[num] / n.where(n > 0)).tolist(), n.tolist()
    n_col, s_col, _ = MEANS[metric]
    n = rows[n_col].astype(float)
    return (rows[s_col] / n.where(n > 0)).tolist(), n.tolist()


def _pair(ci: tuple[float, float], scale: float = 1.0) -> list[float] | None:
    return [x * scale for x in ci] if all(math.isfinite(x) for x in ci) else None


def _verdict(metric: str, ci: list[float] | None, codes: set[str]) -> str:
    if ci is None or TOO_FEW_DAYS_BEFORE in codes:
        return "unmeasured"
    if TOO_FEW_DAYS_AFTER in codes:
        return "too early"
    if ci[0] <= 0 <= ci[1]:
        return "inconclusive"
    up = ci[0] > 0
    return "worse" if up == lower_is_better(metric) else "better"


def _experiment(ws: Workspace, name: str | None) -> dict[str, Any]:
    """The primary metric's lift, interval and verdict of the experiment ``name``."""
    if not name or name not in {e.name for e in ws.spec.experiments}:
        return {}
    out = experiment_analysis.compute(ws, experiment_analysis.ExperimentParams(experiment=name))
    t = out.tables["metrics"]
    rows = t[(t["role"] == "primary") & (t["verdict"] != "control")]
    if rows.empty:
        return {}
    r = rows.iloc[0]
    return {"experiment_lift": r.get("lift"), "experiment_ci": r.get("lift_ci"),
            "experiment_verdict": r.get("verdict")}


def compute(ws: Workspace, p: Params) -> Output:
    kept = [c for c in ws.changes(p.moment) if p.kind in (None, c["kind"])]
    notices: list[Notice] = []
    moments = sorted({c["moment"] for c in kept if c["moment"] in ws.moments})
    for c in kept:
        if c["moment"] not in ws.moments:
            notices.append(Notice("unknown-moment", f"change {c['title']!r} names moment "
                                  f"{c['moment']!r}, no longer defined: not measured",
                                  {"change": c["change_id"]}))
    daily = pd.DataFrame()
    if moments:
        ws.refresh(frictions=True)
        a = filters.attempts(ws.attempts(), p)
        a = a.filter(a.moment.isin(moments))
        daily = daily_table(a, ws.db.table("friction_attempts"))
        if filters.unfiltered(p):  # the CSAT share where a survey of the moment asks it
            daily = with_surveys(ws, daily, p.moment)
    summary: list[dict[str, Any]] = []
    rates: list[dict[str, Any]] = []
    times: list[dict[str, Any]] = []
    for c in kept:
        if c["moment"] not in ws.moments:
            continue
        day: date = c["day"]
        lo, hi = day - timedelta(days=p.window), day + timedelta(days=p.window)
        rows = daily[(daily["moment"] == c["moment"]) & (daily["day"] >= lo) & (daily["day"] < hi)]
        base = {"change_id": c["change_id"], "day": day.isoformat(), "moment": c["moment"],
                "title": c["title"]}
        head: dict[str, Any] = {}
        scored = "csat_answers" in rows and rows["csat_answers"].sum() > 0
        for metric in MEASURED + (("csat",) if scored else ()):
            values, weights = _values(rows, metric)
            its = interrupted(list(rows["day"]), values, day, weights, horizon=p.horizon)
            points = metric in RATES or metric in SURVEY_RATES
            effect_ci = _pair(its.effect.ci)
            row = {**base, "metric": metric, "before": its.before, "after": its.after,
                   "level": its.level.estimate, "level_ci": _pair(its.level.ci),
                   "slope": its.slope.estimate * 7, "slope_ci": _pair(its.slope.ci, 7.0),
                   "effect": its.effect.estimate, "effect_ci": effect_ci,
                   "p": its.effect.p_value,
                   "verdict": _verdict(metric, effect_ci, {n.code for n in its.notices})}
            (rates if points else times).append(row)
            if metric == HEADLINE:
                head = row
                notices += [Notice(n.code, f"{c['title']} ({c['moment']}, {day}): {n.message}",
                                   {"change": c["change_id"]}) for n in its.notices]
        summary.append({**base, "kind": c["kind"], "before": head["before"], "after": head["after"],
                        "effect": head["effect"], "effect_ci": head["effect_ci"], "p": head["p"],
                        "verdict": head["verdict"], "experiment": c["experiment"],
                        **_experiment(ws, c["experiment"])})
    patterns = []
    for kind in KINDS:
        of = [s for s in summary if s["kind"] == kind]
        if not of:
            continue
        measured = [s["effect"] for s in of if s["verdict"] in ("better", "worse", "inconclusive")]
        patterns.append({"kind": kind, "changes": len(of),
                         "better": sum(s["verdict"] == "better" for s in of),
                         "worse": sum(s["verdict"] == "worse" for s in of),
                         "inconclusive": sum(s["verdict"] == "inconclusive" for s in of),
                         "median_effect": median(measured) if measured else math.nan})

    return Output({"changes": frame(summary, CHANGE_COLUMNS, ()),
                   "rates": frame(rates, RATE_COLUMNS, ("change_id",)),
                   "times": frame(times, TIME_COLUMNS, ("change_id",)),
                   "patterns": frame(patterns, PATTERN_COLUMNS, ())},
                  notices, meta={"changes": len(summary), "window": p.window, "horizon": p.horizon})


ANALYSIS = Analysis(
    name="playbook",
    title="Change playbook",
    doc="Every change kept for a moment (`microjourney change add`), measured on the moment's "
        "daily completion, failure, escalation, time to complete and friction seconds by an "
        "interrupted time series — level and slope change with weekday effects and "
        "autocorrelation-robust intervals — beside the experiment that tested it, and what "
        "each kind of change has done so far.",
    params=Params,
    compute=compute,
    views=(View("changes", "Changes and their effect on completion", CHANGE_COLUMNS),
           View("rates", "Effects on the rates", RATE_COLUMNS),
           View("times", "Effects on the times", TIME_COLUMNS),
           View("patterns", "What each kind of change has done", PATTERN_COLUMNS)),
)

__all__ = ["ANALYSIS", "KINDS"]

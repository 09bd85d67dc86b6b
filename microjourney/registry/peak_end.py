"""Peak-End: which moments customers remember. Each finished attempt of a journey's moment
gets an intensity in [−1, 1] (its outcome, the seconds frictions cost it, its survey score);
a person's attempts of a journey within the journey window are one journey lived (an
episode), remembered by its peak and its end. Per journey: peak-end against the plain
mean; per moment: how often it is the worst point and the end, and its share of what is
remembered; where a survey of the journey rates it, how well peak-end, the mean, the end and
the peak predict the rating (docs/peak_end.md)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import ibis
import pandas as pd
from pydantic import Field

from ..analysis import peak_end as core
from ..analysis.peak_end_validation import headline, validate
from ..engine.experiments import scored_answers
from ..engine.peak_end import journey_steps, sampled
from ..errors import QueryError
from ..spec.surveys import SCALES
from . import filters
from .base import Analysis, Column, Notice, Output, View, frame
from .experiment import survey_questions

if TYPE_CHECKING:
    from ..workspace import Workspace

#: Persons read at most; beyond, a fixed sample of them (by a hash of the person id).
MOST_PERSONS = 200_000
#: Features of an episode a journey's rating is held against.
FEATURES = ("peak_end", "mean", "end", "peak", "neg_peak")

JOURNEY_COLUMNS = (
    Column("journey", "journey", keep=0),
    Column("episodes", "journeys lived", "count", "persons' journeys: their attempts of the "
           "journey's moments within the journey window", keep=0),
    Column("peak_end", "peak-end", "score", "mean over journeys lived of (peak + end) ÷ 2, "
           "intensities in [−1, 1]", keep=0),
    Column("mean", "mean", "score", "mean over journeys lived of their attempts' mean intensity",
           keep=0),
    Column("difference", "remembered − lived", "score", "peak-end − mean, paired by journey "
           "lived; below 0: remembered worse than lived; 95% interval", ci="difference_ci", keep=0),
    Column("p_value", "p", "p", "two-sided, of no difference", keep=2),
)
MOMENT_COLUMNS = (
    Column("journey", "journey", keep=1),
    Column("moment", "moment", keep=0),
    Column("episodes", "journeys lived", "count", "journeys lived it appears in", keep=1),
    Column("intensity", "intensity", "score", "mean intensity of its attempts", keep=1),
    Column("neg_peak", "worst point", "rate", "journeys lived where it is the worst attempt (and "
           "below 0) ÷ journeys lived it appears in", ci="neg_peak_ci", keep=0),
    Column("end", "the end", "rate", "journeys lived it ends ÷ journeys lived it appears in",
           ci="end_ci", keep=0),
    Column("share", "share remembered", "rate", "its weight in the peak-end scores (the peak ½, "
           "the end ½), summed ÷ the journey's journeys lived", keep=0),
    Column("mean_share", "share lived", "rate", "its weight in the means (its attempts ÷ the "
           "journey's attempts), summed ÷ journeys lived", keep=1),
)
VALIDATION_COLUMNS = (
    Column("journey", "journey", keep=0),
    Column("feature", "predictor", "text", "peak_end, mean, end, peak, neg_peak of the journey "
           "lived that the rating is about", keep=0),
    Column("n", "rated", "count", "journeys lived with a rating (answers of the journey's survey)",
           keep=0),
    Column("r", "correlation", "score", "Pearson's r of the rating with the predictor; 95% "
           "interval by Fisher's z", ci="r_ci", keep=0),
    Column("p_value", "p", "p", keep=2),
)
WEIGHTING_COLUMNS = (
    Column("journey", "journey", keep=0),
    Column("term", "term", keep=0),
    Column("estimate", "weight", "score", "least-squares weight of the rating (0–1) on the "
           "journey's peak, end and mean; 95% interval", ci="estimate_ci", keep=0),
    Column("r2_cv", "R² out of sample", "score", "5-fold cross-validated R² of this weighting",
           keep=0),
    Column("r2_cv_mean", "R² mean alone", "score", "the same of the mean alone", keep=0),
    Column("r2_cv_peak_end", "R² peak-end alone", "score", "the same of (peak + end) ÷ 2", keep=1),
)


class Params(filters.Filters):
    journey: str | None = Field(None, description="Only this journey.",
                                json_schema_extra={"argument": True})


def _seconds(times: pd.Series) -> pd.Series:
    """UTC times as seconds since 1970 (floats)."""
    return (pd.to_datetime(times, utc=True) - pd.Timestamp(0, tz="UTC")).dt.total_seconds()


def _scores(ws: Workspace) -> Any:
    """Each attempt's survey scores in [0, 1] (CSAT and CES of its moment's surveys)."""
    questions = survey_questions(ws.spec.surveys)
    if questions is None:
        return None
    a = scored_answers(ws.survey_answers(), questions)
    low = ibis.cases(*((a.kind == k, float(v[0])) for k, v in SCALES.items()), else_=0.0)
    high = ibis.cases(*((a.kind == k, float(v[1])) for k, v in SCALES.items()), else_=1.0)
    a = a.filter(a.attempt_id.notnull())
    return a.select(attempt_id=a.attempt_id, score=(a.value - low) / (high - low))


def _ratings(ws: Workspace, eps: pd.DataFrame, journeys: list[str]) -> pd.DataFrame:
    """Per journey lived with a rating: the answer of its journey's survey (NPS or CSAT, in
    [0, 1]) given after it ended and within the survey's ``link_within``; the last one."""
    rows = []
    for s in ws.spec.surveys:
        if s.journey not in journeys:
            continue
        asked = {q.id: SCALES[q.type] for q in s.questions if q.type in ("nps", "csat")}
        if not asked:
            continue
        a = ws.survey_answers(s.name, linked=False).to_pandas()
        a = a[a["question"].isin(list(asked))]
        value = pd.to_numeric(a["answer"], errors="coerce")
        low = a["question"].map({q: lo for q, (lo, _) in asked.items()}).astype(float)
        high = a["question"].map({q: hi for q, (_, hi) in asked.items()}).astype(float)
        a = a.assign(rating=(value - low) / (high - low), journey=s.journey,
                     at=pd.to_datetime(a["timestamp"], utc=True).dt.as_unit("ns"),
                     within=s.link_within)
        rows.append(a[a["rating"].between(0, 1)][["person", "journey", "at", "rating", "within"]])
    if not rows or eps.empty:
        return pd.DataFrame(columns=["person", "journey", "episode", "rating"])
    answers = pd.concat(rows, ignore_index=True).sort_values("at")
    ends = eps.assign(at=pd.to_datetime(eps["last"], unit="s", utc=True).dt.as_unit("ns"))
    ends = ends.sort_values("at")
    linked = pd.merge_asof(answers, ends[["person", "journey", "episode", "at", "last"]],
                           on="at", by=["person", "journey"], direction="backward")
    gap = _seconds(linked["at"]) - linked["last"]
    linked = linked[linked["episode"].notna() & (gap <= linked["within"])]
    out: pd.DataFrame = linked.groupby(["person", "journey", "episode"], as_index=False)[["rating"]].last()
    return out


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in r.items()} for r in table.to_dict("records")]


def compute(ws: Workspace, p: Params) -> Output:
    spec = ws.spec
    names = [j.name for j in spec.journeys]
    if p.journey is not None and p.journey not in names:
        raise QueryError(f"no journey {p.journey!r}; journeys: {', '.join(names) or 'none defined yet'}",
                         code="query/option")
    chosen = [p.journey] if p.journey else names
    mapping = [(m.name, j.name) for j in spec.journeys if j.name in chosen for m in j.moments]
    notices: list[Notice] = []
    empty = pd.DataFrame()
    eps = marked = empty
    if mapping:
        ws.refresh(frictions=True)
        moments = ibis.memtable(pd.DataFrame(mapping, columns=["j_moment", "journey"]))
        a = filters.attempts(ws.attempts(), p)
        steps = journey_steps(a, moments, ws.db.table("friction_attempts"), _scores(ws),
                              list(core.OUTCOME_VALUES))
        persons = int(steps.person.nunique().to_pandas())
        if persons > MOST_PERSONS:
            notices.append(Notice("sampled", f"{persons:,} persons: the journeys of a fixed sample of "
                                  f"about {MOST_PERSONS:,} of them are read"))
        df = sampled(steps, persons, MOST_PERSONS).to_pandas()
        if len(df):
            pe = spec.peak_end
            w = core.Weights(pe.weights.outcome, pe.weights.friction, pe.weights.survey)
            df["intensity"] = core.intensities(df["outcome"], df["f_seconds"].to_numpy(dtype=float),
                                               df["score"].to_numpy(dtype=float), w,
                                               friction_scale=pe.friction_scale)
            df["start"] = _seconds(df["start_ts"])
            df["end"] = _seconds(df["end_ts"])
            df["episode"] = core.cut(df, ("person", "journey"), "start", pe.window)
            df = df.sort_values(["person", "journey", "episode", "start", "attempt_id"], kind="stable")
            df["order"] = df.groupby(["person", "journey", "episode"]).cumcount()
            keys = ["person", "journey", "episode"]
            marked = core.mark(df, keys, "order")
            eps = core.episodes(df, keys, "order")
            last = df.groupby(keys, as_index=False)["end"].max().rename(columns={"end": "last"})
            eps = eps.merge(last, on=keys, how="left")
    journeys = core.journeys(eps) if len(eps) else empty
    moments_t = empty
    if len(marked):
        parts = []
        for j, g in marked.groupby("journey", sort=False):
            t = core.remembered(g, ["person", "journey", "episode"], "moment")
            parts.append(t.assign(journey=j))
        moments_t = pd.concat(parts, ignore_index=True)
    checks, weights = [], []
    said: dict[str, str] = {}  # per journey, what the validation says in a sentence
    ratings = _ratings(ws, eps, chosen) if len(eps) else pd.DataFrame()
    for j in chosen:
        if ratings.empty or j not in set(ratings["journey"]):
            continue
        mine = eps[eps["journey"] == j].merge(ratings, on=["person", "journey", "episode"], how="left")
        v = validate(mine["rating"], mine[[c for c in FEATURES if c in mine]])
        checks += [{"journey": j, "feature": c.feature, "n": c.n, "r": c.r,
                    "r_ci": list(c.ci) if all(math.isfinite(x) for x in c.ci) else None,
                    "p_value": c.p_value} for c in v.correlations]
        weights += [{"journey": j, "term": c.term, "estimate": c.estimate,
                     "estimate_ci": list(c.ci) if all(math.isfinite(x) for x in c.ci) else None,
                     "r2_cv": v.r2_cv, "r2_cv_mean": v.r2_cv_mean, "r2_cv_peak_end": v.r2_cv_peak_end}
                    for c in v.weighting]
        notices += [Notice(n.code, f"{j}: {n.message}", {"journey": j}) for n in v.notices]
        said[j] = headline(v)
    return Output({"journeys": frame(_records(journeys), JOURNEY_COLUMNS),
                   "moments": frame(_records(moments_t), MOMENT_COLUMNS),
                   "validation": frame(checks, VALIDATION_COLUMNS),
                   "weighting": frame(weights, WEIGHTING_COLUMNS)},
                  notices, meta={"journeys_lived": int(len(eps)), "window_s": spec.peak_end.window,
                                 "validation": said})


ANALYSIS = Analysis(
    name="peak-end",
    title="Peak-End: what customers remember",
    doc="Each finished attempt's intensity in [−1, 1] (outcome, friction seconds, survey score); "
        "each person's journey within the journey window remembered by its peak and end: per "
        "journey peak-end against the mean lived, per moment how often it is the worst point and "
        "the end and its share of what is remembered, and — where a survey rates the journey — "
        "how well peak-end, the mean, the end and the peak predict the rating, out of sample.",
    params=Params,
    compute=compute,
    views=(View("journeys", "Remembered against lived, per journey", JOURNEY_COLUMNS),
           View("moments", "What is remembered: each moment's share", MOMENT_COLUMNS),
           View("validation", "What predicts the journey's rating", VALIDATION_COLUMNS),
           View("weighting", "The rating's fitted weighting", WEIGHTING_COLUMNS)),
)

__all__ = ["ANALYSIS"]

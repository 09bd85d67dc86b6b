"""Survey scores: NPS, CSAT and CES per survey and question, with intervals, raw and
reweighted to the attempts they stand for; broken down by the linked attempt's outcome,
channel, furthest step or friction kind, or by a property of the answer; and the response
and partial-response rates of each survey (docs/surveys.md)."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import ibis
import pandas as pd
from ibis.expr.types import Table
from pydantic import Field

from ..analysis import surveys as survey_stats
from ..analysis.stats import wilson_interval
from ..engine.backend import json_text
from ..errors import QueryError
from ..spec.surveys import OUTCOMES, SCALES
from . import filters
from .base import Analysis, Column, Notice, Output, View
from .notices import small_counts

if TYPE_CHECKING:
    from ..workspace import Workspace

#: Breakdowns read from the linked attempt; any other ``by`` is a key of the answer's
#: properties, then of the attempt's start event.
ATTEMPT_BY = ("outcome", "channel", "step", "friction")
UNLINKED, NONE = "(unlinked)", "(none)"
WITH_FRICTION = " with friction"

SCORE_COLUMNS = (
    Column("survey", "survey", keep=0),
    Column("question", "question", keep=0),
    Column("type", "type", keep=2),
    Column("responses", "responses", "count", "answers to the question (one per display)", keep=0),
    Column("nps", "NPS", "points", "promoters (9–10) ÷ answers − detractors (0–6) ÷ answers; "
           "adjusted-Wald 95% interval", ci="nps_ci", keep=0),
    Column("satisfied", "satisfied", "rate", "answers of 4–5 (CSAT) or thumbs up ÷ answers; "
           "Wilson 95% interval", ci="satisfied_ci", keep=0),
    Column("mean", "mean", "number", "mean answer, with its 95% interval", ci="mean_ci", keep=1),
    Column("nps_reweighted", "NPS reweighted", "points", "NPS with each stratum of attempts "
           "(outcome, with or without friction) weighted by its share of the attempts the "
           "survey speaks for (its trigger's outcomes and channels; every finished attempt "
           "with a control share) instead of its share of answers", keep=1),
    Column("satisfied_reweighted", "satisfied reweighted", "rate", "Σ over strata of the "
           "stratum's attempts ÷ the attempts the survey speaks for × its satisfied answers ÷ "
           "its answers (as NPS reweighted)", keep=1),
    Column("mean_reweighted", "mean reweighted", "number", "the mean (CES) reweighted to the "
           "attempts the survey speaks for, as NPS reweighted", keep=2),
    Column("linked_rate", "linked", "rate", "answers linked to an attempt ÷ answers", keep=2),
)
RATE_COLUMNS = (
    Column("survey", "survey", keep=0),
    Column("moment", "moment", keep=1),
    Column("displays", "displays", "count", "times the survey was shown (survey_shown events)",
           keep=0),
    Column("control", "control displays", "count", "displays to the control sample, asked "
           "whatever the outcome", keep=2),
    Column("answered", "answered", "count", "displays with at least one answer", keep=0),
    Column("response_rate", "response rate", "rate", "shown displays with an answer ÷ displays",
           ci="response_ci", keep=0),
    Column("partial_rate", "partial", "rate", "answered displays whose last answer was not "
           "the final one ÷ answered displays", ci="partial_ci", keep=1),
    Column("dismissed", "dismissed", "count", "displays closed without finishing", keep=2),
)


class Params(filters.Filters):
    survey: str | None = Field(None, description="Only this survey (default: every survey).")
    moment: str | None = Field(None, description="Only the surveys of this moment.")
    question: str | None = Field(None, description="Only this question of the survey.")
    by: str | None = Field(None, description="Break down by the linked attempt's outcome, "
                           "channel, step (furthest reached) or friction (kind), or by a "
                           "property of the answer (then of the attempt's start event).")


def _group(t: Table, by: str | None, kinds: Table | None) -> Table:
    """``t`` (answers or attempts, both with ``a_`` attempt columns) with the ``grp``
    column of the breakdown."""
    if by is None:
        return t.mutate(grp=ibis.literal(""))
    if by == "outcome":
        return t.mutate(grp=t.a_outcome.fill_null(UNLINKED))
    if by == "channel":
        return t.mutate(grp=ibis.coalesce(t.a_channel, t.channel))
    if by == "step":
        return t.mutate(grp=t.a_furthest_step.cast("string").fill_null(UNLINKED))
    if by == "friction":
        assert kinds is not None
        j = t.left_join(kinds, t.attempt_id == kinds.f_attempt)
        label = ibis.ifelse(j.attempt_id.isnull(), UNLINKED, j.f_kind.fill_null(NONE))
        return j.mutate(grp=label).drop("f_attempt", "f_kind")
    value = ibis.coalesce(json_text(t.properties, by), json_text(t.a_properties, by),
                          json_text(t.context, by))
    return t.mutate(grp=value.fill_null(NONE))


def _stratum(t: Table, rough: Table) -> Table:
    """``t`` with the reweighting ``stratum`` of its attempt: its outcome, with or without
    friction (``rough``: the attempts with a friction)."""
    j = t.left_join(rough, t.attempt_id == rough.r_attempt)
    name = ibis.ifelse(j.attempt_id.isnull(), UNLINKED,
                       j.a_outcome.concat(ibis.ifelse(j.r_attempt.isnull(), "", WITH_FRICTION)))
    return j.mutate(stratum=name).drop("r_attempt")


def compute(ws: Workspace, p: Params) -> Output:
    chosen = [ws.survey(p.survey)] if p.survey else list(ws.spec.surveys)
    if p.moment is not None:
        ws.moment(p.moment)
        chosen = [s for s in chosen if s.moment == p.moment]
    if p.question is not None:
        if p.survey is None:
            raise QueryError("survey-scores --question needs --survey", code="query/option")
        try:
            chosen[0].question(p.question)
        except KeyError:
            raise QueryError(f"survey {p.survey!r} has no question {p.question!r}; its questions: "
                             + ", ".join(q.id for q in chosen[0].questions),
                             code="query/option") from None
    if p.by is not None and p.by in {"survey", "question", "type", "stratum", "answer"}:
        raise QueryError(f"--by {p.by!r} names a column of the result; breakdowns: "
                         f"{', '.join(ATTEMPT_BY)} or a property", code="query/option")
    keys = ["survey", "question"] + ([p.by] if p.by else [])
    if not chosen:
        empty = pd.DataFrame(columns=[c.name for c in SCORE_COLUMNS])
        where = f"moment {p.moment!r} has" if p.moment else "the workspace declares"
        return Output({"scores": empty, "rates": pd.DataFrame(columns=[c.name for c in RATE_COLUMNS])},
                      [Notice("no-surveys", f"{where} no survey (docs/surveys.md)")])
    _, fa = ws.survey_attempts()
    rough = fa.select(r_attempt=fa.attempt).distinct()
    kinds = fa.select(f_attempt=fa.attempt, f_kind=fa.kind).distinct() if p.by == "friction" else None

    names = [s.name for s in chosen]
    answers = filters.events(ws.survey_answers(names), p)
    if p.question:
        answers = answers.filter(answers.question == p.question)
    answers = _stratum(_group(answers, p.by, kinds), rough)
    counted = answers.group_by(["survey", "question", "grp", "stratum", "answer"]).aggregate(
        n=answers.count()).to_pandas()

    strata = _attempt_strata(ws, p, chosen, rough, kinds)
    scores, notices = _scores(ws, chosen, counted, strata, p.by)
    rates = _rates(ws, p, chosen)
    if p.by:
        scores = scores.rename(columns={"grp": p.by})
    else:
        scores = scores.drop(columns=["grp"])
    notices += small_counts(scores, "responses", keys, "responses")
    return Output({"scores": scores, "rates": rates}, notices)


def _attempt_strata(ws: Workspace, p: Params, chosen: list[Any], rough: Table,
                    kinds: Table | None) -> dict[tuple[str, str], dict[str, int]]:
    """Per (survey, group), the attempts each stratum holds of the population the survey
    speaks for (:func:`population`); empty for a breakdown by a property of the answer
    (not an attempt's)."""
    moments = sorted({s.moment for s in chosen if s.moment})
    if not moments or (p.by is not None and p.by not in ATTEMPT_BY):
        return {}
    attempts, _ = ws.survey_attempts()
    a = filters.attempts(attempts, filters.Filters(since=p.since, until=p.until,
                                                        channel=p.channel))
    a = a.filter(a.moment.isin(moments) & (a.outcome != "in_progress"))
    a = a.select(attempt_id=a.attempt_id, moment=a.moment, a_outcome=a.outcome, a_channel=a.channel,
                 channel=a.channel, a_furthest_step=a.furthest_step, properties=a.properties,
                 a_properties=a.properties, context=a.context)
    a = _stratum(_group(a, p.by, kinds), rough)
    rows = a.group_by(["moment", "channel", "a_outcome", "grp", "stratum"]).aggregate(
        n=a.count()).to_pandas()
    out: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for s in chosen:
        outcomes, channels = population(s)
        for r in rows.itertuples(index=False):
            if r.moment == s.moment and r.a_outcome in outcomes and (
                    not channels or r.channel in channels):
                out[(s.name, str(r.grp))][str(r.stratum)] += int(r.n)
    return out


def population(survey: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The outcomes and channels (empty: any) of the attempts a survey speaks for: those its
    trigger asks; with a control share, every finished attempt of the moment, as the
    control sample asks whatever the outcome and channel."""
    if survey.control > 0:
        return OUTCOMES, ()
    return tuple(survey.trigger.outcomes), tuple(survey.trigger.channel)


def _scores(ws: Workspace, chosen: list[Any], counted: pd.DataFrame,
            strata: dict[tuple[str, str], dict[str, int]], by: str | None
            ) -> tuple[pd.DataFrame, list[Notice]]:
    notices: list[Notice] = []
    surveys = {s.name: s for s in chosen}
    cells: dict[tuple[str, str, str], dict[str, dict[int, int]]] = defaultdict(
        lambda: defaultdict(dict))
    invalid: dict[tuple[str, str], int] = defaultdict(int)
    for r in counted.to_dict("records"):
        survey, question, n = surveys[str(r["survey"])], str(r["question"]), int(r["n"])
        try:
            asked = survey.question(question)
        except KeyError:
            invalid[(survey.name, question)] += n
            continue
        if asked.type not in SCALES:
            continue
        try:
            answer = int(asked.answer(r["answer"]))
        except ValueError:
            invalid[(survey.name, question)] += n
            continue
        stratum = cells[(survey.name, question, str(r["grp"]))][str(r["stratum"])]
        stratum[answer] = stratum.get(answer, 0) + n
    for (survey_name, question), n in sorted(invalid.items()):
        notices.append(Notice("invalid-answers", f"{survey_name} {question}: {n} answers are "
                              "not on the question's scale (or it asks no such question); "
                              "left out", {"survey": survey_name, "question": question}))
    rows = []
    missing: set[tuple[str, str]] = set()
    for (survey_name, question, grp), by_stratum in sorted(cells.items()):
        survey = surveys[survey_name]
        kind = survey.question(question).type
        counts: dict[int, int] = defaultdict(int)
        for c in by_stratum.values():
            for k, v in c.items():
                counts[k] += v
        attempts = strata.get((survey_name, grp), {})
        parts = [(name, n, by_stratum.get(name, {})) for name, n in sorted(attempts.items())]
        s = survey_stats.summarise(kind, counts, parts)
        n = s.n
        linked = n - sum(by_stratum.get(UNLINKED, {}).values())
        rw = s.reweighted.reweighted if s.reweighted else math.nan
        if s.reweighted and s.reweighted.missing:
            missing.update((survey_name, m) for m in s.reweighted.missing)
        if by == "step" and survey.moment and grp != UNLINKED:
            grp = ws.moment(survey.moment).step_labels[int(grp)]
        rows.append({
            "survey": survey_name, "question": question, "grp": grp, "type": kind, "responses": n,
            "nps": s.nps, "nps_ci": _pair(s.nps_ci),
            "satisfied": s.satisfied if kind in survey_stats.SATISFIED else math.nan,
            "satisfied_ci": _pair(s.satisfied_ci) if kind in survey_stats.SATISFIED else None,
            "mean": s.mean, "mean_ci": _pair(s.mean_ci),
            "nps_reweighted": rw if kind == "nps" else math.nan,
            "satisfied_reweighted": rw if kind in survey_stats.SATISFIED else math.nan,
            "mean_reweighted": rw if kind == "ces" else math.nan,
            "linked_rate": linked / n if n else math.nan,
        })
    for survey_name, name in sorted(missing):
        notices.append(Notice("stratum-unanswered", f"{survey_name}: no answer from attempts "
                              f"{name}; the reweighted score leaves them out (a control "
                              "sample asks every outcome: docs/surveys.md)",
                              {"survey": survey_name, "stratum": name}))
    table = pd.DataFrame(rows, columns=["survey", "question", "grp"] + [
        c.name for c in SCORE_COLUMNS[2:]] + ["nps_ci", "satisfied_ci", "mean_ci"])
    return table, notices


def _pair(ci: tuple[float, float] | None) -> list[float] | None:
    return None if ci is None else [float(ci[0]), float(ci[1])]


def _rates(ws: Workspace, p: Params, chosen: list[Any]) -> pd.DataFrame:
    """Per survey: displays, answered displays, response and partial-response rates."""
    shown = ws.survey_displays([s.name for s in chosen])
    if p.since:
        shown = shown.filter(shown.shown_ts >= filters.when(p.since))
    if p.until:
        shown = shown.filter(shown.shown_ts < filters.when(p.until))
    if p.channel:
        shown = shown.filter(shown.channel == p.channel)
    names = [s.name for s in chosen]
    answers = filters.events(ws.survey_answers(names, linked=False), p)
    done = answers.group_by(["survey", "display"]).aggregate(final=answers.final.cast("int64").max())
    j = shown.left_join(done, [shown.survey == done.survey, shown.display == done.display])
    per = j.group_by(j.survey).aggregate(
        displays=j.count(), control=j.control.cast("int64").sum(),
        dismissed=j.dismissed.cast("int64").sum(), answered=j.final.notnull().cast("int64").sum()
    ).to_pandas()
    whole = done.group_by(done.survey).aggregate(
        any_n=done.count(), final_n=done.final.sum()).to_pandas()
    shown_by = {str(r.survey): r for r in per.itertuples(index=False)}
    done_by = {str(r.survey): r for r in whole.itertuples(index=False)}
    rows = []
    for s in chosen:
        sh, dn = shown_by.get(s.name), done_by.get(s.name)
        displays = int(sh.displays) if sh is not None else 0
        answered = int(sh.answered) if sh is not None else 0
        any_n = int(dn.any_n) if dn is not None else 0
        partial = any_n - (int(dn.final_n) if dn is not None else 0)
        rows.append({
            "survey": s.name, "moment": s.moment, "displays": displays,
            "control": int(sh.control) if sh is not None else 0, "answered": answered,
            "response_rate": answered / displays if displays else math.nan,
            "response_ci": _pair(wilson_interval(answered, displays)) if displays else None,
            "partial_rate": partial / any_n if any_n else math.nan,
            "partial_ci": _pair(wilson_interval(partial, any_n)) if any_n else None,
            "dismissed": int(sh.dismissed) if sh is not None else 0,
        })
    return pd.DataFrame(rows, columns=[c.name for c in RATE_COLUMNS] + ["response_ci",
                                                                        "partial_ci"])


ANALYSIS = Analysis(
    name="survey-scores",
    title="Survey scores",
    doc="Per survey and scored question: NPS, the satisfied share (CSAT 4–5, thumbs up) and "
        "the mean (CES), with 95% intervals, raw and reweighted by outcome and friction "
        "to the attempts the survey speaks for; by the linked attempt's outcome, channel, step or "
        "friction kind, or a property of the answer; and each survey's response and "
        "partial-response rates.",
    params=Params,
    compute=compute,
    views=(View("scores", "Survey scores", SCORE_COLUMNS),
           View("rates", "Survey responses", RATE_COLUMNS)),
    examples=lambda ws: [{}, {"by": "outcome"}, {"by": "friction"}] if ws.spec.surveys else [{}],
)

__all__ = ["ANALYSIS"]

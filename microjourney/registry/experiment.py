"""One experiment's results: each metric per variant against the control, over the persons
exposed and their attempts of the moment after exposure — the lift with its interval and
p-value (Holm- and Benjamini–Hochberg-adjusted across the metrics), the Bayesian chance to
win, the CUPED lift from the persons' attempts before exposure, the always-valid interval for
peeking, the effect by week with its durability, a verdict, and the sample-ratio check of the
exposures overall and per channel and platform (docs/experiments.md). The rows are made in
:mod:`.experiment_rows` and :mod:`.experiment_srm`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import ibis
import pandas as pd
import pyarrow as pa
from ibis.expr.types import Table
from pydantic import Field

from ..analysis.experiments.guardrails import HARMFUL
from ..analysis.surveys import SATISFIED
from ..engine.experiments import (
    EXPOSURE,
    SURVEY_METRICS,
    exposed,
    exposure_counts,
    long,
    metric_statistics,
    scored_answers,
    weekly_statistics,
)
from ..errors import QueryError
from ..spec.surveys import SCALES, Survey
from . import filters
from .base import Analysis, Column, Notice, Output, View
from .experiment_rows import cuped_notice, metric_rows, survey_notices, value_column, weekly_rows
from .experiment_srm import exposure_tables

if TYPE_CHECKING:
    from ..workspace import Workspace

COLUMNS = (
    Column("metric", "metric", keep=0),
    Column("role", "role", "text", "primary, secondary or guardrail", keep=2),
    Column("variant", "variant", keep=0),
    Column("units", "persons", "count", "exposed persons with an attempt after exposure (csat, "
           "ces: with an answer linked to one)", keep=0),
    Column("rate", "rate", "rate", "the variant's rate: Σ over persons of the attempts counted "
           "÷ Σ of their finished attempts after exposure; csat: Σ of their CSAT answers of 4–5 "
           "÷ Σ of their CSAT answers linked to those attempts", keep=0),
    Column("seconds", "seconds", "seconds", "time to complete (duration: Σ over completed "
           "attempts ÷ completed attempts) or friction seconds per finished attempt", keep=0),
    Column("score", "mean answer", "number", "ces: the mean CES answer (1–7, higher is easier), "
           "Σ over persons of their CES answers ÷ Σ of their CES answers linked to their "
           "attempts after exposure (only when a metric is ces)", keep=0),
    Column("lift", "lift", "rate", "(variant − control) ÷ control, delta method over persons.",
           ci="lift_ci", keep=0),
    Column("p", "p", "p", "two-sided p-value of no difference", keep=1),
    Column("p_holm", "p (Holm)", "p", "Holm-adjusted across the experiment's metrics and "
           "variants (family-wise error)", keep=3),
    Column("p_bh", "p (BH)", "p", "Benjamini–Hochberg-adjusted across the experiment's metrics "
           "and variants (false discovery rate)", keep=4),
    Column("chance_to_win", "chance to win", "rate", "the posterior mass of the lift on the "
           "variant's winning side ÷ all of it (flat prior; for metrics to lower, winning is "
           "lower)", keep=2),
    Column("cuped_lift", "CUPED lift", "rate", "the lift adjusted by the persons' same metric "
           "over their attempts in the cuped_days before exposure: (R − θP of the variant − that "
           "of the control) ÷ the control's R.", ci="cuped_lift_ci", keep=1),
    Column("variance_reduction", "variance removed", "rate", "1 − the CUPED lift's variance ÷ "
           "the plain lift's variance", keep=4),
    Column("always_valid_lift", "always-valid lift", "rate", "the lift, (variant − control) ÷ "
           "control, with its always-valid 95% interval, safe to read at every look "
           "(docs/experiments.md).", ci="always_valid", keep=5),
    Column("durability", "by week", "text", "the effect by week of the attempts: durable, "
           "novelty (it fades) or inconclusive", keep=3),
    Column("verdict", "verdict", "text", "primary and secondary: better, worse or inconclusive; "
           "guardrails: harmful, ok or inconclusive", keep=0),
)
EXPOSURE_COLUMNS = (
    Column("variant", "variant", keep=0),
    Column("planned", "planned share", "rate", "the variant's weight ÷ all weights", keep=0),
    Column("exposed", "exposed", "count", "persons exposed to this variant only", keep=0),
    Column("share", "share", "rate", "its exposed persons ÷ all exposed persons", keep=0),
)
WEEK_COLUMNS = (
    Column("metric", "metric", keep=0),
    Column("variant", "variant", keep=0),
    Column("week", "week", "text", "Monday of the ISO week (UTC) the attempts started in, after "
           "each person's first exposure", keep=0),
    Column("units", "persons", "count", "the variant's exposed persons with a finished attempt "
           "that week", keep=0),
    Column("control_units", "control persons", "count", "the control's, likewise", keep=1),
    Column("lift", "lift", "rate", "(variant − control) ÷ control over that week's attempts, "
           "delta method over persons.", ci="lift_ci", keep=0),
    Column("p", "p", "p", "two-sided p-value of no difference that week", keep=2),
)
SRM_COLUMNS = (
    Column("dimension", "dimension", "text", "all exposures, or a dimension of each person's "
           "first exposure event: its channel, or os (a property, else a context key)", keep=0),
    Column("value", "value", keep=0),
    Column("exposed", "exposed", "count", "persons exposed to one variant only", keep=0),
    Column("split", "by variant", "list", "those persons per variant, in the declared order "
           "(control first)", keep=0),
    Column("p", "p", "p", "chi-square p of the split against the planned weights; per "
           "dimension value, Holm-adjusted across all the values checked", keep=0),
    Column("mismatch", "mismatch", "flag", "p < 0.001: the assignment or the exposure logging "
           "loses persons unevenly", keep=0),
)


def survey_questions(surveys: Sequence[Survey], moments: Sequence[str] | None = None,
                     kinds: Sequence[str] = SURVEY_METRICS) -> Table | None:
    """The CSAT and CES questions (``kinds``) of the surveys of ``moments`` (None: of every
    moment) as :func:`~microjourney.engine.experiments.scored_answers` reads them: survey,
    question, type, the survey's moment, the scale and the lowest satisfied answer (CSAT 4).
    None when no survey asks one."""
    rows = [(s.name, q.id, q.type, s.moment, *SCALES[q.type], SATISFIED.get(q.type))
            for s in surveys if s.moment and (moments is None or s.moment in moments)
            for q in s.questions if q.type in kinds]
    if not rows:
        return None
    names = ("q_survey", "q_question", "q_kind", "q_moment", "q_low", "q_high", "q_top")
    types = (pa.string(),) * 4 + (pa.float64(),) * 3
    return ibis.memtable(pa.table({n: pa.array([r[i] for r in rows], t)
                                   for i, (n, t) in enumerate(zip(names, types, strict=True))}))


def survey_scores(ws: Workspace, moments: Sequence[str],
                  kinds: Sequence[str] = SURVEY_METRICS) -> Table | None:
    """The scored answers (:func:`~microjourney.engine.experiments.scored_answers`) to the
    ``kinds`` of question (CSAT, CES) of the surveys of ``moments``; None when no survey of
    them asks one."""
    questions = survey_questions(ws.spec.surveys, list(moments), kinds) if kinds else None
    if questions is None:
        return None
    names = [s.name for s in ws.spec.surveys
             if s.moment in moments and any(q.type in kinds for q in s.questions)]
    return scored_answers(ws.survey_answers(names), questions)


def _answers(ws: Workspace, moment: str, metrics: Sequence[str]) -> tuple[Table | None, list[str]]:
    """The scored answers of the moment's surveys for the survey ``metrics`` (None when no
    survey metric is read or no survey asks one) and the survey metrics some survey asks."""
    wanted = [m for m in metrics if m in SURVEY_METRICS]
    answers = survey_scores(ws, [moment], wanted)
    if answers is None:
        return None, []
    asked = [m for m in wanted if any(s.moment == moment and q.type == m
                                      for s in ws.spec.surveys for q in s.questions)]
    return answers, asked


class ExperimentParams(filters.Filters):
    experiment: str = Field(description="The experiment's name.", json_schema_extra={"argument": True})


def compute(ws: Workspace, p: ExperimentParams) -> Output:
    e = next((x for x in ws.spec.experiments if x.name == p.experiment), None)
    if e is None:
        known = ", ".join(x.name for x in ws.spec.experiments) or "none defined yet"
        raise QueryError(f"no experiment {p.experiment!r}; experiments: {known}",
                         code="query/experiment")
    ws.refresh(frictions=True)
    everyone = exposed(ws.events_of(EXPOSURE), e.name)
    exposure, srm_table, check, notices, _ = exposure_tables(e, exposure_counts(everyone).to_pandas())
    moment = ws.attempts(e.moment)
    attempts = filters.attempts(moment, p)  # the period, channel, segment
    # The covariate's attempts come before the period: the channel and segment only.
    before = filters.attempts(moment, p.model_copy(update={"since": None, "until": None}))
    people = everyone.filter(everyone.variants == 1)
    until = (datetime.combine(e.end, datetime.min.time(), UTC) + timedelta(days=1)) if e.end else None
    lost = ws.db.table("friction_attempts")
    answers, asked = _answers(ws, e.moment, e.metrics)
    stats = long(metric_statistics(attempts, people, lost, e.metrics, until, before, e.cuped_days,
                                   answers).to_pandas(), e.metrics)
    weekly = long(weekly_statistics(attempts, people, lost, e.metrics, until, answers).to_pandas(),
                  e.metrics, ("variant", "week"))
    ends = [datetime.fromtimestamp(ws.as_of_ms() / 1000, UTC)]
    ends += [until] if until is not None else []
    ends += [filters.when(p.until)] if p.until else []
    weeks, durable, novelty = weekly_rows(e, weekly, min(ends))
    rows, more, cuped_on = metric_rows(e, stats, durable)
    # The mean answer's column only for an experiment with a metric read so (ces).
    unused = set() if any(value_column(m) == "score" for m in e.metrics) else {"score"}
    table = pd.DataFrame(rows, columns=[c.name for c in COLUMNS if c.name not in unused]
                         + ["lift_ci", "cuped_lift_ci", "always_valid", "cuped_theta"])
    notices += more
    skipped = cuped_notice(e, stats, cuped_on)
    if skipped is not None:
        notices.append(skipped)
    notices += novelty
    notices += survey_notices(e, stats, asked)
    harmful = table[(table["role"] == "guardrail") & (table["verdict"] == HARMFUL)]
    for r in harmful.to_dict("records"):
        notices.append(Notice("guardrail-harmful", f"{r['variant']} harms {r['metric']}",
                              {"metric": r["metric"], "variant": r["variant"]}))
    return Output({"metrics": table, "exposure": exposure, "weeks": weeks, "srm": srm_table}, notices,
                  meta={"experiment": e.name, "moment": e.moment, "control": e.control,
                        "srm_p": check.p_value, "exposed": sum(check.counts),
                        "cuped_days": e.cuped_days, "cuped": cuped_on,
                        "durability": {m: {v: d.verdict for (m_, v), d in durable.items() if m_ == m}
                                       for m in e.metrics}})


ANALYSIS = Analysis(
    name="experiment",
    title="Experiment",
    doc="One experiment: each metric per variant against the control over the persons exposed "
        "and their attempts after exposure (or the CSAT and CES answers linked to them) — lift "
        "with its 95% interval and p-value (Holm and Benjamini–Hochberg across metrics), "
        "chance to win, the CUPED lift from the persons' attempts before exposure, the "
        "always-valid interval, the effect by week (durable or novelty), a verdict per metric "
        "and guardrail, and the sample-ratio check of the exposures overall and per channel "
        "and os.",
    params=ExperimentParams,
    compute=compute,
    views=(View("metrics", "{experiment} on {moment}: each metric against {control}", COLUMNS),
           View("exposure", "Exposure", EXPOSURE_COLUMNS),
           View("weeks", "Effect by week of the attempts", WEEK_COLUMNS, rows=24),
           View("srm", "Sample-ratio check, overall and per channel and os", SRM_COLUMNS, rows=20)),
    examples=lambda ws: [{"experiment": e.name} for e in ws.spec.experiments[:1]],
    report=False,
    cli=False,  # `microjourney experiment analyze NAME` and `experiment list` (cli/experiments.py)
)

__all__ = ["ANALYSIS", "COLUMNS"]

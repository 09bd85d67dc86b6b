"""Experiments as the engine reads them: who was exposed to which variant, and the
sufficient statistics of each metric per variant over the exposed persons' attempts of the
moment after their first exposure (docs/experiments.md).

An exposure is an ``experiment_exposure`` event (``experiment``, ``variant``), logged by
the SDK or the Python client when a person is shown a variant. A person counts from their
first exposure; one exposed to two variants of the same experiment is left out (and
counted, for a warning). Each metric is a ratio per person — its numerator and
denominator over the person's attempts after exposure — so that persons, not attempts, are
the units (their attempts are not independent): per variant the engine returns the number
of persons with at least one attempt, the sums of numerators and denominators, their sums
of squares and the sum of their products (the delta method's inputs).

For CUPED each person also has a covariate: the same metric's numerator and denominator over
their attempts of the moment in the ``pre_days`` before their first exposure (0 and 0 when
they had none, as GrowthBook's gbstats treats missing pre-exposure data); the engine adds the
sums, squares and cross products of the four per-person values (:data:`CUPED_SUMS`). Only
these few numbers per variant leave the engine.

The survey metrics (:data:`SURVEY_METRICS`) read the CSAT and CES answers linked to the
attempts (:func:`scored_answers`): each attempt carries the satisfied CSAT answers and the
CSAT answers linked to it, the sum and the count of its CES answers, so that a person's
``csat`` is Σ satisfied ÷ Σ CSAT answers over their attempts after exposure and ``ces`` Σ
answers ÷ Σ CES answers — ratios per person like the others, with the same sums (persons
with an answer are the units) and the same covariate (the answers linked to their attempts
before exposure).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import ibis
import pandas as pd
from ibis.expr.types import Table

from .backend import epoch_ms, json_text

EXPOSURE = "experiment_exposure"
#: What a person's first exposure is broken down by for the sample-ratio check: the event's
#: channel and these keys of its properties, else of its context.
DIMENSIONS = ("os",)
#: A missing dimension value.
NONE = "(none)"
#: The sums of one variant's per-person values beyond the plain ones (``num``, ``den``,
#: their squares and product): the covariate's, and its products with the metric's.
CUPED_SUMS = ("pre_units", "pre_num", "pre_den", "pre_num2", "pre_den2", "pre_numden",
              "num_pre_num", "num_pre_den", "den_pre_num", "den_pre_den")
#: The metrics read from survey answers (spec/experiments.py): ``csat``, the share of CSAT
#: answers satisfied; ``ces``, the mean CES answer.
SURVEY_METRICS = ("csat", "ces")
_DAY_MS = 86_400_000

__all__ = ["CUPED_SUMS", "DIMENSIONS", "EXPOSURE", "NONE", "SURVEY_METRICS", "exposed", "exposure_counts",
           "long", "metric_statistics", "scored_answers", "span", "unit_statistics", "weekly_statistics"]


def exposed(events: Table, experiment: str, dimensions: Sequence[str] = DIMENSIONS) -> Table:
    """Per person exposed to ``experiment`` (``events`` with their ``person``): the
    ``variant``, the first exposure (``exposed_ts``), how many variants they saw, and the
    ``channel`` and ``dimensions`` of their first exposure event (the smallest value when
    several share its instant; ``(none)`` when absent)."""
    e = events.filter(events.event == EXPOSURE)
    e = e.mutate(experiment=json_text(e.properties, "experiment"),
                 variant=json_text(e.properties, "variant"))
    e = e.filter((e.experiment == experiment) & e.variant.notnull())
    e = e.mutate(**{f"_d_{k}": ibis.coalesce(json_text(e.properties, k), json_text(e.context, k))
                    .fill_null(NONE) for k in dimensions},
                 _channel=e.channel.fill_null(NONE))
    first = e.group_by(e.person).aggregate(variant=e.variant.min(), exposed_ts=e.timestamp.min(),
                                           variants=e.variant.nunique())
    at = first.select(_p=first.person, _t=first.exposed_ts)
    j = e.inner_join(at, (e.person == at._p) & (e.timestamp == at._t))
    dims = j.group_by(_p=j.person).aggregate(
        channel=j._channel.min(), **{k: j[f"_d_{k}"].min() for k in dimensions})
    out = first.inner_join(dims, first.person == dims._p)
    return out.select("person", "variant", "exposed_ts", "variants", "channel", *dimensions)


def exposure_counts(people: Table, dimensions: Sequence[str] = DIMENSIONS) -> Table:
    """Persons per (variant, channel, ``dimensions``, ``mixed``) from :func:`exposed`;
    ``mixed``: seen with more than one variant."""
    return people.group_by(["variant", "channel", *dimensions, (people.variants > 1).name("mixed")]
                           ).aggregate(persons=people.count())


def _parts(a: Table, metric: str) -> tuple[ibis.Value, ibis.Value]:
    """A metric's numerator and denominator for one attempt."""
    finished = (a.outcome != "in_progress").cast("int64")
    completed = (a.outcome == "completed").cast("int64")
    if metric == "completion_rate":
        return completed, finished
    if metric == "failure_rate":
        return (a.outcome == "failed").cast("int64"), finished
    if metric == "abandonment_rate":
        return (a.outcome == "abandoned").cast("int64"), finished
    if metric == "escalation_rate":
        return ((a.outcome == "escalated") | a.escalated.fill_null(False)).cast("int64") * finished, finished
    if metric == "duration":
        return ibis.ifelse(completed == 1, a.duration_s, 0.0), completed
    if metric == "friction_seconds":
        return a.f_seconds.fill_null(0.0) * finished, finished
    if metric == "csat":
        return a.s_satisfied, a.s_csat
    if metric == "ces":
        return a.s_ces_sum, a.s_ces
    raise ValueError(f"unknown experiment metric {metric!r}")


def _with_frictions(a: Table, frictions: Table | None) -> Table:
    """``a`` with each attempt's friction seconds (``f_seconds``; 0 without the table)."""
    if frictions is None:
        return a.mutate(f_seconds=ibis.literal(0.0))
    lost = frictions.group_by(frictions.attempt).aggregate(f_seconds=frictions.seconds.sum())
    return a.left_join(lost, a.attempt_id == lost.attempt)


def scored_answers(answers: Table, questions: Table, attempts: Table | None = None) -> Table:
    """One row per CSAT or CES answer on its question's scale. ``answers``: one per survey,
    display and question, each with the attempt it links to (``attempt_id``, NULL: none), as
    ``ws.survey_answers()`` gives them; ``questions``: one row per question read, ``q_survey``,
    ``q_question``, ``q_kind`` (``csat`` or ``ces``), ``q_moment`` (the survey's moment),
    ``q_low`` and ``q_high`` (its scale) and ``q_top`` (the lowest satisfied answer; NULL:
    none). Columns: ``person``, ``survey``, ``question``, ``moment``, ``kind``, ``value`` (the
    answer), ``satisfied`` (1 when the answer is ``q_top`` or more, else 0), ``answered_ts``,
    ``attempt_id``; with ``attempts`` (the attempts table) also ``start_ts``, the linked
    attempt's start (NULL when none). An answer that is no whole number on its scale is left
    out, as ``survey-scores`` leaves it out."""
    j = answers.inner_join(questions, [answers.survey == questions.q_survey,
                                       answers.question == questions.q_question])
    j = j.mutate(value=j.answer.try_cast("float64"))
    j = j.filter(j.value.notnull() & (j.value >= j.q_low) & (j.value <= j.q_high)
                 & (j.value == j.value.floor()))
    satisfied = (j.q_top.notnull() & (j.value >= j.q_top)).cast("int64")
    out = j.select(person=j.person, survey=j.survey, question=j.question, moment=j.q_moment,
                   kind=j.q_kind, value=j.value, satisfied=satisfied, answered_ts=j.timestamp,
                   attempt_id=j.attempt_id)
    if attempts is None:
        return out
    starts = attempts.select(_s_attempt=attempts.attempt_id, start_ts=attempts.start_ts)
    return out.left_join(starts, out.attempt_id == starts._s_attempt).drop("_s_attempt")


def _with_answers(a: Table, answers: Table | None, metrics: Sequence[str]) -> Table:
    """``a`` with, per attempt, its linked satisfied CSAT answers (``s_satisfied``), CSAT
    answers (``s_csat``), the sum and the count of its CES answers (``s_ces_sum``,
    ``s_ces``), from :func:`scored_answers`; 0 without answers. Unchanged when ``metrics``
    has no survey metric."""
    if not any(m in SURVEY_METRICS for m in metrics):
        return a
    if answers is None:
        return a.mutate(s_satisfied=ibis.literal(0, "int64"), s_csat=ibis.literal(0, "int64"),
                        s_ces_sum=ibis.literal(0.0, "float64"), s_ces=ibis.literal(0, "int64"))
    s = answers.filter(answers.attempt_id.notnull())
    csat, ces = s.kind == "csat", s.kind == "ces"
    per = s.group_by(_s_attempt=s.attempt_id).aggregate(
        _sat=(csat & (s.satisfied == 1)).cast("int64").sum(), _csat=csat.cast("int64").sum(),
        _ces_sum=ibis.ifelse(ces, s.value, 0.0).sum(), _ces=ces.cast("int64").sum())
    j = a.left_join(per, a.attempt_id == per._s_attempt)
    return j.mutate(s_satisfied=j._sat.fill_null(0), s_csat=j._csat.fill_null(0),
                    s_ces_sum=j._ces_sum.fill_null(0.0), s_ces=j._ces.fill_null(0)
                    ).drop("_s_attempt", "_sat", "_csat", "_ces_sum", "_ces")


def _per_person(a: Table, metrics: Sequence[str], keys: Sequence[str], prefix: str = "") -> Table:
    """Each metric's numerator and denominator summed per ``keys`` (which include the person):
    columns ``{prefix}num_{i}`` and ``{prefix}den_{i}`` for the ``i``-th metric."""
    values: dict[str, ibis.Value] = {}
    for i, metric in enumerate(metrics):
        num, den = _parts(a, metric)
        values[f"_n{i}"], values[f"_d{i}"] = num.cast("float64"), den.cast("float64")
    per = a.mutate(**values).group_by(list(keys))
    return per.aggregate(**{f"{prefix}{kind}_{i}": ibis._[f"_{kind[0]}{i}"].sum()
                            for i in range(len(metrics)) for kind in ("num", "den")})


def _sums(per: Table, metrics: Sequence[str], pre: bool) -> dict[str, ibis.Value]:
    """Per metric ``i`` the sums ``{name}_{i}`` over the persons with a denominator (a
    numerator is 0 without one): the plain ones, and with ``pre`` the :data:`CUPED_SUMS`."""
    out: dict[str, ibis.Value] = {}
    for i in range(len(metrics)):
        num, den = per[f"num_{i}"], per[f"den_{i}"]
        unit = den > 0
        out.update({f"units_{i}": unit.cast("int64").sum(), f"num_{i}": num.sum(), f"den_{i}": den.sum(),
                    f"num2_{i}": (num * num).sum(), f"den2_{i}": (den * den).sum(),
                    f"numden_{i}": (num * den).sum()})
        if not pre:
            continue
        # The covariate of the persons who are units (with a post-exposure denominator) only.
        pn = ibis.ifelse(unit, per[f"pre_num_{i}"].fill_null(0.0), 0.0)
        pd_ = ibis.ifelse(unit, per[f"pre_den_{i}"].fill_null(0.0), 0.0)
        out.update({f"pre_units_{i}": (pd_ > 0).cast("int64").sum(), f"pre_num_{i}": pn.sum(),
                    f"pre_den_{i}": pd_.sum(), f"pre_num2_{i}": (pn * pn).sum(),
                    f"pre_den2_{i}": (pd_ * pd_).sum(), f"pre_numden_{i}": (pn * pd_).sum(),
                    f"num_pre_num_{i}": (num * pn).sum(), f"num_pre_den_{i}": (num * pd_).sum(),
                    f"den_pre_num_{i}": (den * pn).sum(), f"den_pre_den_{i}": (den * pd_).sum()})
    return out


def _after(attempts: Table, people: Table, until: datetime | None) -> Table:
    a = attempts.inner_join(people, attempts.person == people.person)
    a = a.filter(a.start_ts >= a.exposed_ts)
    return a.filter(a.start_ts < until) if until is not None else a


def metric_statistics(attempts: Table, people: Table, frictions: Table | None, metrics: Sequence[str],
                      until: datetime | None = None, before: Table | None = None,
                      pre_days: int = 0, answers: Table | None = None) -> Table:
    """Per variant, for the ``i``-th of ``metrics``: ``units_{i}`` (persons with a
    denominator), the sums of the numerators and denominators (``num_{i}``, ``den_{i}``),
    their squares (``num2_{i}``, ``den2_{i}``) and products (``numden_{i}``), over
    ``attempts`` (of the experiment's moment) started at or after each person's first
    exposure (and before ``until``); ``people`` from :func:`exposed` (persons who saw one
    variant only); ``frictions``: seconds lost per attempt. :func:`long` gives one row per
    (metric, variant).

    With ``before`` (the moment's attempts the covariate may read) and ``pre_days`` > 0, the
    :data:`CUPED_SUMS` too, over each unit's attempts started in the ``pre_days`` days before
    their first exposure: ``pre_units`` counts the units with a pre-exposure denominator; the
    others have a covariate of 0 / 0.

    ``answers`` (:func:`scored_answers`) give the survey metrics (``csat``, ``ces``): their
    numerators and denominators are those of the answers linked to the attempts; without
    them these metrics have no units."""
    a = _with_answers(_with_frictions(_after(attempts, people, until), frictions), answers, metrics)
    per = _per_person(a, metrics, ["variant", "person"])
    pre = before is not None and pre_days > 0
    if before is not None and pre:
        b = before.inner_join(people, before.person == people.person)
        start, exposed_ms = epoch_ms(b.start_ts), epoch_ms(b.exposed_ts)
        b = b.filter((start < exposed_ms) & (start >= exposed_ms - pre_days * _DAY_MS))
        earlier = _per_person(_with_answers(_with_frictions(b, frictions), answers, metrics), metrics,
                              ["person"], "pre_")
        earlier = earlier.rename(_pp="person")
        per = per.left_join(earlier, per.person == earlier._pp)
    return per.group_by("variant").aggregate(**_sums(per, metrics, pre))


def weekly_statistics(attempts: Table, people: Table, frictions: Table | None, metrics: Sequence[str],
                      until: datetime | None = None, answers: Table | None = None) -> Table:
    """Per variant and ``week`` (the Monday of the ISO week, UTC): the plain sums of
    :func:`metric_statistics` over the attempts started that week after each person's first
    exposure (the survey metrics: the answers linked to them); the units are the persons with
    a denominator that week."""
    a = _with_answers(_with_frictions(_after(attempts, people, until), frictions), answers, metrics)
    a = a.mutate(week=a.start_ts.truncate("W").date())
    per = _per_person(a, metrics, ["variant", "week", "person"])
    return per.group_by(["variant", "week"]).aggregate(**_sums(per, metrics, False))


def long(wide: pd.DataFrame, metrics: Sequence[str], keys: Sequence[str] = ("variant",)) -> pd.DataFrame:
    """One row per metric and ``keys`` from the engine's wide sums (``{sum}_{i}`` for the
    ``i``-th metric), leaving out the rows of a metric without units."""
    columns = list(keys) + ["metric", "units", "num", "den", "num2", "den2", "numden", *CUPED_SUMS]
    parts = []
    for i, metric in enumerate(metrics):
        mine = {c[: -len(f"_{i}")]: wide[c] for c in wide.columns if c.endswith(f"_{i}")
                and c[: -len(f"_{i}")] in columns}
        part = pd.DataFrame({**{k: wide[k] for k in keys}, "metric": metric, **mine})
        parts.append(part[part["units"] > 0] if "units" in part else part)
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    return out.reindex(columns=[c for c in columns if c in out.columns])


def span(attempts: Table) -> Table:
    """One row: the first and the last start of ``attempts`` (``first``, ``last``)."""
    return attempts.aggregate(first=attempts.start_ts.min(), last=attempts.start_ts.max())


def unit_statistics(attempts: Table, frictions: Table | None, metric: str, start: datetime,
                    end: datetime) -> Table:
    """One row: the plain sums of :func:`metric_statistics` (``units_0``, ``num_0``...) per
    person over ``attempts`` started in [``start``, ``end``) — every person with a denominator
    is a unit (for planning)."""
    a = attempts.filter((attempts.start_ts >= start) & (attempts.start_ts < end))
    per = _per_person(_with_frictions(a, frictions), [metric], ["person"])
    return per.aggregate(**_sums(per, [metric], False))

"""A moment's metrics per UTC day as sufficient statistics: what the change playbook's
interrupted time series and the regression alerts read (docs/playbook.md, docs/alerts.md).

Per (moment, day of the attempts' start[, a breakdown column]): ``attempts`` (the volume),
``finished`` (attempts − in progress), ``completed``, ``failed``, ``abandoned``,
``escalated`` (the escalated outcome or an escalation during the attempt), the completed
attempts' durations (``duration_n``, ``duration_sum``, ``duration_sum2``) and the seconds
lost to frictions per finished attempt (``friction_sum``, ``friction_sum2``; ``finished``
is their n). Never a row per attempt.

The survey scores per (moment, day) — CSAT satisfied and answers, CES n, sum and sum of
squares — are :func:`daily_surveys`'.
"""

from __future__ import annotations

import ibis
from ibis.expr.types import Table

__all__ = ["MEANS", "RATES", "daily_frictions", "daily_metrics", "daily_surveys"]

#: Rate metrics: (numerator column, denominator column) in :func:`daily_metrics`' rows.
RATES: dict[str, tuple[str, str]] = {
    "completion_rate": ("completed", "finished"),
    "failure_rate": ("failed", "finished"),
    "abandonment_rate": ("abandoned", "finished"),
    "escalation_rate": ("escalated", "finished"),
}
#: Mean metrics: (n, sum, sum of squares) columns.
MEANS: dict[str, tuple[str, str, str]] = {
    "duration": ("duration_n", "duration_sum", "duration_sum2"),
    "friction_seconds": ("finished", "friction_sum", "friction_sum2"),
}
#: Survey scores (when a survey of the moment asks them, :func:`daily_surveys`): the CSAT
#: share satisfied (a rate) and the mean CES answer.
SURVEY_RATES: dict[str, tuple[str, str]] = {"csat": ("csat_satisfied", "csat_answers")}
SURVEY_MEANS: dict[str, tuple[str, str, str]] = {"ces": ("ces_n", "ces_sum", "ces_sum2")}


def daily_metrics(attempts: Table, frictions: Table, by: str | None = None) -> Table:
    """The per-day sufficient statistics of ``attempts`` (see the module doc); ``frictions``
    has ``attempt`` and ``seconds`` (seconds lost per friction)."""
    lost = frictions.group_by(frictions.attempt).aggregate(f_seconds=frictions.seconds.sum())
    a = attempts.left_join(lost, attempts.attempt_id == lost.attempt)
    finished = a.outcome != "in_progress"
    done = a.outcome == "completed"
    seconds = ibis.ifelse(finished, a.f_seconds.fill_null(0.0), 0.0)
    took = ibis.ifelse(done, a.duration_s.cast("float64"), 0.0)
    a = a.mutate(day=a.start_ts.date(), _finished=finished.cast("int64"), _done=done.cast("int64"),
                 _escalated=(finished & ((a.outcome == "escalated") | a.escalated.fill_null(False)))
                 .cast("int64"), _seconds=seconds, _took=took)
    keys = ["moment", "day", *([by] if by else [])]
    return a.group_by(keys).aggregate(
        attempts=a.count(),
        finished=a._finished.sum(),
        completed=a._done.sum(),
        failed=(a.outcome == "failed").cast("int64").sum(),
        abandoned=(a.outcome == "abandoned").cast("int64").sum(),
        escalated=a._escalated.sum(),
        duration_n=(done & a.duration_s.notnull()).cast("int64").sum(),
        duration_sum=a._took.sum(),
        duration_sum2=(a._took * a._took).sum(),
        friction_sum=a._seconds.sum(),
        friction_sum2=(a._seconds * a._seconds).sum(),
    ).order_by(keys)


def daily_frictions(attempts: Table, frictions: Table) -> Table:
    """Per (moment, day of the attempts' start, friction kind): the attempts showing that
    kind (``hit``) and the seconds it lost them (``seconds``); ``frictions`` as for
    :func:`daily_metrics`, with ``kind``."""
    f = frictions.group_by([frictions.attempt, frictions.kind]).aggregate(
        seconds=frictions.seconds.sum())
    a = attempts.select(attempts.attempt_id, attempts.moment, day=attempts.start_ts.date())
    j = a.inner_join(f, a.attempt_id == f.attempt)
    keys = ["moment", "day", "kind"]
    return j.group_by(keys).aggregate(hit=j.count(), seconds=j.seconds.sum()).order_by(keys)


def daily_surveys(answers: Table) -> Table:
    """Per (moment, day): ``csat_satisfied`` and ``csat_answers`` (CSAT answers of 4–5, and
    all CSAT answers), ``ces_n``, ``ces_sum`` and ``ces_sum2`` (CES answers, their sum and
    sum of squares). ``answers`` as :func:`microjourney.engine.experiments.scored_answers`
    gives them with the attempts (``moment``, ``kind``, ``value``, ``satisfied``,
    ``answered_ts``, ``start_ts``). The day is the UTC day **the linked attempt started**, as
    :func:`daily_metrics` counts the attempts, so an answer given the next day speaks for the
    day of the attempt it is about; an answer linked to no attempt counts on the day it was
    given. Answers of a survey of no moment are left out."""
    a = answers.filter(answers.moment.notnull())
    csat, ces = a.kind == "csat", a.kind == "ces"
    value = ibis.ifelse(ces, a.value.cast("float64"), 0.0)
    a = a.mutate(day=ibis.coalesce(a.start_ts, a.answered_ts).date(),
                 _sat=(csat & (a.satisfied == 1)).cast("int64"), _csat=csat.cast("int64"),
                 _ces=ces.cast("int64"), _v=value)
    keys = ["moment", "day"]
    return a.group_by(keys).aggregate(
        csat_satisfied=a._sat.sum(),
        csat_answers=a._csat.sum(),
        ces_n=a._ces.sum(),
        ces_sum=a._v.sum(),
        ces_sum2=(a._v * a._v).sum(),
    ).order_by(keys)

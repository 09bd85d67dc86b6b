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
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import ibis
from ibis.expr.types import Table

from .backend import json_text

EXPOSURE = "experiment_exposure"

__all__ = ["EXPOSURE", "exposed", "metric_statistics"]


def exposed(events: Table, experiment: str) -> Table:
    """Per person exposed to ``experiment`` (``events`` with their ``person``): the
    ``variant``, the first exposure (``exposed_ts``) and how many variants they saw."""
    e = events.filter(events.event == EXPOSURE)
    e = e.mutate(experiment=json_text(e.properties, "experiment"),
                 variant=json_text(e.properties, "variant"))
    e = e.filter((e.experiment == experiment) & e.variant.notnull())
    return e.group_by(e.person).aggregate(variant=e.variant.min(), exposed_ts=e.timestamp.min(),
                                          variants=e.variant.nunique())


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
    raise ValueError(f"unknown experiment metric {metric!r}")


def metric_statistics(attempts: Table, people: Table, frictions: Table, metrics: Sequence[str],
                      until: datetime | None = None) -> Table:
    """Per (metric, variant): ``units`` (persons with a denominator), the sums of the
    numerators and denominators (``num``, ``den``), their squares (``num2``, ``den2``) and
    products (``numden``), over ``attempts`` (of the experiment's moment) started at or
    after each person's first exposure (and before ``until``); ``people`` from :func:`exposed`
    (persons who saw one variant only); ``frictions``: seconds lost per attempt."""
    lost = frictions.group_by(frictions.attempt).aggregate(f_seconds=frictions.seconds.sum())
    a = attempts.inner_join(people, attempts.person == people.person)
    a = a.filter(a.start_ts >= a.exposed_ts)
    if until is not None:
        a = a.filter(a.start_ts < until)
    a = a.left_join(lost, a.attempt_id == lost.attempt)
    parts: list[Table] = []
    for metric in metrics:
        num, den = _parts(a, metric)
        per = a.mutate(_num=num.cast("float64"), _den=den.cast("float64")).group_by(
            ["variant", "person"]).aggregate(num=ibis._["_num"].sum(), den=ibis._["_den"].sum())
        per = per.filter(per.den > 0)
        stats = per.group_by("variant").aggregate(
            units=per.count(), num=per.num.sum(), den=per.den.sum(),
            num2=(per.num * per.num).sum(), den2=(per.den * per.den).sum(),
            numden=(per.num * per.den).sum())
        parts.append(stats.mutate(metric=ibis.literal(metric)))
    out = parts[0]
    for p in parts[1:]:
        out = out.union(p)
    return out

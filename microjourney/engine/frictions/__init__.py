"""Friction detectors: one small module per kind, run in registry order.

Each module exposes ``KIND``, ``VERSION`` and ``detect(scope, settings, context)``
returning rows in the shape of :data:`base.COLUMNS`; adding a detector is adding a
module here and its settings model to :mod:`microjourney.spec.frictions`. Every
detector reads the same *scope* (:mod:`.scope`): the events of each attempt.
"""

from __future__ import annotations

from types import ModuleType

import ibis
from ibis.expr.types import Table

from ..backend import grade_up, list_select
from . import (
    cognitive_load,
    dead_click,
    error_shown,
    rage_click,
    redundant_input,
    repeated_attempt,
    repeated_auth,
    transfer_hold,
    u_turn,
    uncertainty,
    waiting,
)
from .base import COLUMNS, DETECTED, Context
from .scope import scope, spans

#: The detectors, in the order their rows are reported.
DETECTORS: tuple[ModuleType, ...] = (
    waiting,
    repeated_attempt,
    rage_click,
    dead_click,
    error_shown,
    u_turn,
    uncertainty,
    cognitive_load,
    redundant_input,
    repeated_auth,
    transfer_hold,
)


def detect(scope: Table, ctx: Context) -> Table:
    """Rows of every enabled detector over ``scope`` (in the :data:`base.DETECTED` shape);
    ``ctx`` holds what detectors join on the rows they read. :func:`named` turns them
    into friction rows."""
    workspace = ctx.workspace
    parts = [d.detect(scope, getattr(workspace.frictions, d.KIND), ctx) for d in DETECTORS
             if getattr(workspace.frictions, d.KIND).enabled]
    if not parts:
        parts = [scope.filter(ibis.literal(False)).select(
            attempt="attempt", step="at_step", kind=ibis.literal(""),
            version=ibis.literal(0, "int64"), seconds_lost=ibis.literal(0.0), at_ms="t_ms",
            evidence=ibis.array([scope.seq]))]
    out = parts[0]
    for p in parts[1:]:
        out = out.union(p)
    return out.select(*DETECTED)


def named(found: Table, spans: Table, events: Table) -> Table:
    """Friction rows (:data:`base.COLUMNS`) from :func:`detect`'s (materialised) rows:
    moments, attempt ids, persons and event ids are looked up once, for the rows found,
    instead of being carried through every detector. ``spans`` names the scope's
    attempts."""
    ids = events.select(e_seq="seq", event_id="event_id")
    a = spans.select(s_inner="inner", attempt_id="attempt_id", person="a_person",
                     moment="a_moment")
    f = found.inner_join(a, found.attempt == a.s_inner)
    # Most evidence is one event: a plain join.
    one = f.filter(f.evidence.length() == 1)
    one = one.inner_join(ids, one.evidence[0] == ids.e_seq)
    one = one.select(*COLUMNS[:-1], evidence=ibis.array([one.event_id]).cast("array<!string>"))
    # Longer evidence (a few rows): numbered, unnested, looked up and put back in order
    # (the ids collected in any order, then picked by their positions' ranks: no sort
    # inside the aggregate).
    many = f.filter(f.evidence.length() > 1)
    # A number per row within its attempt, the same each time the rows are read (it
    # joins the looked-up ids back, and an engine may compute ``many`` once per
    # reference); numbered per attempt, the numbering sorts in parallel.
    many = many.mutate(fid=ibis.row_number().over(
        group_by="attempt", order_by=["kind", "at_ms", "step", "seconds_lost", "evidence"]))
    # The positions unnested in the select list (one generator, as Spark wants; cheaper
    # on DuckDB than a table unnest, which is a correlated join), each picking its seq.
    u = many.select("attempt", "fid", "evidence",
                    pos=ibis.range(0, many.evidence.length()).unnest())
    u = u.select("attempt", "fid", "pos", evidence=u.evidence[u.pos])
    u = u.inner_join(ids, u.evidence == ids.e_seq)
    u = u.group_by(u_attempt="attempt", u_fid="fid").aggregate(ids=u.event_id.collect(),
                                                               pos=u.pos.collect())
    u = u.select("u_attempt", "u_fid", ids=list_select(u.ids, grade_up(u.pos)))
    many = many.inner_join(u, [many.attempt == u.u_attempt, many.fid == u.u_fid])
    many = many.select(*COLUMNS[:-1], evidence=many.ids.cast("array<!string>"))
    return one.union(many)


def per_attempt(found: Table, spans: Table) -> Table:
    """Per (attempt, kind) of :func:`detect`'s rows: frictions ``n``, ``seconds`` lost, the
    earliest ``step``, and the attempt's ``moment``, ``finished`` and ``completed`` (0/1).
    :func:`friction_stats` reads it several times: materialise it first."""
    a = spans.select(s_inner="inner", moment="a_moment",
                     finished=(spans.outcome != "in_progress").cast("int64"),
                     completed=(spans.outcome == "completed").cast("int64"))
    per = found.group_by(["attempt", "kind"]).aggregate(
        n=found.count(), seconds=found.seconds_lost.sum(), step=found.step.min())
    per = per.inner_join(a, per.attempt == a.s_inner)
    return per.drop("s_inner")


def friction_stats(per: Table, attempts: Table) -> tuple[Table, Table]:
    """Sufficient statistics from :func:`per_attempt`'s rows: per (moment, kind) and per
    moment.

    Per kind: frictions, attempts affected, seconds lost, how many affected attempts
    finished and completed, and the same two counts over all attempts that reached the
    earliest step where the kind occurred (the comparison group: an attempt that never
    reached the payment form cannot have re-typed its card). Per moment: attempts,
    finished, completed, seconds spent in attempts, attempts with any friction, and
    their friction seconds. Attempts are matched by their number in the spans, not by
    their text ids.
    """
    kinds = per.group_by(["moment", "kind"]).aggregate(
        frictions=per.n.sum(), attempts=per.count(), seconds_lost=per.seconds.sum(),
        finished=per.finished.sum(), completed=per.completed.sum(), first_step=per.step.min())
    # Attempts counted per (moment, furthest step) first: the range join then meets a
    # few rows per moment instead of every attempt.
    finished = (attempts.outcome != "in_progress").cast("int64")
    completed = (attempts.outcome == "completed").cast("int64")
    r = attempts.mutate(r_finished=finished, r_completed=completed)
    r = r.group_by(r_moment=r.moment, furthest=r.furthest_step).aggregate(
        r_finished=r.r_finished.sum(), r_completed=r.r_completed.sum())
    reach = kinds.inner_join(r, [kinds.moment == r.r_moment, r.furthest >= kinds.first_step])
    reach = reach.group_by(["moment", "kind"]).aggregate(
        reached_finished=reach.r_finished.sum(), reached_completed=reach.r_completed.sum())
    kinds = kinds.inner_join(reach, ["moment", "kind"])

    tot = per.group_by(["attempt", "moment"]).aggregate(seconds=per.seconds.sum())
    tot = tot.group_by(f_moment=tot.moment).aggregate(affected=tot.count(),
                                                      friction_seconds=tot.seconds.sum())
    at = attempts.group_by("moment").aggregate(
        attempts=attempts.count(), finished=finished.sum(), completed=completed.sum(),
        attempt_seconds=attempts.duration_s.sum())
    moments = at.left_join(tot, at.moment == tot.f_moment).drop("f_moment")
    return kinds, moments


__all__ = ["DETECTORS", "Context", "detect", "friction_stats", "named", "per_attempt", "scope", "spans"]

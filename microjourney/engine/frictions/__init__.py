"""Friction detectors: one small module per kind, run in registry order.

Each module exposes ``KIND``, ``VERSION`` and ``detect(scope, settings, context)``
returning rows in the shape of :data:`base.COLUMNS`; adding a detector is adding a
module here and its settings model to :mod:`microjourney.spec.frictions`. Every
detector reads the same *scope* (:mod:`.scope`): the events of each attempt.

A detector that reads the person's next event (``Context.neighbours``) declares how far
after an event it looks (``reach(settings)``, seconds) and counts a later next event as
none once the attempt is over: a refresh relies on it (:func:`reach`).

A detector that judges an attempt against a baseline over every attempt (``BASELINE =
True``: waiting) exposes ``candidates``, ``baselines`` and ``judge`` instead: its
candidates are kept per person (``friction_waits``), and its rows are judged from all of
them at each refresh (:func:`waits`, :func:`baselines`, :func:`judged`), so that a
refresh of some persons finds what a full rebuild finds.
"""

from __future__ import annotations

from types import ModuleType

import ibis
from ibis.expr.types import Table, Value

from ...spec import Workspace
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
    parts = [d.detect(scope, getattr(workspace.frictions, d.KIND), ctx) for d in _enabled(workspace)
             if not getattr(d, "BASELINE", False)]
    if not parts:
        parts = [scope.filter(ibis.literal(False)).select(
            attempt="attempt", step="at_step", kind=ibis.literal(""),
            version=ibis.literal(0, "int64"), seconds_lost=ibis.literal(0.0), at_ms="t_ms",
            evidence=ibis.array([scope.seq]), reached="at_step")]
    out = parts[0]
    for p in parts[1:]:
        out = out.union(p)
    return out.select(*DETECTED)


def reach(workspace: Workspace) -> float:
    """How far (s) a person's next event can come after another and still change what an
    enabled detector finds: the longest ``reach`` of those that read the next event
    (``Context.neighbours``); beyond it, a next event counts as none once the attempt is
    over. A refresh looks again at the attempt holding a person's last event only when
    their next comes within it."""
    return max([d.reach(getattr(workspace.frictions, d.KIND)) for d in _enabled(workspace)
                if hasattr(d, "reach")], default=0.0)


def _enabled(workspace: Workspace, *, baseline: bool | None = None) -> list[ModuleType]:
    return [d for d in DETECTORS if getattr(workspace.frictions, d.KIND).enabled
            and (baseline is None or getattr(d, "BASELINE", False) == baseline)]


def judging(workspace: Workspace) -> bool:
    """Whether a detector that judges against a baseline (``BASELINE``) is on."""
    return bool(_enabled(workspace, baseline=True))


#: The columns of ``friction_waits``: a baseline detector's candidates, named.
WAITS = ("attempt_id", "person", "moment", "kind", "version", "step", "reached", "at_ms",
         "latency_ms", "sla_ms", "event_id", "furthest", "finished", "completed")


def waits(scope: Table, ctx: Context, spans: Table, events: Table) -> Table | None:
    """The candidates of every enabled baseline detector (:data:`WAITS`), with their
    attempt's id, person, moment and outcome and the event's id; None when none is on."""
    detectors = _enabled(ctx.workspace, baseline=True)
    if not detectors:
        return None
    a = spans.select(s_inner="inner", attempt_id="attempt_id", person="a_person",
                     moment="a_moment", furthest="furthest",
                     finished=(spans.outcome != "in_progress").cast("int64"),
                     completed=(spans.outcome == "completed").cast("int64"))
    ids = events.select(e_seq="seq", event_id="event_id")
    out = None
    for d in detectors:
        c = d.candidates(scope, getattr(ctx.workspace.frictions, d.KIND), ctx)
        c = c.inner_join(a, c.attempt == a.s_inner)
        c = c.inner_join(ids, c.seq == ids.e_seq)
        c = c.select(*WAITS[:3], kind=ibis.literal(d.KIND), version=ibis.literal(d.VERSION, "int64"),
                     **{k: k for k in WAITS[5:]})
        out = c if out is None else out.union(c)
    return out


def baselines(waits: Table, workspace: Workspace) -> Table | None:
    """Per (kind, moment, step): the baseline of every enabled baseline detector."""
    parts = [d.baselines(waits, getattr(workspace.frictions, d.KIND))
             for d in _enabled(workspace, baseline=True)]
    parts = [p.select("kind", "moment", "step", baseline=p.baseline.cast("float64")) for p in parts]
    return _union(parts)


def judged(waits: Table, base: Table, workspace: Workspace) -> tuple[Table, Table] | None:
    """The baseline detectors' friction rows (:data:`base.COLUMNS`) and their rows per
    (attempt, kind) (as ``friction_attempt_rows``), from all the candidates."""
    parts = [d.judge(waits, base, getattr(workspace.frictions, d.KIND))
             for d in _enabled(workspace, baseline=True)]
    late = _union(parts)
    if late is None:
        return None
    rows = late.select(*COLUMNS[:-1], evidence=ibis.array([late.event_id]).cast("array<!string>"))
    per = late.group_by(attempt="attempt_id", kind="kind").aggregate(
        person=late.person.arbitrary(), n=late.count(), seconds=late.seconds_lost.sum(),
        step=late.reached.min(), moment=late.moment.arbitrary(), furthest=late.furthest.max(),
        finished=late.finished.max(), completed=late.completed.max())
    return rows, per


def _union(parts: list[Table]) -> Table | None:
    out = None
    for p in parts:
        out = p if out is None else out.union(p)
    return out


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
    """Per (attempt, kind) of :func:`detect`'s rows: frictions ``n``, ``seconds`` lost,
    ``step``, the furthest step the attempt had reached when it first met the kind, and
    the attempt's ``moment``, ``furthest`` step, ``finished`` and ``completed`` (0/1).
    :func:`friction_stats` reads it several times: materialise it first."""
    a = spans.select(s_inner="inner", moment="a_moment", furthest="furthest",
                     finished=(spans.outcome != "in_progress").cast("int64"),
                     completed=(spans.outcome == "completed").cast("int64"))
    per = found.group_by(["attempt", "kind"]).aggregate(
        n=found.count(), seconds=found.seconds_lost.sum(), step=found.reached.min())
    per = per.inner_join(a, per.attempt == a.s_inner)
    return per.drop("s_inner")


#: The counts of :func:`friction_stats`'s per-kind table, after (moment, kind, step).
KIND_COUNTS = ("frictions", "attempts", "seconds_lost", "exposed", "exposed_completed",
               "unexposed", "unexposed_completed", "never", "never_completed")


def friction_stats(per: Table, attempts: Table) -> tuple[Table, Table]:
    """Sufficient statistics from :func:`per_attempt`'s rows: per (moment, kind, step)
    and per moment.

    Per (moment, kind, step), for the kinds met in the moment, ``step`` being where an
    attempt first met the kind (the furthest step it had reached then):

    * ``frictions``, ``attempts``, ``seconds_lost``: of the attempts (any outcome) that
      first met the kind at that step (summed over steps: the kind's totals);
    * ``exposed``, ``exposed_completed``: finished attempts that first met it there, and
      how many of them completed;
    * ``unexposed``, ``unexposed_completed``: finished attempts that reached the step
      without having met the kind by then (they may meet it later), the comparison group
      at that step;
    * ``never``, ``never_completed``: finished attempts that never met the kind and whose
      furthest step is this one. One attempt is in the comparison group of every step it
      passed, so the groups overlap; these disjoint counts (with ``exposed``) are what the
      interval of :func:`microjourney.analysis.frictions.impact` needs.

    Per moment: attempts, finished, completed, seconds spent in attempts, attempts with
    any friction, and their friction seconds. Attempts are matched by their number in the
    spans, not by their text ids.
    """
    fin = per.filter(per.finished == 1)
    # Finished attempts that met the kind, per (first step, furthest step): few rows.
    met = fin.group_by(["moment", "kind", "step", "furthest"]).aggregate(
        n=fin.count(), done=fin.completed.sum())
    finished = (attempts.outcome != "in_progress").cast("int64")
    completed = (attempts.outcome == "completed").cast("int64")
    ended = attempts.mutate(r_finished=finished, r_completed=completed)
    ended = ended.filter(ended.r_finished == 1)
    ended = ended.group_by(r_moment=ended.moment, r_step=ended.furthest_step).aggregate(
        n=ended.count(), done=ended.r_completed.sum())
    met_kinds = per.select("moment", "kind").distinct()
    every = met_kinds.inner_join(ended, met_kinds.moment == ended.r_moment)
    totals = per.group_by(["moment", "kind", "step"]).aggregate(
        f=per.n.sum(), a=per.count(), s=per.seconds.sum())

    # Summed per step; ``left``: attempts whose last step without the kind is this one
    # because they met it at the next (the running sum of ``never`` and ``left`` from the
    # last step down is ``unexposed``).
    counts = ("frictions", "attempts", "seconds_lost", "exposed", "exposed_completed", "left",
              "left_completed", "never", "never_completed")

    def part(t: Table, step: Value, **given: Value) -> Table:
        """``t``'s counts in the union's columns, zero where not ``given``."""
        cols = {}
        for c in counts:
            kind = "float64" if c == "seconds_lost" else "int64"
            cols[c] = given[c].cast(kind) if c in given else ibis.literal(0, kind)
        return t.select(moment=t.moment, kind=t.kind, step=step.cast("int64"), **cols)

    # Counted by signed parts and summed: the attempts that never met a kind are every
    # finished attempt of the moment less those that met it (no cross join of every
    # attempt with every kind).
    parts = [
        part(totals, totals.step, frictions=totals.f, attempts=totals.a, seconds_lost=totals.s),
        part(met, met.step, exposed=met.n, exposed_completed=met.done),
        # An attempt that first met the kind at step k was without it up to step k - 1.
        part(met.filter(met.step >= 1), met.step - 1, left=met.n, left_completed=met.done),
        part(every, every.r_step, never=every.n, never_completed=every.done),
        part(met, met.furthest, never=-met.n, never_completed=-met.done),
    ]
    u = parts[0]
    for p in parts[1:]:
        u = u.union(p)
    u = u.group_by(["moment", "kind", "step"]).aggregate(**{c: u[c].sum() for c in counts})
    # Without the kind at step k: never met it and got to k or further, or met it after k.
    down = ibis.window(group_by=["moment", "kind"], order_by=ibis.desc("step"), rows=(None, 0))
    u = u.mutate(unexposed=(u.never + u.left).sum().over(down),
                 unexposed_completed=(u.never_completed + u.left_completed).sum().over(down))
    kinds = u.select("moment", "kind", "step", *KIND_COUNTS)
    kinds = kinds.filter((kinds.attempts > 0) | (kinds.unexposed > 0))

    tot = per.group_by(["attempt", "moment"]).aggregate(seconds=per.seconds.sum())
    tot = tot.group_by(f_moment=tot.moment).aggregate(affected=tot.count(),
                                                      friction_seconds=tot.seconds.sum())
    at = attempts.group_by("moment").aggregate(
        attempts=attempts.count(), finished=finished.sum(), completed=completed.sum(),
        attempt_seconds=attempts.duration_s.sum())
    moments = at.left_join(tot, at.moment == tot.f_moment).drop("f_moment")
    return kinds, moments


__all__ = ["DETECTORS", "WAITS", "Context", "baselines", "detect", "friction_stats", "judged", "judging",
           "named", "per_attempt", "reach", "scope", "spans", "waits"]

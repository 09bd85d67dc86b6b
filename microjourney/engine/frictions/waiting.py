"""waiting (v1): a step reached later than it should be.

The latency of a step is the time from the attempt's previous own event to the first
time the attempt reaches that step. It is late when it exceeds the step's ``sla``
(declared on the step) or, without one, the moment's own baseline: the ``quantile``
(default p75) of that step's latency over all attempts. Seconds lost: the latency
beyond the threshold, at most ``cap`` (30 min: a longer gap is more the
customer's own pause than waiting); excesses under ``min_seconds`` are ignored.

The baseline is the one thing a detector reads across persons, so this detector works in
two stages (``BASELINE``): :func:`candidates` keeps every step reach with its latency,
per person, in the ``friction_waits`` table; :func:`baselines` and :func:`judge` turn all
of them into friction rows at each refresh. A refresh thus recomputes the candidates of
the persons it touched only, and the rows are those a full rebuild would find.
"""

from __future__ import annotations

import ibis
from ibis.expr.types import Table

from ...spec.frictions import Waiting
from .base import Context, capped, ms

KIND = "waiting"
VERSION = 1
#: Judged against a baseline over every attempt (see the module docstring).
BASELINE = True


def candidates(s: Table, cfg: Waiting, ctx: Context) -> Table:
    """Every first reach of a step after an own event of its attempt: ``attempt`` (the
    scope's number), ``step``, ``reached``, ``at_ms``, ``seq``, ``latency_ms`` and the
    step's own ``sla_ms`` (NULL without one)."""
    first = s.role.isin(["step", "complete"]) & (s.step > s.prev_step.fill_null(-1))
    o = ctx.attempts(s.filter(first & s.prev_own_t.notnull()))
    sla = ctx.step_slas()
    o = o.left_join(sla, [o.moment == sla.l_moment, o.step == sla.l_step])
    return o.select(attempt=o.attempt, step=o.step.cast("int64"), reached=o.at_step.cast("int64"),
                    at_ms=o.t_ms.cast("int64"), seq=o.seq,
                    latency_ms=(o.t_ms - o.prev_own_t).cast("int64"), sla_ms=o.sla_ms.cast("int64"))


def baselines(waits: Table, cfg: Waiting) -> Table:
    """Per (moment, step) of the stored candidates (``friction_waits``): the baseline."""
    w = waits.filter(waits.kind == KIND)
    return w.group_by(["moment", "step"]).aggregate(
        kind=ibis.literal(KIND), baseline=w.latency_ms.quantile(cfg.quantile))


def judge(waits: Table, base: Table, cfg: Waiting) -> Table:
    """The candidates found late, with the seconds they lost (``seconds_lost``)."""
    w = waits.filter(waits.kind == KIND)
    b = base.select(b_kind="kind", b_moment="moment", b_step="step", baseline="baseline")
    o = w.inner_join(b, [w.kind == b.b_kind, w.moment == b.b_moment, w.step == b.b_step])
    o = o.mutate(excess=o.latency_ms - ibis.coalesce(o.sla_ms.cast("float64"), o.baseline))
    o = o.filter((o.excess > 0) & (o.excess >= ms(cfg.min_seconds)))
    return o.mutate(seconds_lost=capped(o.excess, cfg.cap)).drop(
        "b_kind", "b_moment", "b_step", "baseline", "excess")

"""waiting (v1): a step reached later than it should be.

The latency of a step is the time from the attempt's previous own event to the first
time the attempt reaches that step. It is late when it exceeds the step's ``sla``
(declared on the step) or, without one, the moment's own baseline: the ``quantile``
(default p75) of that step's latency over all attempts. Seconds lost: the latency
beyond the threshold, at most ``cap`` (30 min: a longer gap is more the
customer's own pause than waiting); excesses under ``min_seconds`` are ignored.
"""

from __future__ import annotations

import ibis
from ibis.expr.types import Table

from ...spec.frictions import Waiting
from .base import Context, capped, friction, ms, one

KIND = "waiting"
VERSION = 1


def detect(s: Table, cfg: Waiting, ctx: Context) -> Table:
    first = s.role.isin(["step", "complete"]) & (s.step > s.prev_step.fill_null(-1))
    o = ctx.attempts(s.filter(first & s.prev_own_t.notnull()))
    o = o.mutate(latency=o.t_ms - o.prev_own_t)
    base = o.group_by(b_moment=o.moment, b_step=o.step).aggregate(
        baseline=o.latency.quantile(cfg.quantile))
    o = o.inner_join(base, [o.moment == base.b_moment, o.step == base.b_step])
    sla = ctx.step_slas()
    o = o.left_join(sla, [o.moment == sla.l_moment, o.step == sla.l_step])
    o = o.mutate(excess=o.latency - ibis.coalesce(o.sla_ms.cast("float64"), o.baseline))
    o = o.filter((o.excess > 0) & (o.excess >= ms(cfg.min_seconds)))
    return friction(o, kind=KIND, version=VERSION, seconds=capped(o.excess, cfg.cap), at_ms=o.t_ms,
                    evidence=one(o), step=o.step)

"""rage_click (v1): a burst of ``clicks`` (default 3) or more clicks, each within
``within`` (1 s) and ``distance`` (30 px) of the one before.

Seconds lost: from the burst's first click to the person's next event after it (what
finally happened), at most ``cap`` (10 s).
"""

from __future__ import annotations

import ibis
from ibis.expr.types import Table

from ...spec.frictions import RageClick
from .base import Context, capped, friction, ms, number

KIND = "rage_click"
VERSION = 1


def detect(s: Table, cfg: RageClick, ctx: Context) -> Table:
    c = ctx.neighbours(ctx.properties(s.filter(s.event.isin(list(cfg.events)))))
    c = c.mutate(x=number(c, cfg.x), y=number(c, cfg.y))
    w = ibis.window(group_by="attempt", order_by=["t_ms", "seq"])
    dx, dy = c.x - c.x.lag().over(w), c.y - c.y.lag().over(w)
    near = ((dx * dx + dy * dy) <= cfg.distance ** 2) & ((c.t_ms - c.t_ms.lag().over(w)) <= ms(cfg.within))
    c = c.mutate(brk=ibis.ifelse(near.fill_null(False), 0, 1))
    c = c.mutate(burst=c.brk.sum().over(ibis.window(group_by="attempt", order_by=["t_ms", "seq"],
                                                    rows=(None, 0))))
    # The click that makes the burst a rage click (the ``clicks``-th): the step reached
    # then is when the friction happened.
    c = c.mutate(k=ibis.row_number().over(group_by=["attempt", "burst"], order_by=["t_ms", "seq"]))
    g = c.group_by(["attempt", "burst"]).aggregate(
        n=c.count(), first_t=c.t_ms.min(), last_t=c.t_ms.max(), step=c.at_step.min(),
        reached=c.at_step.max(where=c.k == cfg.clicks - 1),
        after=c.next_t.max(), ids=c.seq.collect(order_by=[c.t_ms, c.seq]))
    g = g.filter(g.n >= cfg.clicks)
    return friction(g, kind=KIND, version=VERSION, at_ms=g.first_t, evidence=g.ids, step=g.step,
                    reached=g.reached,
                    seconds=capped(ibis.coalesce(g.after, g.last_t) - g.first_t, cfg.cap))

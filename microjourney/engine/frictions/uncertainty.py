"""uncertainty (v1): checking the same status again and again ("what is happening?").

``checks`` (3) or more events of one name from ``events`` (status pages, status API
calls, refreshes) in one attempt, each within ``within`` (10 min) of the one before.
Seconds lost: from the first check of the series to the last, at most ``cap``.
"""

from __future__ import annotations

import ibis
from ibis.expr.types import Table

from ...spec.frictions import Uncertainty
from .base import Context, capped, friction, ms

KIND = "uncertainty"
VERSION = 1


def detect(s: Table, cfg: Uncertainty, ctx: Context) -> Table:
    u = s.filter(s.event.isin(list(cfg.events)))
    key = ["attempt", "event"]
    w = ibis.window(group_by=key, order_by=["t_ms", "seq"])
    gap = u.t_ms - u.t_ms.lag().over(w)
    u = u.mutate(brk=ibis.ifelse((gap <= ms(cfg.within)).fill_null(False), 0, 1))
    u = u.mutate(series=u.brk.sum().over(ibis.window(group_by=key, order_by=["t_ms", "seq"],
                                                     rows=(None, 0))))
    # The ``checks``-th look makes it a friction: the step reached then is when it happened.
    u = u.mutate(k=ibis.row_number().over(group_by=[*key, "series"], order_by=["t_ms", "seq"]))
    g = u.group_by(["attempt", "event", "series"]).aggregate(
        n=u.count(), first_t=u.t_ms.min(), last_t=u.t_ms.max(), step=u.at_step.min(),
        reached=u.at_step.max(where=u.k == cfg.checks - 1),
        ids=u.seq.collect(order_by=[u.t_ms, u.seq]))
    g = g.filter(g.n >= cfg.checks)
    return friction(g, kind=KIND, version=VERSION, seconds=capped(g.last_t - g.first_t, cfg.cap),
                    at_ms=g.first_t, evidence=g.ids, step=g.step, reached=g.reached)

"""rage_click (v3): a burst of ``clicks`` (default 3) or more clicks, each within
``within`` (1 s) of the one before and in the same place: within ``distance`` (30 px)
when both clicks carry coordinates (``x``, ``y``), else on the same element (the first of
``selector_keys`` the click carries: ``selector``, ``element``, ``target``). Clicks with
neither never make a burst.

Seconds lost: from the burst's first click to the person's next event after it (what
finally happened), at most ``cap`` (10 s); the cap when nothing follows and the attempt is
over (the person left).

Version 2 reads the element when coordinates are missing (version 1 needed them);
version 3 counts the cap when nothing follows a finished attempt's burst (version 2 counted
the burst itself, and the seconds grew when the person came back, however much later).
"""

from __future__ import annotations

import ibis
from ibis.expr.types import Table

from ...spec.frictions import RageClick
from ..backend import json_text
from .base import Context, friction, ms, number, to_next

KIND = "rage_click"
VERSION = 3


def reach(cfg: RageClick) -> float:
    """How far (s) the next event after a burst can be and still change what is found."""
    return cfg.cap


def detect(s: Table, cfg: RageClick, ctx: Context) -> Table:
    c = ctx.neighbours(ctx.properties(s.filter(s.event.isin(list(cfg.events)))))
    keys = [json_text(c.properties, k) for k in cfg.selector_keys]
    selector = (ibis.coalesce(*keys) if len(keys) > 1 else keys[0]) if keys else ibis.null("string")
    c = c.mutate(x=number(c, cfg.x), y=number(c, cfg.y), selector=selector)
    w = ibis.window(group_by="attempt", order_by=["t_ms", "seq"])
    px, py, psel = c.x.lag().over(w), c.y.lag().over(w), c.selector.lag().over(w)
    dx, dy = c.x - px, c.y - py
    located = c.x.notnull() & c.y.notnull() & px.notnull() & py.notnull()
    # Coordinates when both clicks have them; otherwise the element (a NULL one matches
    # nothing, so clicks with neither never form a burst).
    same_place = ibis.ifelse(located, (dx * dx + dy * dy) <= cfg.distance ** 2,
                             (c.selector == psel).fill_null(False))
    near = same_place & ((c.t_ms - c.t_ms.lag().over(w)) <= ms(cfg.within))
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
    g = ctx.attempts(g.filter(g.n >= cfg.clicks))
    return friction(g, kind=KIND, version=VERSION, at_ms=g.first_t, evidence=g.ids, step=g.step,
                    reached=g.reached, seconds=to_next(g.first_t, g.last_t, g.after, g.outcome, cfg.cap))

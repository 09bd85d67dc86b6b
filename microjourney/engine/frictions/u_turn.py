"""u_turn (v1): going back.

Two shapes: an own event of the moment at a step before the furthest one reached so
far (back to an earlier step), and a page view returning to the page viewed two
pages before, less than ``dwell`` (30 s) after leaving it (page A → B → A). Seconds
lost: the time spent on the detour (since the previous own event of the attempt for
steps, at most ``cap``; on page B for pages).
"""

from __future__ import annotations

import ibis
from ibis.expr.types import Table

from ...spec.frictions import UTurn
from ..backend import json_text
from .base import Context, capped, friction, ms

KIND = "u_turn"
VERSION = 1


def detect(s: Table, cfg: UTurn, ctx: Context) -> Table:
    back = s.filter(s.role.isin(["start", "step"]) & (s.step < s.prev_step))
    steps = friction(back, kind=KIND, version=VERSION, at_ms=back.t_ms,
                     seconds=capped(back.t_ms - back.prev_own_t, cfg.cap),
                     evidence=ibis.array([back.seq]), step=back.step)
    p = ctx.properties(s.filter(s.event.isin(list(cfg.page_events))))
    p = p.mutate(page=json_text(p.properties, cfg.page_key))
    w = ibis.window(group_by="attempt", order_by=["t_ms", "seq"])
    p = p.mutate(p1=p.page.lag().over(w), p2=p.page.lag(2).over(w), t1=p.t_ms.lag().over(w),
                 id1=p.seq.lag().over(w))
    p = p.filter((p.page == p.p2) & (p.page != p.p1) & ((p.t_ms - p.t1) <= ms(cfg.dwell)))
    pages = friction(p, kind=KIND, version=VERSION, at_ms=p.t_ms,
                     seconds=(p.t_ms - p.t1) / 1000.0, evidence=ibis.array([p.id1, p.seq]))
    return steps.union(pages)

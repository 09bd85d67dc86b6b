"""repeated_attempt (v1): the start or a step done more than once in one attempt.

One row per repeated step (the start counts: the page opened again, a second tab).
Seconds lost: from the step's first occurrence to its last, the time spent doing it
again, at most ``cap`` (30 min).
"""

from __future__ import annotations

from ibis.expr.types import Table

from ...spec.frictions import RepeatedAttempt
from .base import Context, capped, friction

KIND = "repeated_attempt"
VERSION = 1


def detect(s: Table, cfg: RepeatedAttempt, ctx: Context) -> Table:
    r = s.filter(s.role.isin(["start", "step"]))
    g = r.group_by(["attempt_id", "person", "moment", "step"]).aggregate(
        n=r.count(), first_t=r.t_ms.min(), last_t=r.t_ms.max(),
        ids=r.event_id.collect(order_by=[r.t_ms, r.seq]))
    g = g.filter(g.n >= 2)
    return friction(g, kind=KIND, version=VERSION, seconds=capped(g.last_t - g.first_t, cfg.cap),
                    at_ms=g.last_t, evidence=g.ids, step=g.step)

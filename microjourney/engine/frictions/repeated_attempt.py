"""repeated_attempt (v1): the start or a step done more than once in one attempt.

One row per repeated step (the start counts: the page opened again, a second tab).
Seconds lost: from the step's first occurrence to its last, the time spent doing it
again, at most ``cap`` (30 min).
"""

from __future__ import annotations

import ibis
from ibis.expr.types import Table

from ...spec.frictions import RepeatedAttempt
from .base import Context, capped, friction

KIND = "repeated_attempt"
VERSION = 1


def detect(s: Table, cfg: RepeatedAttempt, ctx: Context) -> Table:
    r = s.filter(s.role.isin(["start", "step"]))
    # Most steps are done once: count first, collect evidence only for the repeated ones.
    key = ["attempt", "step"]
    n = r.group_by(key).aggregate(n=r.count())
    r = r.semi_join(n.filter(n.n >= 2), key)
    # The second occurrence makes it a repeat: the step reached then is when it happened.
    r = r.mutate(k=ibis.row_number().over(group_by=key, order_by=["t_ms", "seq"]))
    g = r.group_by(key).aggregate(
        n=r.count(), first_t=r.t_ms.min(), last_t=r.t_ms.max(),
        reached=r.at_step.max(where=r.k == 1), ids=r.seq.collect(order_by=[r.t_ms, r.seq]))
    return friction(g, kind=KIND, version=VERSION, seconds=capped(g.last_t - g.first_t, cfg.cap),
                    at_ms=g.last_t, evidence=g.ids, step=g.step, reached=g.reached)

"""repeated_auth (v1): signing in or proving who you are again inside one attempt.

Every authentication event (``events``: logins, one-time codes, identified callers)
after the attempt's first of the same name (a password then a one-time code is one
sign-in with two factors, not a repeat). Seconds lost: the time since the person's previous event
(doing it again), at most ``cap``.
"""

from __future__ import annotations

import ibis
from ibis.expr.types import Table

from ...spec.frictions import RepeatedAuth
from .base import Context, capped, friction

KIND = "repeated_auth"
VERSION = 1


def detect(s: Table, cfg: RepeatedAuth, ctx: Context) -> Table:
    a = s.filter(s.event.isin(list(cfg.events)))
    w = ibis.window(group_by=["attempt", "event"], order_by=["t_ms", "seq"])
    a = a.mutate(n=ibis.row_number().over(w), first_id=a.seq.first().over(w))
    a = ctx.neighbours(a.filter(a.n >= 1))
    return friction(a, kind=KIND, version=VERSION, at_ms=a.t_ms,
                    seconds=capped(a.t_ms - ibis.coalesce(a.prev_t, a.t_ms), cfg.cap),
                    evidence=ibis.array([a.first_id, a.seq]))

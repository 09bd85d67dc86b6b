"""cognitive_load (v1): hard work for the customer.

A field (``field_events``, reported when it loses focus) edited ``edits`` (5) times or
more, or focused for ``dwell`` (30 s) or longer: seconds lost are its focus time beyond
``expected`` (10 s). Help opened mid-task (``help_events``): seconds lost are the time
until the person's next event, at most ``cap``.
"""

from __future__ import annotations

import ibis
from ibis.expr.types import Table

from ...spec.frictions import CognitiveLoad
from .base import Context, capped, friction, number, one

KIND = "cognitive_load"
VERSION = 1


def detect(s: Table, cfg: CognitiveLoad, ctx: Context) -> Table:
    f = ctx.properties(s.filter(s.event.isin(list(cfg.field_events))))
    f = f.mutate(edits=number(f, cfg.edits_key), dwell_s=number(f, cfg.dwell_key) / 1000.0)
    f = f.filter((f.edits >= cfg.edits).fill_null(False) | (f.dwell_s >= cfg.dwell).fill_null(False))
    fields = friction(f, kind=KIND, version=VERSION, at_ms=f.t_ms, evidence=one(f),
                      seconds=ibis.greatest(f.dwell_s.fill_null(0) - cfg.expected, 0.0))
    h = ctx.neighbours(s.filter(s.event.isin(list(cfg.help_events))))
    helps = friction(h, kind=KIND, version=VERSION, at_ms=h.t_ms, evidence=one(h),
                     seconds=capped(ibis.coalesce(h.next_t, h.t_ms) - h.t_ms, cfg.cap))
    return fields.union(helps)

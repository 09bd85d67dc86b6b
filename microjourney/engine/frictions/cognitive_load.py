"""cognitive_load (v2): hard work for the customer.

A field (``field_events``, reported when it loses focus) edited ``edits`` (5) times or
more, or focused for ``dwell`` (30 s) or longer: seconds lost are its focus time beyond
``expected`` (10 s). Help opened mid-task (``help_events``): seconds lost are the time
until the person's next event, at most ``cap`` (the cap when none follows and the
attempt is over: since version 2).
"""

from __future__ import annotations

import ibis
from ibis.expr.types import Table

from ...spec.frictions import CognitiveLoad
from .base import Context, friction, number, one, to_next

KIND = "cognitive_load"
VERSION = 2


def reach(cfg: CognitiveLoad) -> float:
    """How far (s) the next event after help can be and still change what is found."""
    return cfg.cap


def detect(s: Table, cfg: CognitiveLoad, ctx: Context) -> Table:
    f = ctx.properties(s.filter(s.event.isin(list(cfg.field_events))))
    f = f.mutate(edits=number(f, cfg.edits_key), dwell_s=number(f, cfg.dwell_key) / 1000.0)
    f = f.filter((f.edits >= cfg.edits).fill_null(False) | (f.dwell_s >= cfg.dwell).fill_null(False))
    fields = friction(f, kind=KIND, version=VERSION, at_ms=f.t_ms, evidence=one(f),
                      seconds=ibis.greatest(f.dwell_s.fill_null(0) - cfg.expected, 0.0))
    h = ctx.attempts(ctx.neighbours(s.filter(s.event.isin(list(cfg.help_events)))))
    helps = friction(h, kind=KIND, version=VERSION, at_ms=h.t_ms, evidence=one(h),
                     seconds=to_next(h.t_ms, h.t_ms, h.next_t, h.outcome, cfg.cap))
    return fields.union(helps)

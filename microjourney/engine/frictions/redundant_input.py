"""redundant_input (v1): being asked for the same thing twice.

The same field (``field_key`` of ``field_events``) or the same input event (an event
named in ``events``, such as answering security questions) given again in one attempt
at a later step than the first time, or in another channel (after a hand-off).
Seconds lost: the repeated field's focus time when known, else the time since the
person's previous event, at most ``cap``.
"""

from __future__ import annotations

import ibis
from ibis.expr.types import Table

from ...spec.frictions import RedundantInput
from ..backend import json_text
from .base import Context, capped, friction, number

KIND = "redundant_input"
VERSION = 1


def detect(s: Table, cfg: RedundantInput, ctx: Context) -> Table:
    fields, inputs = list(cfg.field_events), list(cfg.events)
    f = ctx.properties(s.filter(s.event.isin(fields + inputs)))
    f = f.mutate(field=ibis.ifelse(f.event.isin(fields), json_text(f.properties, cfg.field_key),
                                   f.event))
    f = f.filter(f.field.notnull())
    w = ibis.window(group_by=["attempt", "field"], order_by=["t_ms", "seq"])
    f = f.mutate(first_step=f.at_step.first().over(w), first_channel=f.channel.first().over(w),
                 first_id=f.seq.first().over(w))
    f = ctx.neighbours(f.filter((f.at_step > f.first_step) | (f.channel != f.first_channel)))
    dwell = number(f, cfg.dwell_key) / 1000.0
    took = ibis.coalesce(dwell, capped(f.t_ms - ibis.coalesce(f.prev_t, f.t_ms), cfg.cap))
    return friction(f, kind=KIND, version=VERSION, at_ms=f.t_ms, seconds=took,
                    evidence=ibis.array([f.first_id, f.seq]))

"""error_shown (v1): an error message or a rejected input inside the attempt.

An event named in ``events`` (``error_shown``, ``js_error``), or any event whose
properties match ``invalid`` (default ``valid: false``: a step event with a validation
error). Seconds lost: from the error to the attempt's next own event (its recovery:
the next step or the outcome), else to the attempt's last event; at most ``cap``.
"""

from __future__ import annotations

import ibis
from ibis.expr.types import Table

from ...spec import Predicate
from ...spec.frictions import ErrorShown
from ..tagging import predicate
from .base import Context, capped, friction, one

KIND = "error_shown"
VERSION = 1


def detect(s: Table, cfg: ErrorShown, ctx: Context) -> Table:
    hit = s.event.isin(list(cfg.events))
    if cfg.invalid:
        # Events whose properties say invalid, found by one scan of the events table.
        ev = ctx.events
        bad = None
        for key, value in cfg.invalid.items():
            p = predicate(ev.properties, Predicate(key=key, op="eq", value=value)).fill_null(False)
            bad = p if bad is None else bad | p
        hit = hit | s.seq.isin(ev.filter(bad).seq)
    e = ctx.attempts(s.filter(hit))
    recovered = ibis.coalesce(e.next_own_t, e.end_ms)
    return friction(e, kind=KIND, version=VERSION, at_ms=e.t_ms, evidence=one(e),
                    seconds=capped(recovered - e.t_ms, cfg.cap))

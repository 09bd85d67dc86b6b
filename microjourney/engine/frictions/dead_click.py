"""dead_click (v1): a click after which nothing happens.

A click is dead when the SDK flagged it (property ``flag``, default ``dead``, true) or
when the person's next event comes more than ``within`` (2.5 s) later; a click with no
later event at all is dead once its attempt is over. Seconds lost: the time to the
next event, at most ``cap`` (10 s).
"""

from __future__ import annotations

import ibis
from ibis.expr.types import Table

from ...spec.frictions import DeadClick
from ..backend import json_text
from .base import Context, capped, friction, ms, one

KIND = "dead_click"
VERSION = 1


def reach(cfg: DeadClick) -> float:
    """How far (s) the next event after a click can be and still change what is found
    (past both ``within`` and ``cap``, a next event counts as none once the attempt is
    over: dead, the cap)."""
    return max(cfg.within, cfg.cap)


def detect(s: Table, cfg: DeadClick, ctx: Context) -> Table:
    c = ctx.attempts(ctx.neighbours(ctx.properties(s.filter(s.event.isin(list(cfg.events))))))
    gap = c.next_t - c.t_ms
    flagged = json_text(c.properties, cfg.flag) == "true"
    quiet = ibis.ifelse(c.next_t.isnull(), c.outcome != "in_progress", gap > ms(cfg.within))
    c = c.filter(flagged.fill_null(False) | quiet)
    return friction(c, kind=KIND, version=VERSION, at_ms=c.t_ms, evidence=one(c),
                    seconds=capped(ibis.coalesce(c.next_t - c.t_ms, ms(cfg.cap)), cfg.cap))

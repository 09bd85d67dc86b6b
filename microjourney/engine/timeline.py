"""The timeline: every event in person order, with its neighbours, built once per data change.

Resolving identities and sorting every event by (person, time) is the costliest step of
every whole-journey analysis. The workspace materialises it as the ``timeline`` table
when events change, and the process map of all events, its variants and the friction
scope read it instead of sorting again. One narrow row per event::

    seq, person, event, channel, t_ms, known,
    prev_t, next_t, next_event      the person's previous and next event (any channel)

Order among one person's events: time (ms), then ingest order (``seq``).
"""

from __future__ import annotations

import ibis
from ibis.expr.types import Table

from .backend import epoch_ms

ORDER = ["t_ms", "seq"]


def timeline(events: Table) -> Table:
    """The timeline of ``events`` (which must have a ``person`` column)."""
    e = events.select("seq", "person", "event", "channel", t_ms=epoch_ms(events.timestamp),
                      known=events.user_id.notnull())
    w = ibis.window(group_by="person", order_by=ORDER)
    return e.mutate(prev_t=e.t_ms.lag().over(w), next_t=e.t_ms.lead().over(w),
                    next_event=e.event.lead().over(w))


__all__ = ["timeline"]

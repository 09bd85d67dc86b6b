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


def rows(events: Table) -> Table:
    """One narrow row per event of ``events`` (which must have a ``person`` column), before
    its neighbours are known."""
    return events.select("seq", "person", "event", "channel", t_ms=epoch_ms(events.timestamp),
                         known=events.user_id.notnull())


def neighbours(rows: Table, anchors: Table | None = None) -> Table:
    """``rows`` (from :func:`rows`) with their neighbours. ``anchors``: a timeline row per
    person whose later events are all in ``rows`` (the last row a refresh kept), given
    again with its neighbours (its ``prev_t`` as it was, its next from ``rows``)."""
    if anchors is not None:
        rows = rows.mutate(a_prev=ibis.null("int64")).union(
            anchors.select(*rows.columns, a_prev=anchors.prev_t))
    w = ibis.window(group_by="person", order_by=ORDER)
    # An anchor is its person's first row here: its own previous neighbour is kept.
    prev_t = rows.t_ms.lag().over(w)
    if anchors is not None:
        prev_t = ibis.coalesce(rows.a_prev, prev_t)
    out = rows.mutate(prev_t=prev_t, next_t=rows.t_ms.lead().over(w),
                      next_event=rows.event.lead().over(w))
    return out.drop("a_prev") if anchors is not None else out


def timeline(events: Table) -> Table:
    """The timeline of ``events`` (which must have a ``person`` column)."""
    return neighbours(rows(events))


__all__ = ["neighbours", "rows", "timeline"]

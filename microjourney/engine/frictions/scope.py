"""The events of each attempt, with the neighbours every detector needs.

An attempt spans from its first to its last event; an attempt with no outcome
(abandoned or in progress) stays open until its timeout after its last event. Its
events are:

* the moment's own events (the start, steps and outcome cut into the attempt), and
* every other event of the person inside the span (clicks, page views, errors,
  fields, other moments' events). An event inside the spans of several attempts
  belongs to the one that started last (the innermost moment: a rage click while
  paying belongs to the payment, not to the week-long account opening around it).

Per event the scope carries, within the attempt, the furthest step reached so far and
the times of the attempt's own events before and after it.
"""

from __future__ import annotations

import ibis
from ibis.expr.types import Table

from ..attempts import attempt_rows
from ..backend import epoch_ms

FINISHED = ("completed", "failed", "escalated")


def spans(attempts: Table, settings: Table) -> Table:
    """Per attempt: start, last event and the end of its span (ms), and ``inner``, a
    number that orders attempts from the outermost to the innermost (latest start; on a
    tie, the first moment by name) and keys the attempt in the scope's sorts and joins."""
    a = attempts.inner_join(settings, attempts.moment == settings.w_moment)
    end = epoch_ms(a.end_ts)
    start = epoch_ms(a.start_ts)
    return a.select(
        attempt_id=a.attempt_id, a_person=a.person, a_moment=a.moment, a_segment=a.segment,
        outcome=a.outcome, start_ms=start, end_ms=end,
        close_ms=ibis.ifelse(a.outcome.isin(FINISHED), end, end + a.timeout_ms),
        inner=ibis.row_number().over(order_by=[start, ibis.desc(a.moment), a.attempt_id]),
    )


def scope(timeline: Table, tagged: Table, spans: Table) -> Table:
    """One row per (attempt, event) as described above, the attempt by its ``inner``
    number (``attempt``)::

        attempt, seq, event, channel, role, step, rank, t_ms,
        at_step, prev_step, prev_own_t, next_own_t

    ``timeline`` from :func:`..timeline.timeline`; ``tagged`` cut by
    :func:`..attempts.segments`; ``spans`` from :func:`spans`. Sorts, joins and groups run
    on numbers and short names; whatever only some detectors read stays out of the scope,
    which every detector reads: the attempt's moment and outcome, the person's neighbouring
    events and the events' properties are joined on the few rows a detector looks into
    (:class:`.base.Context`), and evidence is reported as ``seq`` numbers.
    """
    a = spans
    r = attempt_rows(tagged)
    own = r.inner_join(a, [r.person == a.a_person, r.moment == a.a_moment,
                           r.segment == a.a_segment])
    own = own.select(o_seq=own.seq, o_attempt=own.inner, role=own.role, step=own.step,
                     rank=own.rank, t_ms=own.t_ms, event=own.event, channel=own.channel)

    # Every event inside a span: the innermost attempt takes it (a group-by, not a sort).
    # Its name and channel ride along, so the scope needs no join with the timeline.
    c = timeline.select("seq", "person", "t_ms", "event", "channel")
    c = c.inner_join(a, [c.person == a.a_person, c.t_ms >= a.start_ms, c.t_ms <= a.close_ms])
    c = c.group_by(o_seq=c.seq).aggregate(o_attempt=c.inner.max(), t_ms=c.t_ms.arbitrary(),
                                          event=c.event.arbitrary(), channel=c.channel.arbitrary())
    c = c.anti_join(own, [c.o_seq == own.o_seq, c.o_attempt == own.o_attempt])
    c = c.select("o_seq", "o_attempt", role=ibis.null("string"), step=ibis.null("int64"),
                 rank=ibis.null("int64"), t_ms="t_ms", event="event", channel="channel")
    rows = own.union(c)

    order = [rows.t_ms, rows.o_seq, rows.rank]
    upto = ibis.window(group_by="o_attempt", order_by=order, rows=(None, 0))
    before = ibis.window(group_by="o_attempt", order_by=order, rows=(None, -1))
    after = ibis.window(group_by="o_attempt", order_by=order, rows=(1, None))
    own_t = ibis.ifelse(rows.role.notnull(), rows.t_ms, None)
    return rows.select(
        attempt="o_attempt", seq="o_seq", event="event", channel="channel", role="role",
        step="step", rank="rank", t_ms="t_ms",
        at_step=rows.step.max().over(upto).fill_null(0),
        prev_step=rows.step.max().over(before),
        prev_own_t=own_t.max().over(before),
        next_own_t=own_t.min().over(after),
    )

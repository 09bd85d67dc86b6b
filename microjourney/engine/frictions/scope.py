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
    """Per attempt: outcome, furthest step, start, last event and the end of its span
    (ms); ``inner``, a number that orders attempts from the outermost to the innermost
    (latest start; on a tie, the first moment by name) and keys the attempt in the
    scope's sorts and joins; and ``alone``, true when no other span of the person
    overlaps it."""
    a = attempts.inner_join(settings, attempts.moment == settings.w_moment)
    end = epoch_ms(a.end_ts)
    start = epoch_ms(a.start_ts)
    a = a.select(
        attempt_id=a.attempt_id, a_person=a.person, a_moment=a.moment, a_segment=a.segment,
        outcome=a.outcome, furthest=a.furthest_step, start_ms=start, end_ms=end,
        close_ms=ibis.ifelse(a.outcome.isin(FINISHED), end, end + a.timeout_ms),
        inner=ibis.row_number().over(order_by=[start, ibis.desc(a.moment), a.attempt_id]),
    )
    # ``alone``: no other span of the person overlaps this one, so an event inside it
    # belongs to it without comparing attempts (most spans: the scope groups only the
    # events of overlapping ones).
    w = ibis.window(group_by="a_person", order_by=["start_ms", "inner"])
    before = ibis.window(group_by="a_person", order_by=["start_ms", "inner"], rows=(None, -1))
    overlapped = (a.start_ms <= a.close_ms.max().over(before)).fill_null(False) | (
        a.start_ms.lead().over(w) <= a.close_ms).fill_null(False)
    return a.mutate(alone=~overlapped)


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

    # Every event inside a span, with its name and channel (so the scope needs no join
    # with the timeline). Inside a span that overlaps no other, it is that attempt's;
    # where spans overlap, the innermost attempt takes it (a group-by, not a sort).
    t = timeline.select("seq", "person", "t_ms", "event", "channel")

    def inside(spans: Table) -> Table:
        c = t.inner_join(spans, [t.person == spans.a_person, t.t_ms >= spans.start_ms,
                                 t.t_ms <= spans.close_ms])
        return c.select(o_seq=c.seq, o_attempt=c.inner, t_ms=c.t_ms, event=c.event,
                        channel=c.channel)

    alone = inside(a.filter(a.alone))
    nested = inside(a.filter(~a.alone))
    nested = nested.group_by("o_seq").aggregate(
        o_attempt=nested.o_attempt.max(), t_ms=nested.t_ms.arbitrary(),
        event=nested.event.arbitrary(), channel=nested.channel.arbitrary())
    c = alone.union(nested)
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

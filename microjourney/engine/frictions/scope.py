"""The events of each attempt, with the neighbours every detector needs.

An attempt spans from its first to its last event; an attempt with no outcome
(abandoned or in progress) stays open until its timeout after its last event. Its
events are:

* the moment's own events (the start, steps and outcome cut into the attempt), and
* every other event of the person inside the span (clicks, page views, errors,
  fields, other moments' events). An event inside the spans of several attempts
  belongs to the one that started last (the innermost moment: a rage click while
  paying belongs to the payment, not to the week-long account opening around it).

Per event the scope carries the person's previous and next event (any event, any
attempt) and, within the attempt, the furthest step reached so far and the times of
the attempt's own events before and after it.
"""

from __future__ import annotations

import ibis
from ibis.expr.types import Table

from ..attempts import attempt_rows
from ..backend import epoch_ms

FINISHED = ("completed", "failed", "escalated")


def spans(attempts: Table, settings: Table) -> Table:
    """Per attempt: start, last event and the end of its span (ms)."""
    a = attempts.inner_join(settings, attempts.moment == settings.w_moment)
    end = epoch_ms(a.end_ts)
    return a.select(
        attempt_id=a.attempt_id, a_person=a.person, a_moment=a.moment, a_segment=a.segment,
        outcome=a.outcome, start_ms=epoch_ms(a.start_ts), end_ms=end,
        close_ms=ibis.ifelse(a.outcome.isin(FINISHED), end, end + a.timeout_ms),
    )


def scope(events: Table, tagged: Table, attempts: Table, settings: Table) -> Table:
    """One row per (attempt, event) as described above.

    ``events`` has a ``person`` column; ``tagged`` comes from :func:`..tagging.tag`;
    ``settings`` from :func:`..contacts.moment_settings` (the moments' timeouts).
    """
    e = events.select("seq", "event_id", "event", "person", "channel", "properties",
                      t_ms=epoch_ms(events.timestamp))
    pw = ibis.window(group_by="person", order_by=["t_ms", "seq"])
    e = e.mutate(prev_t=e.t_ms.lag().over(pw), next_t=e.t_ms.lead().over(pw))
    a = spans(attempts, settings)

    r = attempt_rows(tagged)
    own = r.inner_join(a, [r.person == a.a_person, r.moment == a.a_moment,
                           r.segment == a.a_segment])
    own = own.select(o_seq=own.seq, o_attempt=own.attempt_id, role=own.role, step=own.step,
                     rank=own.rank)

    # Every event inside a span: the innermost attempt (latest start) takes it.
    c = e.select("seq", "person", "t_ms")
    c = c.inner_join(a, [c.person == a.a_person, c.t_ms >= a.start_ms, c.t_ms <= a.close_ms])
    inner = ibis.window(group_by="seq", order_by=[ibis.desc("start_ms"), "a_moment"])
    c = c.mutate(pick=ibis.row_number().over(inner))
    c = c.filter(c.pick == 0).select(o_seq=c.seq, o_attempt=c.attempt_id)
    c = c.anti_join(own, [c.o_seq == own.o_seq, c.o_attempt == own.o_attempt])
    c = c.mutate(role=ibis.null("string"), step=ibis.null("int64"), rank=ibis.null("int64"))
    rows = own.union(c)

    s = rows.inner_join(e, rows.o_seq == e.seq)
    s = s.inner_join(a, s.o_attempt == a.attempt_id)
    s = s.select("attempt_id", person="a_person", moment="a_moment", outcome="outcome",
                 start_ms="start_ms", end_ms="end_ms", seq="seq", event_id="event_id",
                 event="event", channel="channel", properties="properties", role="role",
                 step="step", rank="rank", t_ms="t_ms", prev_t="prev_t", next_t="next_t")
    order = ["t_ms", "seq", "rank"]
    upto = ibis.window(group_by="attempt_id", order_by=order, rows=(None, 0))
    before = ibis.window(group_by="attempt_id", order_by=order, rows=(None, -1))
    after = ibis.window(group_by="attempt_id", order_by=order, rows=(1, None))
    own_t = ibis.ifelse(s.role.notnull(), s.t_ms, None)
    return s.mutate(
        at_step=s.step.max().over(upto).fill_null(0),
        prev_step=s.step.max().over(before),
        prev_own_t=own_t.max().over(before),
        next_own_t=own_t.min().over(after),
    )
